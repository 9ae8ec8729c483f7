// Addresses travel as their usual text ("10.0.1.2", "10.0.1.0/24", "02:00:00:00:00:01") and a
// VNI as a number, so that manifests and API bodies read like what an operator types. A value
// that does not parse fails decoding with a message that names it.

/// Decodes a single text value through a failable parser.
private func decodeText<T>(_ decoder: any Decoder, _ what: String, _ parse: (String) -> T?) throws -> T {
    let container = try decoder.singleValueContainer()
    let text = try container.decode(String.self)
    guard let value = parse(text) else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not \(what)")
    }
    return value
}

extension IPv4Address: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder, "an IPv4 address") { IPv4Address($0) } }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension IPv4Interface: Codable {
    /// Accepts `A.B.C.D/N`; a bare address is not a CIDR.
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder, "an IPv4 CIDR (A.B.C.D/N)") { IPv4Interface($0) } }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension MACAddress: Codable {
    public init(from decoder: any Decoder) throws { self = try decodeText(decoder, "a MAC address (aa:bb:cc:dd:ee:ff)") { MACAddress($0) } }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
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
