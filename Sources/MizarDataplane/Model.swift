import CMizarABI
import MizarNet

/// A droplet's underlay address: where encapsulated packets for it are sent.
public struct DropletAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPv4Address
    public var mac: MACAddress

    public init(ip: IPv4Address, mac: MACAddress) {
        self.ip = ip
        self.mac = mac
    }

    public var description: String { "\(ip) (\(mac))" }
}

/// A tenant network: its VNI and the droplets dividing it.
public struct VPC: Hashable, Sendable {
    public var vni: VNI
    /// Droplets routing between the VPC's networks (chosen by flow hash; at most `MZ_MAX_DIVIDERS`).
    public var dividers: [DropletAddress]

    public init(vni: VNI, dividers: [DropletAddress]) {
        self.vni = vni
        self.dividers = dividers
    }
}

/// A subnet of a VPC and the droplets bouncing it.
public struct Network: Hashable, Sendable {
    public var vni: VNI
    /// The CIDR; host bits are ignored.
    public var cidr: IPv4Interface
    /// Droplets holding the network's endpoint table (chosen by flow hash; at most `MZ_MAX_BOUNCERS`).
    public var bouncers: [DropletAddress]

    public init(vni: VNI, cidr: IPv4Interface, bouncers: [DropletAddress]) {
        self.vni = vni
        self.cidr = cidr.network
        self.bouncers = bouncers
    }

    public func contains(_ ip: IPv4Address) -> Bool {
        cidr.with(address: ip).network == cidr
    }
}

/// An endpoint as a bouncer knows it: where it lives.
public struct Endpoint: Hashable, Sendable {
    public var vni: VNI
    public var ip: IPv4Address
    public var mac: MACAddress
    /// The droplet hosting it.
    public var droplet: DropletAddress

    public init(vni: VNI, ip: IPv4Address, mac: MACAddress, droplet: DropletAddress) {
        self.vni = vni
        self.ip = ip
        self.mac = mac
        self.droplet = droplet
    }
}

/// The key of an endpoint: an IP inside a VPC.
public struct EndpointID: Hashable, Sendable, CustomStringConvertible {
    public var vni: VNI
    public var ip: IPv4Address

    public init(vni: VNI, ip: IPv4Address) {
        self.vni = vni
        self.ip = ip
    }

    public var description: String { "\(ip) in VNI \(vni)" }
}

extension Endpoint {
    public var id: EndpointID { EndpointID(vni: vni, ip: ip) }
}

// MARK: - C layouts

func withMAC<T>(_ tuple: inout T, _ mac: MACAddress) {
    withUnsafeMutableBytes(of: &tuple) { raw in
        for i in 0..<6 { raw[i] = UInt8(truncatingIfNeeded: mac.value >> (40 - 8 * UInt64(i))) }
    }
}

func macOf<T>(_ tuple: T) -> MACAddress {
    withUnsafeBytes(of: tuple) { raw in MACAddress(value: (0..<6).reduce(UInt64(0)) { $0 << 8 | UInt64(raw[$1]) }) }
}

extension DropletAddress {
    var c: mz_droplet_addr {
        var a = mz_droplet_addr()
        a.ip = ip.networkOrder
        withMAC(&a.mac, mac)
        return a
    }

    init(_ c: mz_droplet_addr) {
        self.init(ip: IPv4Address(networkOrder: c.ip), mac: macOf(c.mac))
    }
}

extension EndpointID {
    /// The C key of `endpoints` and `direct_path`.
    public var key: mz_endpoint_key { mz_endpoint_key(vni: vni.rawValue, ip: ip.networkOrder) }

    init(_ key: mz_endpoint_key) {
        self.init(vni: VNI(rawValue: key.vni & 0xff_ffff)!, ip: IPv4Address(networkOrder: key.ip))
    }
}

/// Fills a fixed C array of droplet addresses (bouncers, dividers).
func withDroplets<T>(_ tuple: inout T, _ droplets: [DropletAddress]) {
    withUnsafeMutableBytes(of: &tuple) { raw in
        let slots = raw.bindMemory(to: mz_droplet_addr.self)
        for (i, d) in droplets.enumerated() { slots[i] = d.c }
    }
}

func dropletsOf<T>(_ tuple: T, count: UInt32) -> [DropletAddress] {
    withUnsafeBytes(of: tuple) { raw in
        raw.bindMemory(to: mz_droplet_addr.self).prefix(Int(count)).map(DropletAddress.init)
    }
}
