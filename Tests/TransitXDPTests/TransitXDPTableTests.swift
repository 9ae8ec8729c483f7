import CMizarABI
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTestSupport
import Testing
import Foundation

/// Addresses of the crafted packets.
enum Wire {
    static let dropletMAC = MACAddress("02:00:00:00:00:01")!
    static let peerMAC = MACAddress("02:00:00:00:00:02")!
    static let droplet = IPv4Address(192, 168, 50, 1)
    static let peer = IPv4Address(192, 168, 50, 2)
    static let rts = GeneveOption.returnToSender(dropletIP: peer, dropletMAC: peerMAC)

    /// An inner ICMP echo between two endpoints.
    static let inner: [UInt8] = PacketBuilder.ethernet(
        src: MACAddress("02:00:0a:00:01:02")!, dst: MACAddress("02:00:0a:00:01:03")!, etherType: PacketBuilder.etherTypeIPv4,
        payload: PacketBuilder.ipv4(src: IPv4Address(10, 0, 1, 2), dst: IPv4Address(10, 0, 1, 3), protocol: PacketBuilder.protocolICMP,
                                    payload: PacketBuilder.icmpEcho(identifier: 1, sequence: 1, payload: Array(repeating: 0xab, count: 32))))

    static func ether(_ payload: [UInt8], type: UInt16 = PacketBuilder.etherTypeIPv4) -> [UInt8] {
        PacketBuilder.ethernet(src: peerMAC, dst: dropletMAC, etherType: type, payload: payload)
    }

    static func udpFrame(port: UInt16, payload: [UInt8]) -> [UInt8] {
        ether(PacketBuilder.ipv4(src: peer, dst: droplet, protocol: PacketBuilder.protocolUDP,
                                 payload: PacketBuilder.udp(src: peer, dst: droplet, sourcePort: 40000, destinationPort: port, payload: payload, checksum: false)))
    }

    /// A Geneve frame whose Geneve part is exactly `geneve`.
    static func geneveFrame(_ geneve: [UInt8]) -> [UInt8] { udpFrame(port: UInt16(MZ_GENEVE_UDP_PORT), payload: geneve) }

    static func geneve(options: [GeneveOption] = [rts], critical: Bool = false, proto: UInt16 = UInt16(MZ_GENEVE_PROTO_ETH), inner: [UInt8] = inner) -> [UInt8] {
        geneveFrame(PacketBuilder.geneve(vni: 100, options: options, protocolType: proto, criticalOptions: critical, payload: inner))
    }
}

/// One row of the table: a packet and the counter slots it must move.
struct TransitCase: CustomTestStringConvertible, Sendable {
    let name: String
    let packet: [UInt8]
    let outcome: TransitStat
    var options: [TransitStat] = []
    var testDescription: String { name }
}

