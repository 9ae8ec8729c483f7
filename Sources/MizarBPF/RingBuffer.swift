import CLibBPF
import Foundation

/// A BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`) read through libbpf: the records the programs
/// committed, in order. One reader at a time; not for use from several threads at once.
public final class RingBuffer: @unchecked Sendable {
    /// What libbpf's callback hands each record to, for the length of one `poll`.
    private final class Sink {
        var consume: (UnsafeRawBufferPointer) -> Void = { _ in }
        /// Records left to take in this `poll` (the callback stops libbpf at 0).
        var room = Int.max
    }

    /// What the callback returns to stop libbpf once `room` is used up (it keeps the rest for the next poll).
    private static let full: Int32 = -E2BIG

    private let ring: OpaquePointer
    private let sink: Unmanaged<Sink>

    public init(_ map: BPFMapHandle) throws {
        let sink = Unmanaged.passRetained(Sink())
        let callback: ring_buffer_sample_fn = { context, data, size in
            guard let context, let data else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            sink.consume(UnsafeRawBufferPointer(start: data, count: size))
            sink.room -= 1
            return sink.room > 0 ? 0 : RingBuffer.full
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
    /// the reader) and hands the records there, at most `limit`, to `consume` (their bytes are
    /// valid during the call only). Returns how many came.
    @discardableResult
    public func poll(timeoutMilliseconds: Int32, limit: Int = .max, _ consume: (UnsafeRawBufferPointer) -> Void) throws -> Int {
        try withoutActuallyEscaping(consume) { consume in
            let box = sink.takeUnretainedValue()
            box.consume = consume
            box.room = max(limit, 1)
            defer { box.consume = { _ in } }
            // Producers may skip the wakeup (trace.bpf.h): after waiting, take whatever is there.
            var result: Int32 = 0
            if timeoutMilliseconds != 0 { result = ring_buffer__poll(ring, timeoutMilliseconds) }
            if result >= 0 || result == -EINTR { result = ring_buffer__consume(ring) }
            if result < 0 && result != -EINTR && result != RingBuffer.full { throw BPFError.system("read the ring buffer", errno: -result) }
            return max(limit, 1) - box.room
        }
    }

    /// The records that came, each read as a `Record` (a C struct of the BPF side's layout);
    /// records of another size are skipped.
    public func poll<Record: BitwiseCopyable>(_: Record.Type, timeoutMilliseconds: Int32, limit: Int = .max) throws -> [Record] {
        var records: [Record] = []
        try poll(timeoutMilliseconds: timeoutMilliseconds, limit: limit) { bytes in
            if bytes.count == MemoryLayout<Record>.size { records.append(bytes.loadUnaligned(as: Record.self)) }
        }
        return records
    }
}
