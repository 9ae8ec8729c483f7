import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport
import Testing

/// One row of the table: a packet from P and the counter slots it must move.
struct TransitCase: CustomTestStringConvertible, Sendable {
    let name: String
    let packet: [UInt8]
    let outcome: TransitStat
    var events: [TransitStat] = []
    var testDescription: String { name }
}

private func edited(_ frame: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
    var f = frame
    edit(&f)
    return f
}

let transitCases: [TransitCase] = {
    let good = Wire.geneve()
    let unknown = GeneveOption(type: 0x49, data: [1, 2, 3, 4])
    let foreignRTS = GeneveOption(optionClass: 0x0102, type: UInt8(MZ_GENEVE_OPT_RTS), data: Array(repeating: 0, count: 12))
    let criticalUnknown = GeneveOption(type: 0xc9, data: [])
    let shortRTS = GeneveOption(type: UInt8(MZ_GENEVE_OPT_RTS), data: Array(repeating: 0, count: 8))
    let overlong = GeneveOption(type: 0x49, data: [0, 0, 0, 0], declaredWords: 5)
    let rtsOfY = GeneveOption.returnToSender(dropletIP: Wire.y.ip, dropletMAC: Wire.y.mac)
    let rtsOfStranger = GeneveOption.returnToSender(dropletIP: Wire.stranger.ip, dropletMAC: Wire.stranger.mac)
    let rtsOfPWrongMAC = GeneveOption.returnToSender(dropletIP: Wire.p.ip, dropletMAC: Wire.y.mac)
    var optlenPastEnd = PacketBuilder.geneve(vni: 100, options: [], payload: [])
    optlenPastEnd[0] = 10  // 40 bytes of options announced, none present
    var version1 = PacketBuilder.geneve(vni: 100, options: [Wire.rts], payload: Wire.inner)
    version1[0] |= 0x40
    let manyOptions = Array(repeating: unknown, count: 10)
    let tcp = Wire.ether(PacketBuilder.ipv4(src: Wire.p.ip, dst: Wire.d.ip, protocol: PacketBuilder.protocolTCP, payload: Array(repeating: 0, count: 20)))
    let fragment = Wire.ether(PacketBuilder.ipv4(src: Wire.p.ip, dst: Wire.d.ip, protocol: PacketBuilder.protocolUDP, payload: Array(repeating: 0, count: 40), fragmentOffset: 10))
    let udpTruncated = Wire.ether(PacketBuilder.ipv4(src: Wire.p.ip, dst: Wire.d.ip, protocol: PacketBuilder.protocolUDP, payload: [0x9c, 0x40, 0x17]))
    let innerARP = PacketBuilder.ethernet(src: Wire.qMAC, dst: .broadcast, etherType: PacketBuilder.etherTypeARP,
                                          payload: PacketBuilder.arp(senderMAC: Wire.qMAC, senderIP: Wire.q, targetIP: Wire.a))
    let to = { (ip: IPv4Address) in Wire.icmp(from: Wire.q, Wire.qMAC, to: ip) }
    return [
        // Delivered to local endpoint A.
        TransitCase(name: "delivered with RTS: learned", packet: good, outcome: .delivered, events: [.optionRTS, .learned, .learnedNew]),
        TransitCase(name: "delivered without options", packet: Wire.geneve(options: []), outcome: .delivered),
        TransitCase(name: "unknown option is skipped", packet: Wire.geneve(options: [unknown, Wire.rts]), outcome: .delivered, events: [.optionRTS, .optionUnknown, .learned, .learnedNew]),
        TransitCase(name: "RTS type of another class is unknown", packet: Wire.geneve(options: [foreignRTS]), outcome: .delivered, events: [.optionUnknown]),
        TransitCase(name: "options past the walk cap, no C bit", packet: Wire.geneve(options: manyOptions), outcome: .delivered, events: [.optionUnknown]),
        TransitCase(name: "Ethernet padding after the datagram", packet: good + Array(repeating: 0, count: 16), outcome: .delivered, events: [.optionRTS, .learned, .learnedNew]),
        // Only droplets speak Geneve here, and only a droplet's true address is learned.
        TransitCase(name: "Geneve from a host that is no droplet", packet: Wire.geneve(from: Wire.stranger), outcome: .geneveFromUnknownSource),
        TransitCase(name: "Geneve from a stranger for a bounce", packet: Wire.geneve(inner: to(Wire.b), from: Wire.stranger), outcome: .geneveFromUnknownSource),
        TransitCase(name: "RTS naming a host that is no droplet: not learned", packet: Wire.geneve(options: [rtsOfStranger]), outcome: .delivered,
                    events: [.optionRTS, .rtsUnknownDroplet]),
        TransitCase(name: "RTS naming P with another MAC: not learned", packet: Wire.geneve(options: [rtsOfPWrongMAC]), outcome: .delivered,
                    events: [.optionRTS, .rtsUnknownDroplet]),
        // Forwarded to another droplet.
        TransitCase(name: "bouncer: endpoint on Y", packet: Wire.geneve(inner: to(Wire.b)), outcome: .bounced, events: [.optionRTS]),
        TransitCase(name: "divider: another network of the VPC", packet: Wire.geneve(inner: to(IPv4Address(10, 0, 2, 5))), outcome: .divided, events: [.optionRTS]),
        TransitCase(name: "VPC 200 reusing A's IP, sent direct: fallback, not A", packet: Wire.geneve(vni: 200), outcome: .fallback, events: [.optionRTS]),
        // Dropped: nowhere to go.
        TransitCase(name: "VPC 200 reusing A's IP, bounced here: stale", packet: Wire.geneve(vni: 200, options: [rtsOfY]), outcome: .stale, events: [.optionRTS]),
        TransitCase(name: "VPC 200 without RTS: stale", packet: Wire.geneve(vni: 200, options: []), outcome: .stale),
        TransitCase(name: "bouncer does not know the endpoint", packet: Wire.geneve(inner: to(IPv4Address(10, 0, 1, 9))), outcome: .unknownEndpoint, events: [.optionRTS]),
        TransitCase(name: "address in no network", packet: Wire.geneve(inner: to(IPv4Address(10, 9, 9, 9))), outcome: .noNetwork, events: [.optionRTS]),
        TransitCase(name: "unknown VNI", packet: Wire.geneve(vni: 300), outcome: .noNetwork, events: [.optionRTS]),
        TransitCase(name: "outer TTL runs out on a bounce", packet: Wire.geneve(inner: to(Wire.b), ttl: 1), outcome: .outerTTL, events: [.optionRTS]),
        // Dropped: malformed overlay traffic.
        TransitCase(name: "options past the walk cap, C bit", packet: Wire.geneve(options: manyOptions, critical: true), outcome: .geneveCritical),
        TransitCase(name: "unknown critical option", packet: Wire.geneve(options: [criticalUnknown]), outcome: .geneveCritical),
        TransitCase(name: "RTS of the wrong length", packet: Wire.geneve(options: [shortRTS]), outcome: .badGeneveOption),
        TransitCase(name: "option longer than the options", packet: Wire.geneve(options: [overlong]), outcome: .badGeneveOption),
        TransitCase(name: "options longer than the packet", packet: Wire.geneveFrame(optlenPastEnd), outcome: .badGeneveOption),
        TransitCase(name: "Geneve version 1", packet: Wire.geneveFrame(version1), outcome: .badGeneve),
        TransitCase(name: "truncated Geneve header", packet: Wire.geneveFrame([0, 0, 0x65, 0x58]), outcome: .badGeneve),
        TransitCase(name: "Geneve carrying IPv4, not Ethernet", packet: Wire.geneve(proto: 0x0800), outcome: .geneveProtocol, events: [.optionRTS]),
        TransitCase(name: "truncated inner Ethernet", packet: Wire.geneve(inner: [1, 2, 3, 4, 5, 6]), outcome: .badInner, events: [.optionRTS]),
        TransitCase(name: "truncated inner IPv4", packet: Wire.geneve(inner: Array(Wire.inner.prefix(24))), outcome: .badInner, events: [.optionRTS]),
        TransitCase(name: "inner ARP", packet: Wire.geneve(inner: innerARP), outcome: .innerNonIPv4, events: [.optionRTS]),
        TransitCase(name: "inner TTL 0", packet: Wire.geneve(inner: Wire.icmp(from: Wire.q, Wire.qMAC, to: Wire.a, ttl: 0)), outcome: .innerTTL, events: [.optionRTS]),
        // Passed: the droplet's own traffic (malformed outer IP is the stack's to judge).
        TransitCase(name: "Geneve to another droplet", packet: Wire.geneve(to: Wire.x.ip), outcome: .notForDroplet),
        TransitCase(name: "truncated IPv4 header", packet: Array(good.prefix(14 + 10)), outcome: .badIPv4),
        TransitCase(name: "IPv4 IHL below 5", packet: edited(good) { $0[14] = 0x44 }, outcome: .badIPv4),
        TransitCase(name: "IPv4 total length past the frame", packet: Array(good.prefix(good.count - 8)), outcome: .badIPv4),
        TransitCase(name: "IPv4 total length below the header", packet: edited(good) { $0[16] = 0; $0[17] = 12 }, outcome: .badIPv4),
        TransitCase(name: "truncated UDP header", packet: udpTruncated, outcome: .badUDP),
        TransitCase(name: "ARP", packet: Wire.ether(Array(repeating: 0, count: 28), type: PacketBuilder.etherTypeARP), outcome: .nonIPv4),
        TransitCase(name: "IPv6", packet: Wire.ether(Array(repeating: 0, count: 40), type: PacketBuilder.etherTypeIPv6), outcome: .nonIPv4),
        TransitCase(name: "TCP", packet: tcp, outcome: .nonUDP),
        TransitCase(name: "UDP to DNS", packet: Wire.udpFrame(port: 53, payload: [1, 2, 3, 4]), outcome: .nonGeneve),
        TransitCase(name: "later IPv4 fragment", packet: fragment, outcome: .ipv4Fragment),
    ]
}()

