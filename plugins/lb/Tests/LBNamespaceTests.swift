import Foundation
import MizarDataplane
import MizarLB
import MizarPluginSDK
import MizarTopology
import Testing

/// The lb plugin on a live droplet: real TCP connections to a VIP spread over three
/// backends (two on another droplet, one on the client's), and a connection's 4-tuple
/// keeps its backend.
@Suite("lb plugin on a live droplet: TCP connections over three backends", .serialized)
struct LBNamespaceTests {
    /// Answers every connection with `name`, then closes.
    static let server = """
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 8080)); s.listen(128)
        while True:
            c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
        """
    /// Connects `count` times to VIP:80 (from `sport` when not 0, resetting each connection
    /// so the 4-tuple can be reused at once; optional connect timeout) and prints who answered.
    static let client = """
        import socket, struct, sys
        vip, count, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 3
        for _ in range(count):
            c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.settimeout(timeout)
            if sport: c.bind(("0.0.0.0", sport))
            try:
                c.connect((vip, 80)); print(c.recv(64).decode() or "empty")
            except Exception as e:
                print("failed", e)
            c.close()
        """

    @Test func connectionsSpreadOverBackendsAndKeepTheirBackend() throws {
        let lab = try OverlayLab.design(vpc2: false)
        defer { lab.teardown() }
        try lab.createEndpoint("a2", vni: 100, ip: "10.0.1.4", on: "hosta")
        let backends = ["b1", "b2", "a2"]
        var servers: [RunningCommand] = []
        defer { for s in servers { s.interrupt() } }
        for name in backends { servers.append(try RunningCommand(["python3", "-c", Self.server, name], in: lab.guest(name).netns)) }

        let plugins = lab.host("hosta").dataplane.plugins
        try plugins.register(LB.descriptor)
        try plugins.configure("lb", LB.Config(services: [LB.Service(
            vpc: 100, vip: "10.0.9.9", port: 80, backends: backends.map { LB.Backend(ip: lab.guest($0).ip.description, port: 8080) })]))
        try plugins.setChain(.egress, ["lb"])
        try plugins.setChain(.ingress, ["lb"])
        usleep(300_000) // servers listening

        let spread = try runCommand(["python3", "-c", Self.client, "10.0.9.9", "60", "0"], in: lab.guest("a1").netns, timeout: 60).output
        let answers = spread.split(separator: "\n").map(String.init)
        let counts = Dictionary(grouping: answers, by: { $0 }).mapValues(\.count)
        #expect(answers.count == 60 && Set(counts.keys) == Set(backends), "\(counts)")
        for name in backends { #expect((counts[name] ?? 0) >= 6, "\(name) served \(counts[name] ?? 0) of 60: \(counts)") }

        let sticky = try runCommand(["python3", "-c", Self.client, "10.0.9.9", "5", "45000"], in: lab.guest("a1").netns, timeout: 30).output
        let stickyAnswers = Set(sticky.split(separator: "\n").map(String.init))
        #expect(stickyAnswers.count == 1 && backends.contains(stickyAnswers.first ?? ""), "one 4-tuple, one backend: \(sticky)")
        let counters = try plugins.counters("lb", at: .egress)
        #expect(counters[.drop].packets == 0 && counters[.aborted].packets == 0, "\(counters)")
    }
}
