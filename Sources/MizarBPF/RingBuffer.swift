import CLibBPF
import Foundation

/// A BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`) read through libbpf: the records the programs
/// committed, in order. One reader at a time; not for use from several threads at once.
public final class RingBuffer: @unchecked Sendable {
    /// What libbpf's callback hands each record to, for the length of one `poll`.
    private final class Sink {
        var consume: (UnsafeRawBufferPointer) -> Void = { _ in }
    }

    private let ring: OpaquePointer
    private let sink: Unmanaged<Sink>

    public init(_ map: BPFMapHandle) throws {
        let sink = Unmanaged.passRetained(Sink())
        let callback: ring_buffer_sample_fn = { context, data, size in
            guard let context, let data else { return 0 }
            Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue().consume(UnsafeRawBufferPointer(start: data, count: size))
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

    /// Waits up to `timeoutMilliseconds` (0: not at all; it ends early when a producer wakes
    /// the reader) and hands every record there to `consume` (its bytes are valid during the
    /// call only). Returns how many came.
    @discardableResult
    public func poll(timeoutMilliseconds: Int32, _ consume: (UnsafeRawBufferPointer) -> Void) throws -> Int {
        try withoutActuallyEscaping(consume) { consume in
            let box = sink.takeUnretainedValue()
            box.consume = consume
            defer { box.consume = { _ in } }
            // Producers may skip the wakeup (trace.bpf.h): after waiting, take whatever is there.
            var waited: Int32 = 0
            if timeoutMilliseconds != 0 { waited = ring_buffer__poll(ring, timeoutMilliseconds) }
            if waited < 0 && waited != -EINTR { throw BPFError.system("poll the ring buffer", errno: -waited) }
            let taken = ring_buffer__consume(ring)
            if taken < 0 { throw BPFError.system("read the ring buffer", errno: -taken) }
            return Int(max(waited, 0)) + Int(taken)
        }
    }

    /// The records that came, each read as a `Record` (a C struct of the BPF side's layout);
    /// records of another size are skipped.
    public func poll<Record: BitwiseCopyable>(_: Record.Type, timeoutMilliseconds: Int32) throws -> [Record] {
        var records: [Record] = []
        try poll(timeoutMilliseconds: timeoutMilliseconds) { bytes in
            if bytes.count == MemoryLayout<Record>.size { records.append(bytes.loadUnaligned(as: Record.self)) }
        }
        return records
    }
}
