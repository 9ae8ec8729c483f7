import CLibBPF
import Foundation

/// A BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`) read through libbpf: the records the programs
/// committed, in order. One reader at a time; not for use from several threads at once.
public final class RingBuffer: @unchecked Sendable {
    /// Where libbpf's callback puts records between `poll` calls.
    private final class Sink {
        var records: [[UInt8]] = []
    }

    private let ring: OpaquePointer
    private let sink: Unmanaged<Sink>

    public init(_ map: BPFMapHandle) throws {
        let sink = Unmanaged.passRetained(Sink())
        let callback: ring_buffer_sample_fn = { context, data, size in
            guard let context, let data else { return 0 }
            Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue().records.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            return 0
        }
        guard let ring = ring_buffer__new(map.fd, callback, sink.toOpaque(), nil) else {
            sink.release()
            throw BPFError.system("open the ring buffer", errno: errno)
        }
        self.ring = ring
        self.sink = sink
    }

    deinit {
        ring_buffer__free(ring)
        sink.release()
    }

    /// Waits up to `timeoutMilliseconds` (0: not at all) for records and returns the ones
    /// that came, possibly none.
    public func poll(timeoutMilliseconds: Int32) throws -> [[UInt8]] {
        let result = ring_buffer__poll(ring, timeoutMilliseconds)
        if result < 0 && result != -EINTR { throw BPFError.system("poll the ring buffer", errno: -result) }
        let box = sink.takeUnretainedValue()
        defer { box.records.removeAll(keepingCapacity: true) }
        return box.records
    }

    /// The records that came, each read as a `Record` (a C struct of the BPF side's layout);
    /// records of another size are skipped.
    public func poll<Record: BitwiseCopyable>(_: Record.Type, timeoutMilliseconds: Int32) throws -> [Record] {
        try poll(timeoutMilliseconds: timeoutMilliseconds).compactMap { bytes in
            bytes.count == MemoryLayout<Record>.size ? bytes.withUnsafeBytes { $0.loadUnaligned(as: Record.self) } : nil
        }
    }
}
