import CMizarABI
import MizarNet

/// Builds packets byte by byte, with correct lengths and checksums, for tests,
/// benchmarks and traffic generation. Each layer wraps the payload it is given,
/// so a Geneve frame reads outside-in: `ethernet(ipv4(udp(geneve(ethernet(...)))))`.
public enum PacketBuilder {
    public static let etherTypeIPv4: UInt16 = 0x0800
    public static let etherTypeARP: UInt16 = 0x0806
    public static let etherTypeIPv6: UInt16 = 0x86dd
    public static let protocolICMP: UInt8 = 1
    public static let protocolTCP: UInt8 = 6
    public static let protocolUDP: UInt8 = 17

    /// An Ethernet II frame.
    public static func ethernet(src: MACAddress, dst: MACAddress, etherType: UInt16, payload: [UInt8]) -> [UInt8] {
        dst.bytes + src.bytes + be16(etherType) + payload
    }

    /// An IPv4 datagram (20-byte header) with its header checksum.
    ///
    /// - Parameters:
    ///   - fragmentOffset: in 8-byte units; with `moreFragments` this makes fragments.
    public static func ipv4(src: IPv4Address, dst: IPv4Address, protocol proto: UInt8, payload: [UInt8], ttl: UInt8 = 64,
                            identification: UInt16 = 0, dontFragment: Bool = false, moreFragments: Bool = false,
                            fragmentOffset: UInt16 = 0) -> [UInt8] {
        let flags: UInt16 = (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | (fragmentOffset & 0x1fff)
        var header: [UInt8] = [0x45, 0] + be16(UInt16(20 + payload.count)) + be16(identification) + be16(flags)
            + [ttl, proto, 0, 0] + src.bytes + dst.bytes
        let sum = internetChecksum(header)
        header[10] = UInt8(sum >> 8)
        header[11] = UInt8(sum & 0xff)
        return header + payload
    }

    /// A UDP datagram; the checksum covers the IPv4 pseudo-header unless `checksum` is false (0 on the wire).
    public static func udp(src: IPv4Address, dst: IPv4Address, sourcePort: UInt16, destinationPort: UInt16,
                           payload: [UInt8], checksum: Bool = true) -> [UInt8] {
        let length = UInt16(8 + payload.count)
        var datagram = be16(sourcePort) + be16(destinationPort) + be16(length) + [0, 0] + payload
        if checksum {
            let pseudo = src.bytes + dst.bytes + [0, protocolUDP] + be16(length)
            var sum = internetChecksum(pseudo + datagram)
            if sum == 0 { sum = 0xffff }
            datagram[6] = UInt8(sum >> 8)
            datagram[7] = UInt8(sum & 0xff)
        }
        return datagram
    }

    /// An Ethernet/IPv4 ARP message (RFC 826): `reply` false for a request.
    public static func arp(reply: Bool = false, senderMAC: MACAddress, senderIP: IPv4Address, targetMAC: MACAddress = MACAddress(bytes: [0, 0, 0, 0, 0, 0]),
                           targetIP: IPv4Address) -> [UInt8] {
        [0, 1] + be16(etherTypeIPv4) + [6, 4] + be16(reply ? 2 : 1) + senderMAC.bytes + senderIP.bytes + targetMAC.bytes + targetIP.bytes
    }

    /// An ICMP echo request (type 8) or reply (type 0).
    public static func icmpEcho(identifier: UInt16, sequence: UInt16, payload: [UInt8] = [], reply: Bool = false) -> [UInt8] {
        var message: [UInt8] = [reply ? 0 : 8, 0, 0, 0] + be16(identifier) + be16(sequence) + payload
        let sum = internetChecksum(message)
        message[2] = UInt8(sum >> 8)
        message[3] = UInt8(sum & 0xff)
        return message
    }

    /// A Geneve header with its options (DESIGN §3), followed by `payload`.
    ///
    /// - Parameter criticalOptions: sets the C bit, announcing a critical option.
    public static func geneve(vni: UInt32, options: [GeneveOption] = [], protocolType: UInt16 = UInt16(MZ_GENEVE_PROTO_ETH),
                              criticalOptions: Bool = false, payload: [UInt8]) -> [UInt8] {
        let body = options.flatMap(\.bytes)
        precondition(body.count % 4 == 0 && body.count / 4 < 64, "Geneve options are at most 63 words")
        let header: [UInt8] = [UInt8(MZ_GENEVE_VERSION << 6) | UInt8(body.count / 4), criticalOptions ? 0x40 : 0]
            + be16(protocolType) + [UInt8(vni >> 16 & 0xff), UInt8(vni >> 8 & 0xff), UInt8(vni & 0xff), 0]
        return header + body + payload
    }

    /// A complete underlay frame: Ethernet/IPv4 (DF)/UDP 6081/Geneve around `inner`.
    public static func geneveFrame(outerSrcMAC: MACAddress, outerDstMAC: MACAddress, outerSrc: IPv4Address, outerDst: IPv4Address,
                                   sourcePort: UInt16 = UInt16(MZ_GENEVE_SPORT_MIN), vni: UInt32, options: [GeneveOption] = [],
                                   inner: [UInt8]) -> [UInt8] {
        let gnv = geneve(vni: vni, options: options, payload: inner)
        let udpBytes = udp(src: outerSrc, dst: outerDst, sourcePort: sourcePort, destinationPort: UInt16(MZ_GENEVE_UDP_PORT), payload: gnv, checksum: false)
        let ip = ipv4(src: outerSrc, dst: outerDst, protocol: protocolUDP, payload: udpBytes, dontFragment: true)
        return ethernet(src: outerSrcMAC, dst: outerDstMAC, etherType: etherTypeIPv4, payload: ip)
    }

    /// RFC 1071 one's complement sum of `bytes`, complemented.
    public static func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
}

/// One Geneve option TLV.
public struct GeneveOption: Sendable, Hashable {
    public var optionClass: UInt16
    public var type: UInt8
    /// Option data, a multiple of 4 bytes (up to 124).
    public var data: [UInt8]
    /// Overrides the length field (in words) to build malformed options; nil for the true length.
    public var declaredWords: UInt8?

    public init(optionClass: UInt16 = UInt16(MZ_GENEVE_OPT_CLASS), type: UInt8, data: [UInt8], declaredWords: UInt8? = nil) {
        self.optionClass = optionClass
        self.type = type
        self.data = data
        self.declaredWords = declaredWords
    }

    /// The Return To Sender option: the droplet hosting the inner source endpoint.
    public static func returnToSender(dropletIP: IPv4Address, dropletMAC: MACAddress) -> GeneveOption {
        GeneveOption(type: UInt8(MZ_GENEVE_OPT_RTS), data: dropletIP.bytes + dropletMAC.bytes + [0, 0])
    }

    /// The TLV on the wire.
    public var bytes: [UInt8] {
        let words = declaredWords ?? UInt8(data.count / 4)
        return PacketBuilder.be16(optionClass) + [type, words & 0x1f] + data
    }
}
