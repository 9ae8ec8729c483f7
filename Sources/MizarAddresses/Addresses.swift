#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 address. Stored as one integer (no allocation): tables of millions stay cheap.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The address as a host-order integer (10.0.0.1 is 0x0A000001).
    public let value: UInt32

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    public init(value: UInt32) {
        self.value = value
    }

    /// The four bytes as they are on the wire.
    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard let v = UInt8(p), String(v) == p else { return nil }
            out.append(v)
        }
        self.init(bytes: out)
    }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 4, "IPv4 address needs 4 bytes")
        value = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The address as a `__be32` field of a C struct holds it.
    public var networkOrder: UInt32 { value.bigEndian }
    public init(networkOrder: UInt32) { self.init(value: UInt32(bigEndian: networkOrder)) }

    public var description: String { bytes.map(String.init).joined(separator: ".") }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An address that cannot be: a prefix length outside 0...32, bytes of the wrong count.
public struct AddressError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An address with its prefix length, as assigned to an interface (`10.0.0.1/24`).
public struct IPv4Interface: Hashable, Sendable, CustomStringConvertible {
    public let address: IPv4Address
    public let prefixLength: Int

    /// Throws for a prefix length outside 0...32.
    public init(_ address: IPv4Address, prefixLength: Int) throws(AddressError) {
        guard (0...32).contains(prefixLength) else { throw AddressError("prefix length \(prefixLength) of \(address) is not 0...32") }
        self.init(address, validPrefixLength: prefixLength)
    }

    private init(_ address: IPv4Address, validPrefixLength: Int) {
        self.address = address
        self.prefixLength = validPrefixLength
    }

    /// 0.0.0.0/0: every address (the default route).
    public static let any = IPv4Interface(IPv4Address(value: 0), validPrefixLength: 0)

    /// `address` as a host route (/32).
    public static func host(_ address: IPv4Address) -> IPv4Interface { IPv4Interface(address, validPrefixLength: 32) }

    /// `address` with this prefix length (an address of this network, as an interface holds it).
    public func with(address: IPv4Address) -> IPv4Interface { IPv4Interface(address, validPrefixLength: prefixLength) }

    /// Parses `A.B.C.D/N`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let address = IPv4Address(String(parts[0])), let n = Int(parts[1]), (0...32).contains(n) else { return nil }
        self.init(address, validPrefixLength: n)
    }

    /// Parses `A.B.C.D/N`, or a bare address as a /32.
    public init?(cidrOrAddress text: String) {
        guard let parsed = IPv4Interface(text) ?? IPv4Address(text).map(IPv4Interface.host) else { return nil }
        self = parsed
    }

    /// The netmask as a host-order integer.
    public var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(prefixLength)) }

    /// The network this interface address belongs to (host bits cleared).
    public var network: IPv4Interface {
        with(address: IPv4Address(value: address.value & mask))
    }

    /// The network of `prefixLength` bits (at most this one's) that holds this address.
    public func network(prefixLength bits: Int) -> IPv4Interface {
        IPv4Interface(address, validPrefixLength: min(max(bits, 0), prefixLength)).network
    }

    /// True when `other` (an address with its prefix) lies inside this one's network.
    public func contains(_ other: IPv4Interface) -> Bool {
        other.prefixLength >= prefixLength && other.address.value & mask == address.value & mask
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// An Ethernet MAC address, stored in the low 48 bits of an integer (no allocation).
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address as an integer, first byte most significant.
    public let value: UInt64

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 6, "MAC address needs 6 bytes")
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    public init(value: UInt64) {
        self.value = value & 0xffff_ffff_ffff
    }

    /// The six bytes as they are on the wire.
    public var bytes: [UInt8] { (0..<6).map { UInt8(value >> (40 - 8 * UInt64($0)) & 0xff) } }

    /// Parses `aa:bb:cc:dd:ee:ff`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 6 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            out.append(v)
        }
        self.init(bytes: out)
    }

    public static let broadcast = MACAddress(bytes: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])

    /// A random locally administered unicast address.
    public static func random() -> MACAddress {
        var b = (0..<6).map { _ in UInt8.random(in: 0...255) }
        b[0] = (b[0] & 0xfe) | 0x02
        return MACAddress(bytes: b)
    }

    public var description: String {
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }.enumerated().flatMap { $0.offset > 0 && $0.offset % 2 == 0 ? [UInt8(ascii: ":"), $0.element] : [$0.element] }, as: UTF8.self)
    }
}

/// An IPv6 address: 16 bytes in network order.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "IPv6 address needs 16 bytes")
        self.bytes = bytes
    }

    /// Parses any textual form `inet_pton` accepts (`fd00::1`, `::ffff:10.0.0.1`, ...).
    public init?(_ text: String) {
        var raw = in6_addr()
        guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
        bytes = withUnsafeBytes(of: raw) { Array($0) }
    }

    public var description: String {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
        return String(cString: text)
    }
}

/// A VPC's 24-bit Virtual Network Identifier (the Geneve VNI).
public struct VNI: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let rawValue: UInt32

    /// Fails for values above 2^24 - 1.
    public init?(rawValue: UInt32) {
        guard rawValue < 1 << 24 else { return nil }
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt32) {
        precondition(value < 1 << 24, "a VNI has 24 bits")
        rawValue = value
    }

    public var description: String { String(rawValue) }
    public static func < (a: VNI, b: VNI) -> Bool { a.rawValue < b.rawValue }
}
