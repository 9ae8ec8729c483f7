/// FNV-1a, 64 bits: a hash that is the same in every process and release (unlike `Hasher`),
/// for names derived from other names — veths from endpoints, CNI endpoints from attachments,
/// program pin directories from object files.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func mix(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }

    public static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var h = FNV1a()
        h.mix(bytes)
        return h.value
    }

    /// The low `digits` hex digits of `value`, zero-padded.
    public static func hex(_ value: UInt64, digits: Int) -> String {
        let masked = digits >= 16 ? value : value & ((1 << (4 * UInt64(digits))) - 1)
        let text = String(masked, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
