import MizarNet

/// Whole Ethernet/IPv4 frames in one call: what plugin tests feed a chain.
extension PacketBuilder {
    /// MACs a test frame carries unless told otherwise (an endpoint and its gateway).
    public static let endpointMAC = MACAddress(bytes: [0x02, 0, 0, 0, 0x01, 0x02])
    public static let gatewayMAC = MACAddress(bytes: [0x02, 0, 0, 0, 0xff, 0x01])

    /// Ethernet + IPv4 around an L4 payload.
    public static func ipv4Frame(src: IPv4Address, dst: IPv4Address, protocol proto: UInt8, payload: [UInt8], ttl: UInt8 = 64,
                                 srcMAC: MACAddress = endpointMAC, dstMAC: MACAddress = gatewayMAC) -> [UInt8] {
        ethernet(src: srcMAC, dst: dstMAC, etherType: etherTypeIPv4, payload: ipv4(src: src, dst: dst, protocol: proto, payload: payload, ttl: ttl))
    }

    public static func tcpFrame(src: IPv4Address, dst: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, flags: TCPFlags = [.syn],
                                payload: [UInt8] = [], srcMAC: MACAddress = endpointMAC, dstMAC: MACAddress = gatewayMAC) -> [UInt8] {
        ipv4Frame(src: src, dst: dst, protocol: protocolTCP,
                  payload: tcp(src: src, dst: dst, sourcePort: sourcePort, destinationPort: destinationPort, flags: flags, payload: payload),
                  srcMAC: srcMAC, dstMAC: dstMAC)
    }

    public static func udpFrame(src: IPv4Address, dst: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8] = [],
                                srcMAC: MACAddress = endpointMAC, dstMAC: MACAddress = gatewayMAC) -> [UInt8] {
        ipv4Frame(src: src, dst: dst, protocol: protocolUDP,
                  payload: udp(src: src, dst: dst, sourcePort: sourcePort, destinationPort: destinationPort, payload: payload),
                  srcMAC: srcMAC, dstMAC: dstMAC)
    }

    public static func icmpEchoFrame(src: IPv4Address, dst: IPv4Address, identifier: UInt16, sequence: UInt16 = 1, reply: Bool = false,
                                     srcMAC: MACAddress = endpointMAC, dstMAC: MACAddress = gatewayMAC) -> [UInt8] {
        ipv4Frame(src: src, dst: dst, protocol: protocolICMP, payload: icmpEcho(identifier: identifier, sequence: sequence, reply: reply),
                  srcMAC: srcMAC, dstMAC: dstMAC)
    }
}
