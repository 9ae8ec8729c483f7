import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport
import Testing

/// One row of the agent's table: a frame sent by endpoint A and the one slot it must move.
struct AgentCase: CustomTestStringConvertible, Sendable {
    let name: String
    let packet: [UInt8]
    let outcome: AgentStat
    var testDescription: String { name }
}

private let fromA = { (dst: IPv4Address) in Wire.icmp(from: Wire.a, Wire.aMAC, to: dst) }
private func arpFromA(target: IPv4Address, senderMAC: MACAddress = Wire.aMAC, senderIP: IPv4Address = Wire.a, reply: Bool = false) -> [UInt8] {
    PacketBuilder.ethernet(src: Wire.aMAC, dst: .broadcast, etherType: PacketBuilder.etherTypeARP,
                           payload: PacketBuilder.arp(reply: reply, senderMAC: senderMAC, senderIP: senderIP, targetIP: target))
}

let agentCases: [AgentCase] = {
    let other = MACAddress("02:00:0a:00:01:99")!
    return [
        AgentCase(name: "to B on Y: this bouncer knows the way", packet: fromA(Wire.b), outcome: .direct),
        AgentCase(name: "to an unknown peer: via a bouncer", packet: fromA(IPv4Address(10, 0, 1, 50)), outcome: .toBouncer),
        // D divides VPC 100 itself: a frame to its own address would never come back, so the agent divides (to X, the network's bouncer).
        AgentCase(name: "to another network: divided here, to its bouncer", packet: fromA(IPv4Address(10, 0, 2, 5)), outcome: .toBouncer),
        AgentCase(name: "to C on this droplet", packet: fromA(Wire.c), outcome: .local),
        AgentCase(name: "ARP for a peer", packet: arpFromA(target: Wire.b), outcome: .arpReplied),
        AgentCase(name: "ARP for the gateway", packet: arpFromA(target: IPv4Address(10, 0, 1, 1)), outcome: .arpReplied),
        AgentCase(name: "ARP outside the VPC", packet: arpFromA(target: IPv4Address(8, 8, 8, 8)), outcome: .arpIgnored),
        AgentCase(name: "gratuitous ARP", packet: arpFromA(target: Wire.a), outcome: .arpIgnored),
        AgentCase(name: "duplicate-address probe", packet: arpFromA(target: Wire.b, senderIP: IPv4Address(0, 0, 0, 0)), outcome: .arpIgnored),
        AgentCase(name: "ARP reply", packet: arpFromA(target: Wire.b, reply: true), outcome: .arpIgnored),
        AgentCase(name: "ARP with another sender MAC", packet: arpFromA(target: Wire.b, senderMAC: other), outcome: .spoofedMAC),
        AgentCase(name: "ARP with another sender IP", packet: arpFromA(target: Wire.b, senderIP: IPv4Address(10, 0, 1, 99)), outcome: .spoofedIP),
        AgentCase(name: "truncated ARP", packet: Array(arpFromA(target: Wire.b).prefix(30)), outcome: .badARP),
        AgentCase(name: "spoofed source IP", packet: Wire.icmp(from: IPv4Address(10, 0, 1, 99), Wire.aMAC, to: Wire.b), outcome: .spoofedIP),
        AgentCase(name: "spoofed source MAC", packet: Wire.icmp(from: Wire.a, other, to: Wire.b), outcome: .spoofedMAC),
        AgentCase(name: "TTL 1 to another network", packet: Wire.icmp(from: Wire.a, Wire.aMAC, to: IPv4Address(10, 0, 2, 5), ttl: 1), outcome: .ttlExpired),
        AgentCase(name: "outside the VPC", packet: fromA(IPv4Address(8, 8, 8, 8)), outcome: .noRoute),
        AgentCase(name: "IPv4 to the broadcast MAC", packet: Wire.icmp(from: Wire.a, Wire.aMAC, to: IPv4Address(10, 0, 1, 255), dstMAC: .broadcast), outcome: .broadcast),
        AgentCase(name: "IPv6", packet: PacketBuilder.ethernet(src: Wire.aMAC, dst: Wire.gatewayMAC, etherType: PacketBuilder.etherTypeIPv6, payload: Array(repeating: 0, count: 40)), outcome: .unsupported),
        AgentCase(name: "truncated IPv4", packet: Array(fromA(Wire.b).prefix(30)), outcome: .badIPv4),
        AgentCase(name: "larger than the substrate MTU allows", packet: Wire.icmp(from: Wire.a, Wire.aMAC, to: Wire.b).prefix(34)
            + Array(repeating: 0, count: 1450), outcome: .tooBig),
    ]
}()

@Suite("Transit agent: packet table through BPF_PROG_TEST_RUN", .serialized)
final class TransitAgentTableTests {
    let bed: TableBed

    init() throws { bed = try TableBed() }
    deinit { bed.teardown() }

