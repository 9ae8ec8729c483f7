import MizarNet

/// TCP, IPv6 and ICMPv6: the rest of what plugin tests need, checksums included.
extension PacketBuilder {
    public static let protocolICMPv6: UInt8 = 58

    /// TCP flag bits.
    public struct TCPFlags: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let fin = TCPFlags(rawValue: 0x01)
        public static let syn = TCPFlags(rawValue: 0x02)
        public static let rst = TCPFlags(rawValue: 0x04)
        public static let psh = TCPFlags(rawValue: 0x08)
        public static let ack = TCPFlags(rawValue: 0x10)
    }

    /// A TCP segment (20-byte header, no options) over IPv4, checksummed with the pseudo-header.
    public static func tcp(src: IPv4Address, dst: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32 = 1,
                           acknowledgement: UInt32 = 0, flags: TCPFlags = [.syn], window: UInt16 = 65535, payload: [UInt8] = []) -> [UInt8] {
        let segment = tcpSegment(sourcePort, destinationPort, sequence, acknowledgement, flags, window, payload)
        return withChecksum(segment, at: 16, pseudo: src.bytes + dst.bytes + [0, protocolTCP] + be16(UInt16(segment.count)))
    }

    /// A TCP segment over IPv6.
    public static func tcp(src: IPv6Address, dst: IPv6Address, sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32 = 1,
                           acknowledgement: UInt32 = 0, flags: TCPFlags = [.syn], window: UInt16 = 65535, payload: [UInt8] = []) -> [UInt8] {
        let segment = tcpSegment(sourcePort, destinationPort, sequence, acknowledgement, flags, window, payload)
        return withChecksum(segment, at: 16, pseudo: pseudo6(src, dst, next: protocolTCP, length: segment.count))
    }

    /// A UDP datagram over IPv6 (its checksum is mandatory there).
    public static func udp(src: IPv6Address, dst: IPv6Address, sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8]) -> [UInt8] {
        let datagram = be16(sourcePort) + be16(destinationPort) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
        var result = withChecksum(datagram, at: 6, pseudo: pseudo6(src, dst, next: protocolUDP, length: datagram.count))
        if result[6] == 0 && result[7] == 0 { result[6] = 0xff; result[7] = 0xff }  // 0 means "none"
        return result
    }

    /// An ICMPv6 echo request (128) or reply (129).
    public static func icmpv6Echo(src: IPv6Address, dst: IPv6Address, identifier: UInt16, sequence: UInt16, payload: [UInt8] = [],
                                  reply: Bool = false) -> [UInt8] {
        let message: [UInt8] = [reply ? 129 : 128, 0, 0, 0] + be16(identifier) + be16(sequence) + payload
        return withChecksum(message, at: 2, pseudo: pseudo6(src, dst, next: protocolICMPv6, length: message.count))
    }

    /// An IPv6 packet (fixed 40-byte header, no extension headers).
    public static func ipv6(src: IPv6Address, dst: IPv6Address, nextHeader: UInt8, payload: [UInt8], hopLimit: UInt8 = 64,
                            trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) -> [UInt8] {
        let first = UInt32(6) << 28 | UInt32(trafficClass) << 20 | (flowLabel & 0xfffff)
        return be16(UInt16(first >> 16)) + be16(UInt16(first & 0xffff)) + be16(UInt16(payload.count)) + [nextHeader, hopLimit]
            + src.bytes + dst.bytes + payload
    }

    private static func tcpSegment(_ sport: UInt16, _ dport: UInt16, _ seq: UInt32, _ ack: UInt32, _ flags: TCPFlags,
                                   _ window: UInt16, _ payload: [UInt8]) -> [UInt8] {
        be16(sport) + be16(dport) + be32(seq) + be32(ack) + [5 << 4, flags.rawValue] + be16(window) + [0, 0, 0, 0] + payload
    }

    private static func pseudo6(_ src: IPv6Address, _ dst: IPv6Address, next: UInt8, length: Int) -> [UInt8] {
        src.bytes + dst.bytes + be32(UInt32(length)) + [0, 0, 0, next]
    }

    /// `bytes` with the Internet checksum over `pseudo + bytes` stored at `offset`.
    private static func withChecksum(_ bytes: [UInt8], at offset: Int, pseudo: [UInt8]) -> [UInt8] {
        var result = bytes
        let sum = internetChecksum(pseudo + bytes)
        result[offset] = UInt8(sum >> 8)
        result[offset + 1] = UInt8(sum & 0xff)
        return result
    }

    static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xffff)) }
}
