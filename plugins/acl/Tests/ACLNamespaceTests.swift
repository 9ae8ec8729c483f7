import Foundation
import MizarACL
import MizarDataplane
import MizarPluginSDK
import MizarTopology
import Testing

/// The acl plugin on live droplets with ping and iperf3 (DESIGN §7 topology).
@Suite("acl plugin on live droplets: ping and TCP blocked and permitted", .serialized)
struct ACLNamespaceTests {
    /// DESIGN §4: inter-network ACL on the divider. Only the divider runs the acl (on its
    /// transit hook); the hosts run no plugin, and the direct path is on: a rule between the
    /// two networks of VPC 100 still holds, for every packet (issue 13, item 6).
    @Test func dividerEnforcesInterNetworkRules() throws {
        let lab = try OverlayLab.design(vpc2: false)
        defer { lab.teardown() }
        let divider = lab.host("divider").dataplane
        let b1 = lab.guest("b1"), b2 = lab.guest("b2")
        try divider.plugins.register(ACL.descriptor)
        // b2 (10.0.2.3) takes no ICMP from 10.0.1.0/24; anything else may reach it.
        try divider.plugins.configure("acl", ACL.Config(rules: [
            ACL.Rule(priority: 10, vpc: 100, direction: .ingress, source: "10.0.1.0/24", protocol: .icmp, action: .deny),
        ], endpoints: [ACL.EndpointPolicy(vpc: 100, ip: b2.ip.description, defaultEgress: .allow, defaultIngress: .allow)]))
        #expect(try lab.ping(from: "a1", to: b2.ip, count: 2, interval: 0.1) == 2, "no chain yet")
        try divider.plugins.setChain(.transit, ["acl"])

        let before = try divider.transitCounters(), echoes = try icmpEchoesReceived(in: b2.netns)
        #expect(try lab.ping(from: "a1", to: b2.ip, count: 5, interval: 0.1) == 0, "denied at the divider")
        #expect(try icmpEchoesReceived(in: b2.netns) == echoes, "nothing reached b2")
        #expect(try divider.plugins.counters("acl", at: .transit).dropReasons[ACL.Reason.rule.rawValue].packets >= 5)
        // TCP between the networks passes, its replies by the divider's conntrack; the same
        // network never crosses the divider.
        let tcp = try lab.iperf(from: "a1", to: "b2", seconds: 1)
        #expect(((tcp["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0) > 0, "TCP a1 -> b2 through the transit chain")
        let passed = try divider.transitCounters().delta(since: before)
        #expect(passed[.transitChain].packets > 0 && passed[.divided].packets == passed[.transitChain].packets, "\(passed)")
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 3, interval: 0.1) == 3, "a1 -> b1 is one network: no divider")
        // The chain gone from the divider but still marked active: closed, not open.
        for point in divider.plugins.host.points where point.hook == .transit { _ = try point.root.clear(0) }
        #expect(try lab.ping(from: "a1", to: b2.ip, count: 2, interval: 0.1) == 0)
        #expect(try divider.transitCounters().delta(since: before)[.chainUnavailable].packets >= 2)
    }

    /// The divider also hosts or bounces the destination: an inter-network frame sent to it
    /// as the divider still meets its transit chain before it is delivered (b2, on the
    /// divider) or bounced (c2, in a network the divider bounces). TCP passes both ways (its
    /// replies reach the same divider, judged there too). An endpoint on the divider reaches
    /// other networks (its agent divides: a frame to its own droplet never comes back from the
    /// wire) — but not while a transit chain it cannot run is set and no other divider exists.
    @Test func dividerThatHostsOrBouncesTheDestinationStillJudges() throws {
        let lab = try OverlayLab(droplets: ["hosta", "hostb", "hostc"])
        defer { lab.teardown() }
        try lab.createVPC(100, dividers: ["hostb"])
        try lab.createNetwork(100, "10.0.1.0/24", bouncers: ["hostc"])
        try lab.createNetwork(100, "10.0.2.0/24", bouncers: ["hostb"])
        try lab.createEndpoint("a1", vni: 100, ip: "10.0.1.2", on: "hosta")
        try lab.createEndpoint("b2", vni: 100, ip: "10.0.2.3", on: "hostb")
        try lab.createEndpoint("c2", vni: 100, ip: "10.0.2.4", on: "hostc")
        let divider = lab.host("hostb").dataplane, b2 = lab.guest("b2"), c2 = lab.guest("c2")
        try divider.plugins.register(ACL.descriptor)
        try divider.plugins.configure("acl", ACL.Config(rules: [
            ACL.Rule(priority: 10, vpc: 100, direction: .ingress, source: "10.0.1.0/24", protocol: .icmp, action: .deny),
        ], endpoints: [b2, c2].map { ACL.EndpointPolicy(vpc: 100, ip: $0.ip.description, defaultEgress: .allow, defaultIngress: .allow) }))
        #expect(try lab.ping(from: "a1", to: b2.ip, count: 2, interval: 0.1) == 2, "no chain yet: delivered by the divider")
        #expect(try lab.ping(from: "a1", to: c2.ip, count: 2, interval: 0.1) == 2, "no chain yet: bounced by the divider")
        #expect(try lab.ping(from: "b2", to: lab.guest("a1").ip, count: 2, interval: 0.1) == 2, "from the divider's own endpoint")
        try divider.plugins.setChain(.transit, ["acl"])

        let echoes = (try icmpEchoesReceived(in: b2.netns), try icmpEchoesReceived(in: c2.netns))
        #expect(try lab.ping(from: "a1", to: b2.ip, count: 3, interval: 0.1) == 0, "denied before the divider delivers")
        #expect(try lab.ping(from: "a1", to: c2.ip, count: 3, interval: 0.1) == 0, "denied before the divider bounces")
        #expect(try icmpEchoesReceived(in: b2.netns) == echoes.0 && icmpEchoesReceived(in: c2.netns) == echoes.1, "nothing reached b2 or c2")
        #expect(try divider.plugins.counters("acl", at: .transit).dropReasons[ACL.Reason.rule.rawValue].packets >= 6)
        let tcp = try lab.iperf(from: "a1", to: "c2", seconds: 1)
        #expect(((tcp["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0) > 0, "TCP a1 -> c2 through the transit chain, both ways")
        let agent = try divider.agentCounters()
        #expect(try lab.ping(from: "b2", to: lab.guest("a1").ip, count: 2, interval: 0.1) == 0, "no way around the transit chain")
        #expect(try divider.agentCounters().delta(since: agent)[.chainUnavailable].packets >= 2)
    }

    /// Two dividers and a stateful rule: a1 may open TCP to b2 (hosted on divider hostb) and
    /// receives only what the acl's conntrack lets back. Whichever divider a connection
    /// hashes to, its two directions meet one chain: when it hashes to hostb, whose own
    /// replies cannot be sent to itself, hostb relays the requests to the peer divider the
    /// replies go to. Every connection of `iperf3 -P 4` (and its control connection) completes.
    @Test func twoDividersJudgeBothDirectionsOfAFlowInOnePlace() throws {
        let lab = try OverlayLab(droplets: ["hosta", "hostb", "hostd", "bouncer"])
        defer { lab.teardown() }
        try lab.createVPC(100, dividers: ["hostb", "hostd"])
        try lab.createNetwork(100, "10.0.1.0/24", bouncers: ["bouncer"])
        try lab.createNetwork(100, "10.0.2.0/24", bouncers: ["bouncer"])
        try lab.createEndpoint("a1", vni: 100, ip: "10.0.1.2", on: "hosta")
        try lab.createEndpoint("b2", vni: 100, ip: "10.0.2.3", on: "hostb")
        let a1 = lab.guest("a1"), b2 = lab.guest("b2")
        for divider in ["hostb", "hostd"] {
            let plugins = lab.host(divider).dataplane.plugins
            try plugins.register(ACL.descriptor)
            try plugins.configure("acl", ACL.Config(rules: [
                ACL.Rule(priority: 10, vpc: 100, direction: .ingress, source: "10.0.1.0/24", protocol: .tcp, ports: 5201...5201, action: .allow),
            ], endpoints: [
                ACL.EndpointPolicy(vpc: 100, ip: a1.ip.description, defaultEgress: .allow, defaultIngress: .deny),
                ACL.EndpointPolicy(vpc: 100, ip: b2.ip.description, defaultEgress: .allow, defaultIngress: .deny),
            ]))
            try plugins.setChain(.transit, ["acl"])
        }
        // iperf3 fails (and this throws) when a connection cannot complete.
        let tcp = try lab.iperf(from: "a1", to: "b2", seconds: 1, extra: ["-P", "4"])
        let streams = tcp["streams"] as? [[String: Any]] ?? []
        #expect(streams.count == 4 && (tcp["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0 > 0, "every connection through one divider both ways")
        #expect(try lab.ping(from: "a1", to: b2.ip, count: 2, interval: 0.1) == 0, "ICMP is not allowed in")
    }

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
        // Tracing names the plugin, its hook and the reason of each drop (docs/observability.md).
        let trace = try lab.host("hostb").dataplane.traceReader()
        try lab.host("hostb").dataplane.setTracing(TraceFilter(ip: b1.ip))
        defer { try? lab.host("hostb").dataplane.setTracing(nil) }

        #expect(try lab.ping(from: "a1", to: b1.ip, count: 3, interval: 0.1) == 0)
        #expect(try hostb.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets >= 3)
        let before = try hostb.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets
        let blocked = (try? lab.iperf(from: "a1", to: "b1", seconds: 1)) ?? [:] // iperf3 gives up connecting
        #expect(((blocked["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0) == 0)
        #expect(try hostb.counters("acl", at: .ingress).dropReasons[ACL.Reason.defaultPolicy.rawValue].packets > before, "SYNs dropped")
        var events: [TraceEvent] = []
        while true {
            let more = try trace.next(timeoutMilliseconds: 0)
            if more.isEmpty { break }
            events += more
        }
        let denied = events.filter { $0.plugin == "acl" && $0.hook == .ingress && $0.verdict == "drop" && $0.reason == "default-deny" }
        #expect(denied.contains { $0.proto == 6 && $0.destinationPort == 5201 && $0.source4 == a1.ip && $0.destination4 == b1.ip }, "the SYN: \(events)")
        #expect(denied.filter { $0.proto == 1 }.count >= 3, "the echo requests")
        try lab.host("hostb").dataplane.setTracing(nil)

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