    @Test(arguments: agentCases)
    func frameGetsItsVerdictAndOneOutcome(_ row: AgentCase) throws {
        let packet = row.outcome == .tooBig ? fixLength(row.packet) : row.packet
        let before = try bed.droplet.agentCounters()
        let result = try bed.agentRun(packet)
        let delta = try bed.droplet.agentCounters().delta(since: before)
        #expect(result.action == row.outcome.action)
        #expect(delta.totalPackets == 1)
        #expect(delta[row.outcome] == Counter(packets: 1, bytes: UInt64(packet.count)), "\(delta)")
    }

    /// The TC entry shares the decision: same outcome slot, the TC form of the verdict.
    @Test(arguments: agentCases)
    func tcEntryGivesTheSameOutcome(_ row: AgentCase) throws {
        let packet = row.outcome == .tooBig ? fixLength(row.packet) : row.packet
        if row.outcome == .badIPv4 {
            // skb test-run refuses an IPv4 frame shorter than an IPv4 header (the stack never builds one).
            #expect { try self.bed.agentRunTC(packet) } throws: { ($0 as? BPFError)?.errno == EINVAL }
            return
        }
        let before = try bed.droplet.agentCounters()
        let result = try bed.agentRunTC(packet)
        let delta = try bed.droplet.agentCounters().delta(since: before)
        #expect(result.tcAction == (row.outcome.action == .drop ? .shot : .redirect))
        #expect(delta.totalPackets == 1)
        #expect(delta[row.outcome] == Counter(packets: 1, bytes: UInt64(packet.count)), "\(delta)")
    }

    @Test func tcAndXDPEntriesWriteTheSameBytes() throws {
        for frame in [fromA(Wire.b), fromA(IPv4Address(10, 0, 2, 5)), fromA(Wire.c), arpFromA(target: Wire.b)] {
            #expect(try bed.agentRunTC(frame).packet == bed.agentRun(frame).packet)
        }
    }

    @Test func encapsulationIsGeneveWithRTSPerDesign() throws {
        let frame = fromA(Wire.b)
        let result = try bed.agentRun(frame)
        #expect(result.action == .redirect)
        let outer = try #require(OuterHeaders(result.packet))
        #expect(result.packet.count == frame.count + Int(MZ_ENCAP_OVERHEAD))
        #expect(outer.dstMAC == Wire.y.mac && outer.srcMAC == Wire.d.mac)
        #expect(outer.src == Wire.d.ip && outer.dst == Wire.y.ip)
        #expect(outer.ttl == UInt8(MZ_OUTER_TTL) && outer.dontFragment && outer.ipChecksumValid)
        #expect(outer.totalLength == result.packet.count - 14)
        #expect(outer.destinationPort == UInt16(MZ_GENEVE_UDP_PORT) && outer.udpChecksum == 0 && outer.udpLength == result.packet.count - 34)
        #expect((UInt16(MZ_GENEVE_SPORT_MIN)...UInt16(MZ_GENEVE_SPORT_MAX)).contains(outer.sourcePort))
        #expect(outer.geneveProtocol == UInt16(MZ_GENEVE_PROTO_ETH) && outer.vni == 100 && result.packet[43] == 0)
        #expect(outer.options == GeneveOption.returnToSender(dropletIP: Wire.d.ip, dropletMAC: Wire.d.mac).bytes)
        #expect(outer.inner == frame, "the endpoint's frame travels unchanged")
    }

    @Test func differentFlowsSpreadOverSourcePortsAndAFlowKeepsItsPort() throws {
        func sport(_ port: UInt16) throws -> UInt16 {
            let frame = PacketBuilder.ethernet(src: Wire.aMAC, dst: Wire.gatewayMAC, etherType: PacketBuilder.etherTypeIPv4,
                                               payload: PacketBuilder.ipv4(src: Wire.a, dst: Wire.b, protocol: PacketBuilder.protocolUDP,
                                                                           payload: PacketBuilder.udp(src: Wire.a, dst: Wire.b, sourcePort: port, destinationPort: 53, payload: [1])))
            return try #require(OuterHeaders(try bed.agentRun(frame).packet)).sourcePort
        }
        #expect(try sport(1000) == sport(1000))
        #expect(Set(try (1000..<1016).map(sport)).count > 8)
    }

    @Test func arpReplyAnswersWithTheGatewayMAC() throws {
        let result = try bed.agentRun(arpFromA(target: Wire.b))
        #expect(result.action == .tx)
        let expected = PacketBuilder.ethernet(src: bed.gatewayA, dst: Wire.aMAC, etherType: PacketBuilder.etherTypeARP,
                                              payload: PacketBuilder.arp(reply: true, senderMAC: bed.gatewayA, senderIP: Wire.b, targetMAC: Wire.aMAC, targetIP: Wire.a))
        #expect(result.packet == expected)
    }

    @Test func routedToALocalEndpointTheTTLDropsAndMACsChange() throws {
        let result = try bed.agentRun(fromA(Wire.c))
        #expect(result.action == .redirect)
        var expected = fromA(Wire.c)
        expected.replaceSubrange(0..<12, with: Wire.cMAC.bytes + bed.gatewayC.bytes)
        expected[22] = 63
        expected[24] = 0
        expected[25] = 0
        let sum = PacketBuilder.internetChecksum(Array(expected[14..<34]))
        expected[24] = UInt8(sum >> 8)
        expected[25] = UInt8(sum & 0xff)
        #expect(result.packet == expected)
    }

