import Foundation
import MizarPacket
import MizarTestSupport
import Testing

/// Checksums are judged by tcpdump, not by the builder's own arithmetic.
@Suite("PacketBuilder: frames tcpdump decodes with correct checksums")
struct PacketBuilderTests {
    let macA = MACAddress("02:00:00:00:00:0a")!, macB = MACAddress("02:00:00:00:00:0b")!
    let v4A = IPv4Address(10, 0, 1, 2), v4B = IPv4Address(10, 0, 1, 3)
    let v6A = IPv6Address("fd00::2")!, v6B = IPv6Address("fd00::3")!

    private func decode(_ frames: [[UInt8]]) throws -> [String] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-packets-\(UUID().uuidString).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writePcap(frames, to: path)
        let result = try runCommand(["tcpdump", "-r", path, "-nn", "-vvv"])
        #expect(result.status == 0, "tcpdump: \(result.error)")
        // One packet per line group: tcpdump starts each with a timestamp.
        return result.output.components(separatedBy: "\n").reduce(into: [String]()) { packets, line in
            if line.first?.isNumber == true { packets.append(line) } else if !packets.isEmpty { packets[packets.count - 1] += " " + line }
        }
    }

    @Test func transportChecksumsAreCorrect() throws {
        let ip4 = { (proto: UInt8, payload: [UInt8]) in
            PacketBuilder.ethernet(src: self.macA, dst: self.macB, etherType: PacketBuilder.etherTypeIPv4,
                                   payload: PacketBuilder.ipv4(src: self.v4A, dst: self.v4B, protocol: proto, payload: payload))
        }
        let ip6 = { (next: UInt8, payload: [UInt8]) in
            PacketBuilder.ethernet(src: self.macA, dst: self.macB, etherType: PacketBuilder.etherTypeIPv6,
                                   payload: PacketBuilder.ipv6(src: self.v6A, dst: self.v6B, nextHeader: next, payload: payload))
        }
        let frames = [
            ip4(PacketBuilder.protocolTCP, PacketBuilder.tcp(src: v4A, dst: v4B, sourcePort: 40000, destinationPort: 80, payload: Array("hello".utf8))),
            ip4(PacketBuilder.protocolUDP, PacketBuilder.udp(src: v4A, dst: v4B, sourcePort: 5000, destinationPort: 53, payload: [1, 2, 3])),
            ip6(PacketBuilder.protocolTCP, PacketBuilder.tcp(src: v6A, dst: v6B, sourcePort: 40000, destinationPort: 443, flags: [.ack, .psh], payload: [9, 9, 9])),
            ip6(PacketBuilder.protocolUDP, PacketBuilder.udp(src: v6A, dst: v6B, sourcePort: 5000, destinationPort: 9, payload: [7])),
            ip6(PacketBuilder.protocolICMPv6, PacketBuilder.icmpv6Echo(src: v6A, dst: v6B, identifier: 1, sequence: 2, payload: [0xab, 0xcd])),
        ]
        let packets = try decode(frames)
        #expect(packets.count == frames.count)
        // tcpdump says "cksum 0x... (correct)" for TCP and "[udp sum ok]" / "[icmp6 sum ok]" otherwise.
        for packet in packets {
            #expect(packet.contains("(correct)") || packet.contains("sum ok]"), "\(packet)")
            #expect(!packet.contains("incorrect") && !packet.contains("bad"), "\(packet)")
        }
        #expect(packets.last?.contains("ICMP6, echo request") == true)
        #expect(packets.last?.contains("[icmp6 sum ok]") == true, "\(packets.last ?? "")")
        #expect(packets.first?.contains("Flags [S]") == true)
    }

    @Test func arpAndGeneveDecode() throws {
        let arp = PacketBuilder.ethernet(src: macA, dst: .broadcast, etherType: PacketBuilder.etherTypeARP,
                                         payload: PacketBuilder.arp(senderMAC: macA, senderIP: v4A, targetIP: v4B))
        let inner = PacketBuilder.ethernet(src: macA, dst: macB, etherType: PacketBuilder.etherTypeIPv4,
                                           payload: PacketBuilder.ipv4(src: v4A, dst: v4B, protocol: PacketBuilder.protocolTCP,
                                                                       payload: PacketBuilder.tcp(src: v4A, dst: v4B, sourcePort: 1, destinationPort: 2)))
        let geneve = PacketBuilder.geneveFrame(outerSrcMAC: macA, outerDstMAC: macB, outerSrc: IPv4Address(192, 168, 0, 1), outerDst: IPv4Address(192, 168, 0, 2),
                                               vni: 100, options: [.returnToSender(dropletIP: IPv4Address(192, 168, 0, 1), dropletMAC: macA)], inner: inner)
        let packets = try decode([arp, geneve])
        #expect(packets.first?.contains("Request who-has 10.0.1.3 tell 10.0.1.2") == true, "\(packets.first ?? "")")
        #expect(packets.last?.contains("Geneve") == true && packets.last?.contains("vni 0x64") == true)
        #expect(packets.last?.contains("(correct)") == true, "the inner TCP checksum: \(packets.last ?? "")")
    }

    @Test func ipv6AddressesRoundTrip() {
        #expect(IPv6Address("fd00:0:0:0:0:0:0:1")?.description == "fd00::1")
        #expect(IPv6Address("not an address") == nil)
        #expect(IPv6Address("::ffff:10.0.0.1")?.bytes.suffix(4) == [10, 0, 0, 1])
    }
}
