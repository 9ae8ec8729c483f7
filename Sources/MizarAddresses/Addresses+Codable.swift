// Addresses travel as their usual text ("10.0.1.2", "10.0.1.0/24", "02:00:00:00:00:01") and a
// VNI as a number, so that manifests and API bodies read like what an operator types. A value
// that does not parse fails decoding with a message that names it.

/// A value whose Codable form is its text: what `description` prints, `init?(_:)` parses.
public protocol TextCodable: Codable, CustomStringConvertible {
    init?(_ text: String)
    /// What the text must be, for the error when it is not ("an IPv4 address").
    static var expected: String { get }
}

extension TextCodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(text) else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not \(Self.expected)") }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension IPv4Address: TextCodable {
    public static var expected: String { "an IPv4 address" }
}

/// Accepts `A.B.C.D/N`; a bare address is not a CIDR.
extension IPv4Interface: TextCodable {
    public static var expected: String { "an IPv4 CIDR (A.B.C.D/N)" }
}

extension MACAddress: TextCodable {
    public static var expected: String { "a MAC address (aa:bb:cc:dd:ee:ff)" }
}

extension VNI: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(Int64.self)
        guard raw > 0, let vni = VNI(rawValue: UInt32(clamping: raw)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "VNI \(raw) is out of range: a VNI is 1 to 16777215")
        }
        self = vni
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

extension MACAddress {
    /// True for a group (multicast or broadcast) address: never an endpoint's own.
    public var isMulticast: Bool { value >> 40 & 1 == 1 }
}

extension IPv4Interface {
    /// The network's broadcast address (all host bits set).
    public var broadcast: IPv4Address { IPv4Address(value: address.value | ~mask) }
    /// The first host address, which the overlay uses as every network's gateway.
    public var gateway: IPv4Address { IPv4Address(value: network.address.value + 1) }
    /// True when the two CIDRs share any address.
    public func overlaps(_ other: IPv4Interface) -> Bool { contains(other) || other.contains(self) }
}