private func withIPv4Header(_ frame: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
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
    var optlenPastEnd = PacketBuilder.geneve(vni: 100, options: [], payload: [])
    optlenPastEnd[0] = 10  // 40 bytes of options announced, none present
    var version1 = PacketBuilder.geneve(vni: 100, options: [Wire.rts], payload: Wire.inner)
    version1[0] |= 0x40
    let manyOptions = Array(repeating: unknown, count: 10)
    let tcp = Wire.ether(PacketBuilder.ipv4(src: Wire.peer, dst: Wire.droplet, protocol: PacketBuilder.protocolTCP, payload: Array(repeating: 0, count: 20)))
    let fragment = Wire.ether(PacketBuilder.ipv4(src: Wire.peer, dst: Wire.droplet, protocol: PacketBuilder.protocolUDP, payload: Array(repeating: 0, count: 40), fragmentOffset: 10))
    let udpTruncated = Wire.ether(PacketBuilder.ipv4(src: Wire.peer, dst: Wire.droplet, protocol: PacketBuilder.protocolUDP, payload: [0x9c, 0x40, 0x17]))
    return [
        TransitCase(name: "Geneve with RTS", packet: good, outcome: .geneve, options: [.optionRTS]),
        TransitCase(name: "Geneve without options", packet: Wire.geneve(options: []), outcome: .geneve),
        TransitCase(name: "unknown option is skipped", packet: Wire.geneve(options: [unknown, Wire.rts]), outcome: .geneve, options: [.optionRTS, .optionUnknown]),
        TransitCase(name: "RTS type of another class is unknown", packet: Wire.geneve(options: [foreignRTS]), outcome: .geneve, options: [.optionUnknown]),
        TransitCase(name: "options past the walk cap, no C bit", packet: Wire.geneve(options: manyOptions), outcome: .geneve, options: [.optionUnknown]),
        TransitCase(name: "options past the walk cap, C bit", packet: Wire.geneve(options: manyOptions, critical: true), outcome: .geneveCritical),
        TransitCase(name: "unknown critical option", packet: Wire.geneve(options: [criticalUnknown]), outcome: .geneveCritical),
        TransitCase(name: "RTS of the wrong length", packet: Wire.geneve(options: [shortRTS]), outcome: .badGeneveOption),
        TransitCase(name: "option longer than the options", packet: Wire.geneve(options: [overlong]), outcome: .badGeneveOption),
        TransitCase(name: "options longer than the packet", packet: Wire.geneveFrame(optlenPastEnd), outcome: .badGeneveOption),
        TransitCase(name: "Geneve version 1", packet: Wire.geneveFrame(version1), outcome: .badGeneve),
        TransitCase(name: "truncated Geneve header", packet: Wire.geneveFrame([0, 0, 0x65, 0x58]), outcome: .badGeneve),
        TransitCase(name: "Geneve carrying IPv4, not Ethernet", packet: Wire.geneve(proto: 0x0800), outcome: .geneveProtocol),
        TransitCase(name: "truncated inner Ethernet", packet: Wire.geneve(inner: [1, 2, 3, 4, 5, 6]), outcome: .badInner),
        TransitCase(name: "truncated IPv4 header", packet: Array(good.prefix(14 + 10)), outcome: .badIPv4),
        TransitCase(name: "IPv4 IHL below 5", packet: withIPv4Header(good) { $0[14] = 0x44 }, outcome: .badIPv4),
        TransitCase(name: "IPv4 total length past the frame", packet: Array(good.prefix(good.count - 8)), outcome: .badIPv4),
        TransitCase(name: "IPv4 total length below the header", packet: withIPv4Header(good) { $0[16] = 0; $0[17] = 12 }, outcome: .badIPv4),
        TransitCase(name: "truncated UDP header", packet: udpTruncated, outcome: .badUDP),
        TransitCase(name: "Ethernet padding after the datagram", packet: good + Array(repeating: 0, count: 16), outcome: .geneve, options: [.optionRTS]),
        TransitCase(name: "ARP", packet: Wire.ether(Array(repeating: 0, count: 28), type: PacketBuilder.etherTypeARP), outcome: .nonIPv4),
        TransitCase(name: "IPv6", packet: Wire.ether(Array(repeating: 0, count: 40), type: PacketBuilder.etherTypeIPv6), outcome: .nonIPv4),
        TransitCase(name: "TCP", packet: tcp, outcome: .nonUDP),
        TransitCase(name: "UDP to DNS", packet: Wire.udpFrame(port: 53, payload: [1, 2, 3, 4]), outcome: .nonGeneve),
        TransitCase(name: "later IPv4 fragment", packet: fragment, outcome: .ipv4Fragment),
    ]
}()

@Suite("Transit XDP: packet table through BPF_PROG_TEST_RUN")
struct TransitXDPTableTests {
    let transit: TransitXDP

    init() throws {
        transit = try TransitXDP(locator: TestPaths.locator)
    }

    @Test(arguments: transitCases)
    func packetIsCountedOnceAndPassed(_ row: TransitCase) throws {
        let before = try transit.counters()
        let result = try transit.program.testRun(packet: row.packet)
        let delta = try transit.counters().delta(since: before)
        #expect(result.action == .pass)
        #expect(result.packet == row.packet, "transit XDP must not rewrite what it passes")
        #expect(delta.totalPackets == 1)
        #expect(delta[row.outcome] == Counter(packets: 1, bytes: UInt64(row.packet.count)))
        for stat in TransitStat.allCases where stat.isOption {
            #expect(delta[stat].packets == (row.options.contains(stat) ? 1 : 0), "option slot \(stat)")
        }
    }

    @Test func runtShorterThanEthernetIsRefusedByTheKernel() throws {
        // The kernel never hands XDP a frame below ETH_HLEN; test-run refuses one with EINVAL.
        #expect { try transit.program.testRun(packet: Array(Wire.geneve().prefix(10))) } throws: { ($0 as? BPFError)?.errno == EINVAL }
    }

    @Test func namesInTheHeaderMatchTheObject() throws {
        #expect(transit.object.programNames == [MZ_TRANSIT_XDP_PROG])
        #expect(transit.object.mapNames.contains(MZ_TRANSIT_STATS_MAP))
        #expect(transit.stats.handle.maxEntries == 1)
        #expect(MemoryLayout<mz_counter>.size == 16)
        #expect(MemoryLayout<mz_transit_stats>.size == 16 * Int(MZ_TRANSIT_STAT_MAX.rawValue))
        #expect(MemoryLayout<mz_geneve_hdr>.size == 8)
        #expect(MemoryLayout<mz_geneve_rts>.size == 12)
    }

    @Test func repeatedRunsAreCountedAndTimed() throws {
        let before = try transit.counters()
        let result = try transit.program.testRun(packet: Wire.geneve(), repeat: 1000)
        #expect(try transit.counters().delta(since: before)[.geneve].packets == 1000)
        #expect(result.nanosecondsPerRun > 0)
    }
}
