import Foundation
import MizarDataplane
import MizarNAT
import MizarPluginSDK
import MizarTopology
import Testing

/// The nat plugin on a live droplet: an endpoint reaches a host outside the overlay, and
/// that host reaches an endpoint through a forwarded port; real ping and iperf3.
@Suite("nat plugin on a live droplet: SNAT and port forwarding with real tools", .serialized)
struct NATNamespaceTests {
    @Test(arguments: [AgentHook.tc, .xdp])
    func endpointReachesOutsideAndOutsideReachesEndpoint(agentHook: AgentHook) throws {
        let lab = try OverlayLab.design(agentHook: agentHook, vpc2: false)
        defer { lab.teardown() }
        let external = try lab.addExternalHost("ext")
        let hosta = lab.host("hosta")
        let plugins = hosta.dataplane.plugins
        try plugins.register(NAT.descriptor)
        try plugins.configure("nat", NAT.Config(
            externalIP: hosta.address.ip.description,
            masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"])],
            forwards: [NAT.Forward(protocol: .tcp, port: 15201, vpc: 100, endpoint: lab.guest("a1").ip.description, endpointPort: 5201)]))
        try plugins.setChain(.egress, ["nat"])
        try plugins.setChain(.ingress, ["nat"])

        if agentHook == .xdp {
            // XDP's FIB lookup needs forwarding on and a known next hop (docs/plugins.md#nat):
            // a droplet talks to its gateway all the time; this lab's droplet never did.
            _ = try runCommand(["sysctl", "-qw", "net.ipv4.conf.eth0.forwarding=1"], in: hosta.netns)
            _ = try runCommand(["ping", "-c", "1", "-W", "1", external.ip.description], in: hosta.netns)
        }
        // Out: ping and TCP from a1 to the external host, which sees hosta's address.
        let pings = try lab.ping(from: "a1", to: external.ip, count: 3, interval: 0.1)
        let diagnosis = "agent: \(try hosta.dataplane.agentCounters()) nat: \(try plugins.counters("nat", at: .egress)) transit: \(try hosta.dataplane.transitCounters())"
        #expect(pings == 3, "\(diagnosis)")
        let up = try iperf3(from: lab.guest("a1").netns, to: external.netns, server: external.ip, seconds: 1)
        let upBits = ((up["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        #expect(upBits > 50e6, "TCP a1 -> external through SNAT: \(upBits / 1e9) Gbit/s")
        let seen = try runCommand(["ss", "-tn", "state", "time-wait"], in: external.netns).output
        #expect(seen.contains(hosta.address.ip.description) || !seen.contains("10.0.1.2"), "the external host never sees the endpoint's address: \(seen)")
        // In: the external host reaches a1's iperf3 server through hosta:15201.
        let server = try RunningCommand(["iperf3", "-s", "-1", "-p", "5201"], in: lab.guest("a1").netns)
        defer { server.interrupt() }
        usleep(300_000)
        let down = try runCommand(["iperf3", "-c", hosta.address.ip.description, "-p", "15201", "-t", "1", "-J", "--connect-timeout", "3000"], in: external.netns, timeout: 20)
        #expect(down.status == 0 && down.output.contains("sum_received"), "iperf3 through the forwarded port: \(down.output.suffix(300)) \(down.error)")
        let counters = try plugins.counters("nat", at: .egress)
        #expect(counters[.drop].packets == 0 && counters[.aborted].packets == 0, "\(counters)")
        #expect(try hosta.dataplane.agentCounters()[.leftOverlay].packets > 0)
    }
}
