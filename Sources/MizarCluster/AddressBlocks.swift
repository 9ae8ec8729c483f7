import MizarAddresses

/// Calico-style address blocks: a network's CIDR split into blocks (/26, or the whole
/// network when it is smaller) that droplets claim in etcd. A droplet hands out addresses
/// from its own blocks without asking anyone; only claiming a block is a contended write.
public enum AddressBlocks {
    /// The prefix length of `cidr`'s blocks.
    public static func prefixLength(of cidr: IPv4Interface, default length: Int = 26) -> Int { max(length, cidr.prefixLength) }

    /// The base address of every block of `cidr`, lowest first.
    public static func bases(of cidr: IPv4Interface) -> [UInt32] {
        let size = blockSize(of: cidr), first = cidr.network.address.value
        let count = 1 << (prefixLength(of: cidr) - cidr.prefixLength)
        return (0..<count).map { first &+ UInt32($0) &* size }
    }

    public static func blockSize(of cidr: IPv4Interface) -> UInt32 { UInt32(1) << UInt32(32 - prefixLength(of: cidr)) }

    /// The base of the block holding `ip`.
    public static func base(of ip: IPv4Address, in cidr: IPv4Interface) -> UInt32 { ip.value & ~(blockSize(of: cidr) - 1) }

    /// The addresses of the block at `base` an endpoint may take: not the network's own
    /// address, gateway or broadcast.
    public static func usable(_ base: UInt32, in cidr: IPv4Interface) -> [IPv4Address] {
        let reserved: Set<UInt32> = [cidr.network.address.value, cidr.gateway.value, cidr.broadcast.value]
        return (base..<(base &+ blockSize(of: cidr))).filter { !reserved.contains($0) }.map { IPv4Address(value: $0) }
    }
}