    @Test func learnedPathIsUsedForPeers() throws {
        // Q (10.0.1.20) on P sent to A: transit XDP learned it; A's replies go straight to P.
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())
        let result = try bed.agentRun(fromA(Wire.q))
        let outer = try #require(OuterHeaders(result.packet))
        #expect(outer.dst == Wire.p.ip && outer.dstMAC == Wire.p.mac)
    }

    /// The outcomes the fixed bed cannot produce: another port, a network or VPC left without
    /// its bouncers or dividers (put back after).
    @Test func outcomesThatNeedAnotherPortOrTable() throws {
        func agentSlot(_ packet: [UInt8], ifindex: Int32? = nil) throws -> AgentStat? {
            let before = try bed.droplet.agentCounters()
            #expect(try bed.agentRun(packet, ifindex: ifindex).action == .drop)
            let delta = try bed.droplet.agentCounters().delta(since: before)
            #expect(delta.totalPackets == 1)
            return AgentStat.allCases.first { !$0.isEvent && delta[$0].packets == 1 }
        }
        #expect(try agentSlot(fromA(Wire.b), ifindex: 1) == .unknownPort)

        // setNetwork refuses a network without bouncers; an older writer of the pinned table may not have.
        let own = Network(vni: 100, cidr: IPv4Interface("10.0.1.0/24")!, bouncers: [Wire.d])
        let other = Network(vni: 100, cidr: IPv4Interface("10.0.2.0/24")!, bouncers: [Wire.x])
        defer { try? bed.droplet.setNetwork(own); try? bed.droplet.setNetwork(other) }
        for network in [own, other] {
            var value = try #require(try bed.droplet.maps.networks.lookup(network.id.key))
            value.bouncer_count = 0
            try bed.droplet.maps.networks.update(network.id.key, value)
        }
        #expect(try agentSlot(fromA(IPv4Address(10, 0, 1, 50))) == .noBouncer)
        // Transit XDP divides VPC 100: a network without bouncers leaves it nowhere to go.
        let before = try bed.droplet.transitCounters()
        #expect(try bed.droplet.transitProgram.testRun(packet: Wire.geneve(inner: Wire.icmp(from: Wire.q, Wire.qMAC, to: IPv4Address(10, 0, 2, 5)))).action == .drop)
        #expect(try bed.droplet.transitCounters().delta(since: before)[.noBouncer].packets == 1)

        try bed.droplet.setVPC(VPC(vni: 100, dividers: []))
        defer { try? bed.droplet.setVPC(VPC(vni: 100, dividers: [Wire.d])) }
        #expect(try agentSlot(fromA(IPv4Address(10, 0, 2, 5))) == .noDivider)

        // Another droplet divides VPC 100: the frame goes to it.
        try bed.droplet.setVPC(VPC(vni: 100, dividers: [Wire.x]))
        let before2 = try bed.droplet.agentCounters()
        let sent = try bed.agentRun(fromA(IPv4Address(10, 0, 2, 5)))
        #expect(OuterHeaders(sent.packet)?.dst == Wire.x.ip)
        #expect(try bed.droplet.agentCounters().delta(since: before2)[.toDivider].packets == 1)
    }

    /// Makes the IPv4 total length match an oversized frame built from a prefix.
    private func fixLength(_ frame: [UInt8]) -> [UInt8] {
        var f = frame
        let total = f.count - 14
        f[16] = UInt8(total >> 8)
        f[17] = UInt8(total & 0xff)
        f[24] = 0
        f[25] = 0
        let sum = PacketBuilder.internetChecksum(Array(f[14..<34]))
        f[24] = UInt8(sum >> 8)
        f[25] = UInt8(sum & 0xff)
        return f
    }
}

@Suite("Direct path: ageing and switching off", .serialized)
struct DirectPathAgeTests {
    private func outcome(_ bed: TableBed) throws -> AgentStat? {
        let before = try bed.droplet.agentCounters()
        _ = try bed.agentRun(Wire.icmp(from: Wire.a, Wire.aMAC, to: Wire.q))
        let delta = try bed.droplet.agentCounters().delta(since: before)
        return AgentStat.allCases.first { delta[$0].packets == 1 }
    }

    @Test func aLearnedPathIsUsedUntilItAges() throws {
        let bed = try TableBed(directPathMaxAge: .milliseconds(300))
        defer { bed.teardown() }
        #expect(try outcome(bed) == .toBouncer)
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())  // Q on P sends to A: learned
        #expect(try outcome(bed) == .direct)
        usleep(450_000)
        #expect(try outcome(bed) == .toBouncer, "an unrefreshed path is not trusted past its age")
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())  // refreshed by new traffic
        #expect(try outcome(bed) == .direct)
    }

    @Test func zeroAgeTurnsTheDirectPathOff() throws {
        let bed = try TableBed(directPathMaxAge: .zero)
        defer { bed.teardown() }
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())
        #expect(try bed.droplet.learnedPaths().isEmpty, "nothing is learned when nothing would use it")
        #expect(try outcome(bed) == .toBouncer)
    }
}
