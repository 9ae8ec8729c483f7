import Foundation
import MizarACL
import MizarDataplane
import MizarPluginSDK
import MizarTopology
import Testing

/// The acl plugin on live droplets with ping and iperf3 (DESIGN §7 topology).
@Suite("acl plugin on live droplets: ping and TCP blocked and permitted", .serialized)
struct ACLNamespaceTests {
    @Test func aclBlocksAndPermitsPingAndTCPWithRepliesByConntrack() throws {
        let lab = try OverlayLab.design()
        defer { lab.teardown() }
        let a1 = lab.guest("a1"), b1 = lab.guest("b1")
        let hosta = lab.host("hosta").dataplane.plugins, hostb = lab.host("hostb").dataplane.plugins
        for chains in [hosta, hostb] {
            try chains.register(ACL.descriptor)
            try chains.setChain(.egress, ["acl"])
            try chains.setChain(.ingress, ["acl"])
        }
        // a1 may send anything and receives only replies (conntrack); b1 receives nothing yet.
        let a1Policy = ACL.EndpointPolicy(vpc: 100, ip: a1.ip.description, defaultEgress: .allow, defaultIngress: .deny)
        let b1Policy = ACL.EndpointPolicy(vpc: 100, ip: b1.ip.description, defaultEgress: .allow, defaultIngress: .deny)
        try hosta.configure("acl", ACL.Config(rules: [], endpoints: [a1Policy]))
        try hostb.configure("acl", ACL.Config(rules: [], endpoints: [b1Policy]))

        #expect(try lab.ping(from: "a1", to: b1.ip, count: 3, interval: 0.1) == 0)
        #expect(try hostb.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets >= 3)
        let before = try hostb.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets
        let blocked = (try? lab.iperf(from: "a1", to: "b1", seconds: 1)) ?? [:] // iperf3 gives up connecting
        #expect(((blocked["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0) == 0)
        #expect(try hostb.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets > before, "SYNs dropped")

        // Echo requests and TCP to the iperf3 port from a1's network come in; the replies
        // reach a1 only because hosta's conntrack saw the flows leave.
        let permit = ACL.Config(rules: [
            ACL.Rule(priority: 10, vpc: 100, direction: .ingress, source: "10.0.1.0/24", protocol: .icmp, ports: 8...8, action: .allow),
            ACL.Rule(priority: 20, vpc: 100, direction: .ingress, source: "10.0.1.0/24", protocol: .tcp, ports: 5201...5201, action: .allow),
        ], endpoints: [b1Policy])
        try hostb.configure("acl", permit)
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 3, interval: 0.1) == 3)
        let tcp = try lab.iperf(from: "a1", to: "b1", seconds: 1)
        let bits = ((tcp["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        #expect(bits > 50e6, "TCP through the ACL on both droplets: \(bits / 1e9) Gbit/s")
        // b1 cannot open anything towards a1: a1 receives only replies.
        #expect(try lab.ping(from: "b1", to: a1.ip, count: 2, interval: 0.1) == 0)
        #expect(try hosta.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets >= 2)

        // A deny rule at a1's egress wins over its default allow.
        try hosta.configure("acl", ACL.Config(rules: [ACL.Rule(vpc: 100, direction: .egress, destination: b1.ip.description, protocol: .icmp, action: .deny)],
                                              endpoints: [a1Policy]))
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 2, interval: 0.1) == 0)
        #expect(try hosta.counters("acl", at: .egress).dropReasons[ACL.Reason.rule.rawValue].packets >= 2)
        #expect(try hosta.counters("acl", at: .egress)[.aborted].packets == 0)
    }
}
