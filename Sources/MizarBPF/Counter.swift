/// Packets and bytes, as every per-CPU statistics slot of the data plane counts them (`struct mz_counter`).
public struct Counter: Sendable, Hashable, CustomStringConvertible {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0

    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }

    public var description: String { "\(packets) pkts/\(bytes) B" }
}
