import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport

/// Addresses of the crafted packets: droplet D under test, peer droplets P, X, Y.
enum Wire {
    static let d = DropletAddress(ip: IPv4Address(192, 168, 50, 1), mac: MACAddress("02:00:00:00:00:01")!)
    static let p = DropletAddress(ip: IPv4Address(192, 168, 50, 2), mac: MACAddress("02:00:00:00:00:02")!)
    static let x = DropletAddress(ip: IPv4Address(192, 168, 50, 3), mac: MACAddress("02:00:00:00:00:03")!)
    static let y = DropletAddress(ip: IPv4Address(192, 168, 50, 4), mac: MACAddress("02:00:00:00:00:04")!)
    static let rts = GeneveOption.returnToSender(dropletIP: p.ip, dropletMAC: p.mac)
    /// A host on the underlay that is no droplet.
    static let stranger = DropletAddress(ip: IPv4Address(192, 168, 50, 66), mac: MACAddress("02:00:00:00:00:66")!)

    /// Local endpoint A (VNI 100, network 10.0.1.0/24, on veth pair a) and C (10.0.2.0/24, pair c).
    static let a = IPv4Address(10, 0, 1, 3), aMAC = MACAddress("02:00:0a:00:01:03")!
    static let c = IPv4Address(10, 0, 2, 7), cMAC = MACAddress("02:00:0a:00:02:07")!
    /// Remote endpoint B on droplet Y, known to D as bouncer of 10.0.1.0/24.
    static let b = IPv4Address(10, 0, 1, 4), bMAC = MACAddress("02:00:0a:00:01:04")!
    /// An endpoint on P, in A's network: the source of packets delivered to A.
    static let q = IPv4Address(10, 0, 1, 20), qMAC = MACAddress("02:00:0a:00:01:14")!
    static let gatewayMAC = MACAddress("02:00:0a:00:01:01")!

    static func icmp(from src: IPv4Address, _ srcMAC: MACAddress, to dst: IPv4Address, dstMAC: MACAddress = gatewayMAC, ttl: UInt8 = 64) -> [UInt8] {
        PacketBuilder.ethernet(src: srcMAC, dst: dstMAC, etherType: PacketBuilder.etherTypeIPv4,
                               payload: PacketBuilder.ipv4(src: src, dst: dst, protocol: PacketBuilder.protocolICMP,
                                                           payload: PacketBuilder.icmpEcho(identifier: 1, sequence: 1, payload: Array(repeating: 0xab, count: 32)), ttl: ttl))
    }

    /// An inner ICMP echo from Q to A.
    static let inner = icmp(from: q, qMAC, to: a)

    static func ether(_ payload: [UInt8], type: UInt16 = PacketBuilder.etherTypeIPv4, from: DropletAddress = p) -> [UInt8] {
        PacketBuilder.ethernet(src: from.mac, dst: d.mac, etherType: type, payload: payload)
    }

    static func udpFrame(port: UInt16, payload: [UInt8], from: DropletAddress = p, to: IPv4Address = d.ip, ttl: UInt8 = 64) -> [UInt8] {
        ether(PacketBuilder.ipv4(src: from.ip, dst: to, protocol: PacketBuilder.protocolUDP,
                                 payload: PacketBuilder.udp(src: from.ip, dst: to, sourcePort: 40000, destinationPort: port, payload: payload, checksum: false), ttl: ttl),
              from: from)
    }

    /// A Geneve frame from P (or `from`) to D whose Geneve part is exactly `geneve`.
    static func geneveFrame(_ geneve: [UInt8], from: DropletAddress = p, to: IPv4Address = d.ip, ttl: UInt8 = 64) -> [UInt8] {
        udpFrame(port: UInt16(MZ_GENEVE_UDP_PORT), payload: geneve, from: from, to: to, ttl: ttl)
    }

    static func geneve(vni: UInt32 = 100, options: [GeneveOption] = [rts], critical: Bool = false, proto: UInt16 = UInt16(MZ_GENEVE_PROTO_ETH),
                       inner: [UInt8] = inner, from: DropletAddress = p, to: IPv4Address = d.ip, ttl: UInt8 = 64) -> [UInt8] {
        geneveFrame(PacketBuilder.geneve(vni: vni, options: options, protocolType: proto, criticalOptions: critical, payload: inner), from: from, to: to, ttl: ttl)
    }
}

/// Droplet D loaded with its tables in a scratch namespace, for test-run tables:
/// VPC 100 divided by D; 10.0.1.0/24 bounced by D, 10.0.2.0/24 by X; VPC 200 (no divider)
/// reusing 10.0.1.0/24 bounced by X. A and C are plugged on real veths; B is on Y.
final class TableBed: @unchecked Sendable {
    let prefix = uniquePrefix()
    let netns: Netns
    let droplet: Droplet
    private(set) var ifindexA: Int32 = 0
    private(set) var gatewayA = Wire.gatewayMAC
    private(set) var gatewayC = Wire.gatewayMAC

