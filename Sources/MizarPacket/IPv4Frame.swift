import MizarNet

/// An Ethernet/IPv4 frame read back: the fields tests look at, and its checksums checked
/// from scratch (independently of whatever rewrote the frame).
public struct IPv4Frame: Sendable, Equatable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var `protocol`: UInt8
    public var ttl: UInt8
    public var identification: UInt16
    /// TCP/UDP ports; for ICMP echo both are the identifier.
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var icmpType: UInt8?
    /// The IPv4 header checksum and the TCP, UDP (unless 0: none) or ICMP checksum are right.
    public var checksumsValid: Bool

    /// Parses `frame`; nil when it is not Ethernet/IPv4 or is cut short.
    public init?(_ frame: [UInt8]) {
        guard frame.count >= 34, frame[12] == 0x08, frame[13] == 0x00, frame[14] >> 4 == 4 else { return nil }
        let ihl = Int(frame[14] & 0x0f) * 4
        let total = Int(frame[16]) << 8 | Int(frame[17])
        guard ihl >= 20, total >= ihl, frame.count >= 14 + total else { return nil }
        let ip = Array(frame[14..<14 + ihl]), l4 = Array(frame[14 + ihl..<14 + total])
        source = IPv4Address(bytes: Array(ip[12..<16]))
        destination = IPv4Address(bytes: Array(ip[16..<20]))
        `protocol` = ip[9]
        ttl = ip[8]
        identification = UInt16(ip[4]) << 8 | UInt16(ip[5])
        func be16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
        var valid = PacketBuilder.internetChecksum(ip) == 0
        let pseudo = Array(ip[12..<20]) + [0, ip[9], UInt8(l4.count >> 8), UInt8(l4.count & 0xff)]
        sourcePort = 0
        destinationPort = 0
        icmpType = nil
        let fragment = (be16(ip, 6) & 0x1fff) != 0 || (be16(ip, 6) & 0x2000) != 0
        switch ip[9] {
        case PacketBuilder.protocolTCP where l4.count >= 20:
            (sourcePort, destinationPort) = (be16(l4, 0), be16(l4, 2))
            valid = valid && (fragment || PacketBuilder.internetChecksum(pseudo + l4) == 0)
        case PacketBuilder.protocolUDP where l4.count >= 8:
            (sourcePort, destinationPort) = (be16(l4, 0), be16(l4, 2))
            valid = valid && (fragment || be16(l4, 6) == 0 || PacketBuilder.internetChecksum(pseudo + l4) == 0)
        case PacketBuilder.protocolICMP where l4.count >= 8:
            icmpType = l4[0]
            (sourcePort, destinationPort) = (be16(l4, 4), be16(l4, 4))
            valid = valid && (fragment || PacketBuilder.internetChecksum(l4) == 0)
        default:
            break
        }
        checksumsValid = valid
    }
}
