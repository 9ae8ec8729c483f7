import Foundation
import MizarDataplane
import MizarLB
import MizarPluginSDK
import MizarTopology
import Testing

/// Passthrough on live droplets: backends own the VIP, frames keep it all the way, and the
/// backends answer from it (direct server return).
@Suite("lb passthrough on live droplets: backends answer from the VIP", .serialized)
struct LBPassthroughNamespaceTests {
    @Test func connectionsReachBackendsOnBothDropletsAndRepliesComeFromTheVIP() throws {
        let lab = try OverlayLab.design(vpc2: false)
        defer { lab.teardown() }
        try lab.createEndpoint("a2", vni: 100, ip: "10.0.1.4", on: "hosta")
        let backends = ["b1", "a2"], vip = "10.0.9.9"
        var servers: [RunningCommand] = []
        defer { for s in servers { s.interrupt() } }
        for name in backends {
            // The backend owns the VIP (as any direct-server-return backend: on lo, never
            // announced by ARP); the server answers on its port.
            _ = try runCommand(["ip", "addr", "add", "\(vip)/32", "dev", "lo"], in: lab.guest(name).netns)
            _ = try runCommand(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"], in: lab.guest(name).netns)
            servers.append(try RunningCommand(["python3", "-c", LBNamespaceTests.server.replacingOccurrences(of: "8080", with: "80"), name],
                                              in: lab.guest(name).netns))
        }
        let config = LB.Config(services: [LB.Service(vpc: 100, vip: vip, port: 80, mode: .passthrough,
                                                     backends: backends.map { LB.Backend(ip: lab.guest($0).ip.description, port: 80) })])
        for host in ["hosta", "hostb"] {
            let plugins = lab.host(host).dataplane.plugins
            try plugins.register(LB.descriptor)
            try plugins.configure("lb", config)
            try plugins.setChain(.egress, ["lb"])
            try plugins.setChain(.ingress, ["lb"])
        }
        // A VIP frame must go straight to its backend's droplet (a bouncer has no endpoint
        // by that address): hosta learns the way to b1's droplet first.
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 2, interval: 0.1) == 2)
        usleep(300_000)
        let out = try runCommand(["python3", "-c", LBNamespaceTests.client, vip, "40", "0"], in: lab.guest("a1").netns, timeout: 60).output
        let counts = Dictionary(grouping: out.split(separator: "\n").map(String.init), by: { $0 }).mapValues(\.count)
        #expect(Set(counts.keys) == Set(backends), "\(counts)")
        for name in backends { #expect((counts[name] ?? 0) >= 5, "\(counts)") }
        // hostb delivered VIP frames to b1 (steered), and vouched for b1's replies from the VIP.
        #expect(try lab.host("hostb").dataplane.transitCounters()[.delivered].packets > 0)
        #expect(try lab.host("hostb").dataplane.agentCounters()[.spoofedIP].packets == 0)
        // Without the plugin the same source is spoofing again.
        try lab.host("hostb").dataplane.plugins.setChain(.egress, [])
        let blocked = try runCommand(["python3", "-c", LBNamespaceTests.client, vip, "12", "0", "0.5"], in: lab.guest("a1").netns, timeout: 60).output
        #expect(!blocked.contains("b1") && blocked.contains("a2"), "\(blocked)")
        #expect(try lab.host("hostb").dataplane.agentCounters()[.spoofedIP].packets > 0)
    }
}