@Suite("Transit XDP: packet table through BPF_PROG_TEST_RUN", .serialized)
final class TransitXDPTableTests {
    let bed: TableBed

    init() throws { bed = try TableBed() }
    deinit { bed.teardown() }

    @Test(arguments: transitCases)
    func packetGetsItsVerdictAndOneOutcome(_ row: TransitCase) throws {
        let before = try bed.droplet.transitCounters()
        let result = try bed.droplet.transitProgram.testRun(packet: row.packet)
        let delta = try bed.droplet.transitCounters().delta(since: before)
        #expect(result.action == row.outcome.action)
        if result.action == .pass { #expect(result.packet == row.packet, "what transit XDP passes is untouched") }
        #expect(delta.totalPackets == 1)
        #expect(delta[row.outcome] == Counter(packets: 1, bytes: UInt64(row.packet.count)))
        for stat in TransitStat.allCases where stat.isEvent {
            #expect(delta[stat].packets == (row.events.contains(stat) ? 1 : 0), "event slot \(stat)")
        }
    }

    @Test func deliveryDecapsulatesRewritesMACsAndLearnsTheSender() throws {
        let result = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())
        #expect(result.action == .redirect)
        var expected = Wire.inner
        expected.replaceSubrange(0..<12, with: Wire.aMAC.bytes + bed.gatewayA.bytes)
        #expect(result.packet == expected)
        #expect(try bed.droplet.learnedPaths()[EndpointID(vni: 100, ip: Wire.q)] == Wire.p)
        // A second packet within the refresh interval does not rewrite the entry.
        let before = try bed.droplet.transitCounters()
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())
        #expect(try bed.droplet.transitCounters().delta(since: before)[.learned].packets == 0)
    }

    /// A cache of 16 paths learns 40: the ones it evicted to make room are counted, apart
    /// from a path removed with its endpoint.
    @Test func directPathEvictionsAreCounted() throws {
        var limits = DropletLimits()
        limits.directPaths = 16
        let small = try TableBed(limits: limits)
        defer { small.teardown() }
        let before = try small.droplet.transitCounters()
        for i in 0..<40 {
            let packet = Wire.geneve(inner: Wire.icmp(from: IPv4Address(10, 0, 1, UInt8(100 + i)), Wire.qMAC, to: Wire.a))
            #expect(try small.droplet.transitProgram.testRun(packet: packet).action == .redirect)
        }
        #expect(try small.droplet.transitCounters().delta(since: before)[.learnedNew].packets == 40)
        let held = try small.droplet.learnedPaths()
        #expect(held.count <= 16 && !held.isEmpty)
        #expect(try small.droplet.directPathEvictions() == UInt64(40 - held.count))
        // Removed with its endpoint: not an eviction.
        try small.droplet.removeEndpoint(try #require(held.keys.first))
        #expect(try small.droplet.learnedPaths().count == held.count - 1)
        #expect(try small.droplet.directPathEvictions() == UInt64(40 - held.count))
    }

    @Test(arguments: [(Wire.b, Wire.y), (IPv4Address(10, 0, 2, 5), Wire.x)])
    func bounceAndDivideReaddressTheOuterHeadersOnly(_ destination: IPv4Address, _ next: DropletAddress) throws {
        let inner = Wire.icmp(from: Wire.q, Wire.qMAC, to: destination)
        let packet = Wire.geneve(inner: inner)
        let result = try bed.droplet.transitProgram.testRun(packet: packet)
        #expect(result.action == .tx)
        let outer = try #require(OuterHeaders(result.packet))
        #expect(outer.dstMAC == next.mac && outer.srcMAC == Wire.d.mac)
        #expect(outer.dst == next.ip && outer.src == Wire.d.ip)
        #expect(outer.ttl == 63 && outer.ipChecksumValid)
        #expect(outer.options == Wire.rts.bytes, "the RTS still names the source's droplet")
        #expect(outer.inner == inner)
        #expect(Array(result.packet[34...]) == Array(packet[34...]), "UDP, Geneve and inner frame unchanged")
    }

    @Test func namesAndLayoutsMatchTheObjects() throws {
        #expect(Set(try bed.droplet.maps.entryCounts().keys) == [MZ_ENDPOINTS_MAP, MZ_LOCAL_ENDPOINTS_MAP, MZ_NETWORKS_MAP, MZ_VPCS_MAP, MZ_DIRECT_PATH_MAP, MZ_DROPLETS_MAP])
        #expect(bed.droplet.maps.endpoints.handle.maxEntries == MZ_DEFAULT_ENDPOINTS)
        #expect(MemoryLayout<mz_transit_stats>.size == 16 * Int(MZ_TRANSIT_STAT_MAX.rawValue))
        #expect(MemoryLayout<mz_agent_stats>.size == 16 * Int(MZ_AGENT_STAT_MAX.rawValue))
        #expect(MemoryLayout<mz_endpoint>.size == 32 && MemoryLayout<mz_local_endpoint>.size == 24)
        #expect(MemoryLayout<mz_network>.size == 8 + 12 * Int(MZ_MAX_BOUNCERS))
        #expect(MemoryLayout<mz_geneve_hdr>.size == 8 && MemoryLayout<mz_geneve_rts>.size == 12)
    }

    /// Every slot of both lists comes from its C row: named, documented, one name per slot.
    @Test func everySlotHasItsRow() {
        func check<S: DescribedSlot>(_: S.Type) {
            #expect(S.allCases.count == Int(S.slotCount))
            #expect(Set(S.allCases.map(\.description)).count == S.allCases.count, "names are unique")
            for slot in S.allCases {
                #expect(slot.description.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } && !slot.description.isEmpty, "\(slot.rawValue)")
                #expect(!slot.info.doc.isEmpty, "\(slot) is documented")
                #expect(S(named: slot.description) == slot)
            }
        }
        check(TransitStat.self)
        check(AgentStat.self)
    }

    /// Each outcome slot is produced by a row of the packet tables, or by the named test that
    /// needs more than one packet on a fixed bed (a chain, a second port, a full map).
    @Test func everyOutcomeIsProducedByATest() {
        let transitElsewhere: [TransitStat: String] = [
            .badEthernet: "runtShorterThanEthernetIsRefusedByTheKernel (the kernel refuses a frame under 14 bytes)",
            .noBouncer: "TransitAgentTableTests.outcomesThatNeedAnotherPortOrTable",
            .notLocal: "PluginChainTests (ingress chain steering)",
            .chainUnavailable: "FailClosedTests.ingressChainThatCannotBeEnteredDrops",
        ]
        let agentElsewhere: [AgentStat: String] = [
            .badEthernet: "the kernel refuses a frame under 14 bytes",
            .leftOverlay: "PluginChainTests (nat masquerade)",
            .underlayRefused: "NATUnderlayTests.craftedGeneveToADropletIsRefusedAtTheAgent",
            .chainUnavailable: "FailClosedTests.egressChainThatCannotBeEnteredDrops",
            .unknownPort: "TransitAgentTableTests.outcomesThatNeedAnotherPortOrTable",
            .noBouncer: "TransitAgentTableTests.outcomesThatNeedAnotherPortOrTable",
            .noDivider: "TransitAgentTableTests.outcomesThatNeedAnotherPortOrTable",
            .toDivider: "TransitAgentTableTests.outcomesThatNeedAnotherPortOrTable",
            .encapFailed: "needs an skb without headroom: not reachable through test-run",
        ]
        let transitProduced = Set(transitCases.map(\.outcome)), agentProduced = Set(agentCases.map(\.outcome))
        let transitMissing = TransitStat.allCases.filter { !$0.isEvent && !transitProduced.contains($0) && transitElsewhere[$0] == nil }
        let agentMissing = AgentStat.allCases.filter { !$0.isEvent && !agentProduced.contains($0) && agentElsewhere[$0] == nil }
        #expect(transitMissing.isEmpty, "transit outcomes no test produces: \(transitMissing)")
        #expect(agentMissing.isEmpty, "agent outcomes no test produces: \(agentMissing)")
    }

    /// The one outcome a Geneve frame from p (to an endpoint hosted here) takes.
    private func outcome(from source: DropletAddress = Wire.p) throws -> TransitStat? {
        let before = try bed.droplet.transitCounters()
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve(from: source))
        let delta = try bed.droplet.transitCounters().delta(since: before)
        return TransitStat.allCases.first { !$0.isEvent && delta[$0].packets == 1 }
    }

    /// A droplet that leaves the cluster is refused from its next packet on, though the CPUs
    /// the test ran on had it cached, and the paths learned towards it go; one that comes back
    /// is accepted.
    @Test func aDropletThatLeavesIsRefusedAtOnce() throws {
        for _ in 0..<20 { #expect(try outcome() == .delivered) }
        #expect(try bed.droplet.learnedPaths()[EndpointID(vni: 100, ip: Wire.q)] == Wire.p)
        try bed.droplet.setKnownDroplets([Wire.x, Wire.y])
        for _ in 0..<20 { #expect(try outcome() == .geneveFromUnknownSource) }
        #expect(try bed.droplet.learnedPaths()[EndpointID(vni: 100, ip: Wire.q)] == nil, "no path to a droplet that left")
        try bed.droplet.setKnownDroplets([Wire.p, Wire.x, Wire.y])
        #expect(try outcome() == .delivered)
        #expect { try bed.droplet.setKnownDroplets([Wire.p, DropletAddress(ip: Wire.p.ip, mac: Wire.y.mac)]) } throws: { _ in true }
        #expect(try bed.droplet.knownDroplets() == [Wire.d, Wire.p, Wire.x, Wire.y], "a refused change changes nothing")
    }

    /// The per-packet check reads one slot per last octet; droplets that share one are found
    /// in the table, and an address that merely ends like a droplet's is still refused.
    @Test func dropletsThatEndInTheSameOctetAreTold() throws {
        let twin = DropletAddress(ip: IPv4Address(10, 99, 0, Wire.p.ip.bytes[3]), mac: MACAddress("02:00:00:00:00:99")!)  // ends like p
        try bed.droplet.setKnownDroplets([twin, Wire.x, Wire.y])
        #expect(try outcome() == .geneveFromUnknownSource, "p's slot names its twin only")
        try bed.droplet.setKnownDroplets([Wire.p, twin, Wire.x, Wire.y])
        let octet = Int(Wire.p.ip.bytes[3])
        #expect(try bed.droplet.dropletIndexSlots()[octet] >> 32 == UInt64(MZ_DROPLET_SLOT_SHARED))
        #expect(try outcome() == .delivered, "p is found in the table behind its shared slot")
        let stranger = DropletAddress(ip: IPv4Address(172, 16, 0, Wire.p.ip.bytes[3]), mac: Wire.p.mac)  // ends like both, is neither
        #expect(try outcome(from: stranger) == .geneveFromUnknownSource)
        try bed.droplet.setKnownDroplets([Wire.p, Wire.x, Wire.y])
        #expect(try bed.droplet.dropletIndexSlots()[octet] == UInt64(Wire.p.ip.networkOrder))
        let named = try bed.droplet.dropletIndexSlots().enumerated().filter { $0.element != Droplet.emptyDropletSlot($0.offset) }
        #expect(named.count == 4, "p, x, y and this droplet: nothing else")
        #expect(try outcome() == .delivered)
        #expect { try bed.droplet.setKnownDroplets([DropletAddress(ip: IPv4Address(0, 0, 0, 0), mac: Wire.p.mac)]) } throws: { ($0 as? DataplaneError)?.code == .invalidArgument }
        // What an empty slot holds is no address ending in its octet: 0.0.0.0 finds no 0 in slot 0.
        for ip in [IPv4Address(0, 0, 0, 0), IPv4Address(255, 255, 255, 255), IPv4Address(0, 0, 0, 7)] {
            #expect(try outcome(from: DropletAddress(ip: ip, mac: Wire.p.mac)) == .geneveFromUnknownSource, "\(ip)")
        }
    }

    @Test func runtShorterThanEthernetIsRefusedByTheKernel() throws {
        #expect { try bed.droplet.transitProgram.testRun(packet: Array(Wire.geneve().prefix(10))) } throws: { ($0 as? BPFError)?.errno == EINVAL }
    }
}
