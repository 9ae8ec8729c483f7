import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport
import Testing

/// DESIGN §7: a fabric bridge and four droplets. VPC 1 (VNI 100) with 10.0.1.0/24 and
/// 10.0.2.0/24; VPC 2 (VNI 200) reusing 10.0.1.0/24. Endpoints a1 (10.0.1.2, host A),
/// b1 (10.0.1.3, host B), b2 (10.0.2.3, host B), v2 (VNI 200, 10.0.1.3 like b1, host B).
func makeLab(underlayMTU: UInt32 = 1500, agentHook: AgentHook = .tc) throws -> OverlayLab {
    try OverlayLab.design(underlayMTU: underlayMTU, agentHook: agentHook, locator: TestPaths.locator)
}

extension OverlayLab {
    func counters(_ host: String) throws -> TransitCounters { try self.host(host).dataplane.transitCounters() }
    func agent(_ host: String) throws -> AgentCounters { try self.host(host).dataplane.agentCounters() }
}

@Suite("Overlay across real namespaces: bouncer, divider, direct path, isolation", .serialized)
struct OverlayTopologyTests {
    @Test func packetPathsIsolationAndSpoofing() throws {
        let lab = try makeLab()
        defer { lab.teardown() }
        for name in lab.hosts.keys { #expect(lab.host(name).dataplane.attachedMode == .native) }
        #expect(lab.host("hostb").dataplane.attachments == ["eth0": "xdp native", lab.hostSide(lab.guest("b1")): "tc",
                                                            lab.hostSide(lab.guest("b2")): "tc", lab.hostSide(lab.guest("v2")): "tc"])

        // Same network: the first packet passes the bouncer, later ones go host to host.
        let bouncer0 = try lab.counters("bouncer")
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 5) == 5)
        let firstRound = try lab.counters("bouncer").delta(since: bouncer0)
        #expect((1...2).contains(firstRound[.bounced].packets), "first packets bounce: \(firstRound)")
        #expect(try lab.agent("hosta")[.direct].packets >= 3)
        let bouncer1 = try lab.counters("bouncer")
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 5) == 5)
        #expect(try lab.counters("bouncer").delta(since: bouncer1)[.bounced].packets == 0, "later packets skip the bouncer")
        #expect(try lab.host("hosta").dataplane.learnedPaths()[lab.guest("b1").id] == lab.host("hostb").address)

        // Other network: every packet, both ways, passes the divider.
        let divider0 = try lab.counters("divider")
        #expect(try lab.ping(from: "a1", to: lab.guest("b2").ip, count: 5) == 5)
        #expect(try lab.counters("divider").delta(since: divider0)[.divided].packets == 10)
        #expect(try lab.host("hostb").dataplane.learnedPaths()[lab.guest("a1").id] == lab.host("hosta").address, "only intra-network paths")

        // VPC isolation: v2 holds b1's IP in VPC 2 and hears nothing of VPC 1.
        let v2Before = try lab.receivedPackets("v2")
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 3) == 3)
        #expect(try lab.ping(from: "v2", to: lab.guest("a1").ip, count: 2) == 0, "a1's IP does not exist in VPC 2")
        #expect(try lab.receivedPackets("v2") - v2Before <= 2, "v2 only sees its own ARP replies")
        #expect(try lab.counters("bouncer")[.unknownEndpoint].packets >= 2)

        // Anti-spoofing: a source address that is not a1's is dropped at the agent.
        let spoof0 = try lab.agent("hosta")
        try runCommand(["ip", "addr", "add", "10.0.1.99/32", "dev", "eth0"], in: lab.guest("a1").netns)
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 3, extra: ["-I", "10.0.1.99"]) == 0)
        #expect(try lab.agent("hosta").delta(since: spoof0)[.spoofedIP].packets >= 3)

        // The droplets' own traffic still works through XDP_PASS.
        let underlay = try runCommand(["ping", "-c", "2", "-i", "0.2", "-W", "1", lab.host("hostb").address.ip.description], in: lab.host("hosta").netns)
        #expect(pingReplies(underlay.output) == 2)
        #expect(try lab.counters("hostb")[.nonUDP].packets >= 2)
    }
}