    init(directPathMaxAge: Duration = .seconds(30), limits: DropletLimits = DropletLimits()) throws {
        netns = try Netns.create(named: prefix)
        do {
            // No IPv6 in here: router solicitations and MLD reports from the veths would reach
            // the (really attached) agent and move the counters the tables count exactly.
            try netns.perform {
                for conf in ["all", "default"] {
                    try "1".write(toFile: "/proc/sys/net/ipv6/conf/\(conf)/disable_ipv6", atomically: false, encoding: .utf8)
                }
            }
            let socket = try RouteSocket(in: netns)
            for (name, mac) in [("a", Wire.aMAC), ("c", Wire.cMAC)] {
                _ = try socket.createVethPair(name: prefix + name + "h", peerName: prefix + name + "p")
                try socket.setMAC(of: prefix + name + "p", to: mac)
                try socket.setUp(prefix + name + "h")
                try socket.setUp(prefix + name + "p")
            }
            try socket.setUp("lo")
            droplet = try Droplet(address: Wire.d, interface: "lo", ifindex: 1, mtu: 1500, netns: netns, limits: limits,
                                  directPathMaxAge: directPathMaxAge, locator: TestPaths.locator)
            try droplet.setKnownDroplets([Wire.p, Wire.x, Wire.y])
            try droplet.setVPC(VPC(vni: 100, dividers: [Wire.d]))
            try droplet.setVPC(VPC(vni: 200, dividers: []))
            try droplet.setNetwork(Network(vni: 100, cidr: IPv4Interface("10.0.1.0/24")!, bouncers: [Wire.d]))
            try droplet.setNetwork(Network(vni: 100, cidr: IPv4Interface("10.0.2.0/24")!, bouncers: [Wire.x]))
            try droplet.setNetwork(Network(vni: 200, cidr: IPv4Interface("10.0.1.0/24")!, bouncers: [Wire.x]))
            try droplet.setEndpoint(Endpoint(vni: 100, ip: Wire.b, mac: Wire.bMAC, droplet: Wire.y))
            for (ip, mac, name) in [(Wire.a, Wire.aMAC, "a"), (Wire.c, Wire.cMAC, "c")] {
                try droplet.plug(LocalEndpoint(vni: 100, ip: ip, mac: mac, hostInterface: prefix + name + "h",
                                               peer: EndpointPeer(netns: netns, interface: prefix + name + "p")), mode: .native)
            }
            let host = try socket.link(named: prefix + "ah")
            ifindexA = host.index
            gatewayA = host.mac!
            gatewayC = try socket.link(named: prefix + "ch").mac!
        } catch {
            _ = try? Netns.delete(named: prefix)
            throw error
        }
    }

    func teardown() {
        droplet.detach()
        _ = try? Netns.delete(named: prefix)
    }

    /// Runs the transit agent (XDP entry) on `packet` as if endpoint A had sent it.
    func agentRun(_ packet: [UInt8], ifindex: Int32? = nil) throws -> XDPTestRunResult {
        let index = UInt32(ifindex ?? ifindexA)
        return try netns.perform { try droplet.agentProgram.testRun(packet: packet, ingressIfindex: index) }
    }

    /// Runs the transit agent's TC entry on `packet` as if endpoint A had sent it.
    func agentRunTC(_ packet: [UInt8], ifindex: Int32? = nil) throws -> XDPTestRunResult {
        let index = UInt32(ifindex ?? ifindexA)
        return try netns.perform { try droplet.agentTCProgram.testRunSKB(packet: packet, ifindex: index) }
    }
}

/// Parsed outer headers of an encapsulated frame, for byte-level checks.
struct OuterHeaders {
    let dstMAC: MACAddress, srcMAC: MACAddress
    let src: IPv4Address, dst: IPv4Address
    let ttl: UInt8, dontFragment: Bool, ipChecksumValid: Bool, totalLength: Int
    let sourcePort: UInt16, destinationPort: UInt16, udpLength: Int, udpChecksum: UInt16
    let vni: UInt32, geneveProtocol: UInt16, optionWords: Int
    let options: [UInt8]
    let inner: [UInt8]

    init?(_ f: [UInt8]) {
        guard f.count >= 50, f[12] == 0x08, f[13] == 0x00, f[14] == 0x45, f[23] == 17 else { return nil }
        func be16(_ i: Int) -> UInt16 { UInt16(f[i]) << 8 | UInt16(f[i + 1]) }
        dstMAC = MACAddress(bytes: Array(f[0..<6]))
        srcMAC = MACAddress(bytes: Array(f[6..<12]))
        totalLength = Int(be16(16))
        dontFragment = f[20] & 0x40 != 0
        ttl = f[22]
        ipChecksumValid = PacketBuilder.internetChecksum(Array(f[14..<34])) == 0
        src = IPv4Address(bytes: Array(f[26..<30]))
        dst = IPv4Address(bytes: Array(f[30..<34]))
        sourcePort = be16(34)
        destinationPort = be16(36)
        udpLength = Int(be16(38))
        udpChecksum = be16(40)
        optionWords = Int(f[42] & 0x3f)
        geneveProtocol = be16(44)
        vni = UInt32(f[46]) << 16 | UInt32(f[47]) << 8 | UInt32(f[48])
        let optionsEnd = 50 + optionWords * 4
        guard f.count >= optionsEnd else { return nil }
        options = Array(f[50..<optionsEnd])
        inner = Array(f[optionsEnd...])
    }
}
