import CLibBPF
import Foundation

/// How an update treats an existing entry (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
public enum BPFUpdatePolicy: UInt64, Sendable {
    case any = 0, createOnly = 1, replaceOnly = 2
}

/// A typed view of a hash, array, LRU hash or LPM trie map.
///
/// `Key` and `Value` must have exactly the map's key and value sizes: use the C structs
/// from `bpf/include/mizar` (imported through CMizarABI) so that layouts never drift.
/// An LPM trie's key starts with its 32-bit prefix length.
public struct BPFMap<Key: BitwiseCopyable, Value: BitwiseCopyable>: @unchecked Sendable {
    public let handle: BPFMapHandle

    public init(_ handle: BPFMapHandle) throws {
        try handle.expect([.hash, .array, .lruHash, .lpmTrie], key: MemoryLayout<Key>.size, value: MemoryLayout<Value>.size, as: "BPFMap<\(Key.self), \(Value.self)>")
        self.handle = handle
    }

    /// The value stored under `key`, or nil.
    public func lookup(_ key: Key) throws -> Value? {
        try rawLookup(handle, key, valueBytes: handle.valueSize) { $0.loadUnaligned(as: Value.self) }
    }

    public func update(_ key: Key, _ value: Value, policy: BPFUpdatePolicy = .any) throws {
        var key = key, value = value
        let rc = withUnsafeBytes(of: &key) { k in withUnsafeBytes(of: &value) { v in bpf_map_update_elem(handle.fd, k.baseAddress, v.baseAddress, policy.rawValue) } }
        try check("update map \(handle.name)", rc)
    }

    /// Removes `key`; returns false when it was not there.
    @discardableResult
    public func delete(_ key: Key) throws -> Bool {
        try rawDelete(handle, key)
    }

    /// Every key, by walking the map (`BPF_MAP_GET_NEXT_KEY`).
    public func keys() throws -> [Key] {
        try rawKeys(handle, as: Key.self)
    }

    /// True when the map holds no key.
    public func isEmpty() throws -> Bool { try RawMap(handle).isEmpty() }

    /// Every entry. Uses batch lookup where the map supports it, else walks the keys.
    public func entries(batchSize: Int = 4096) throws -> [(key: Key, value: Value)] {
        var result: [(key: Key, value: Value)] = []
        if try lookupBatched(batchSize: batchSize, { result.append(($0, $1)) }) { return result }
        return try keys().compactMap { key in try lookup(key).map { (key, $0) } }
    }

    /// How many entries the map holds, read in batches without keeping them.
    public func count(batchSize: Int = 4096) throws -> Int {
        var n = 0
        if try lookupBatched(batchSize: batchSize, { _, _ in n += 1 }) { return n }
        return try keys().count
    }

    /// Inserts or replaces many entries with one `BPF_MAP_UPDATE_BATCH` call per chunk;
    /// falls back to single updates for map types without batch support.
    public func update<C: Collection>(batch: C, chunkSize: Int = 65536) throws where C.Element == (key: Key, value: Value) {
        let total = batch.count
        var keys: [Key] = [], values: [Value] = []
        keys.reserveCapacity(min(total, chunkSize))
        values.reserveCapacity(min(total, chunkSize))
        for (index, entry) in batch.enumerated() {
            keys.append(entry.key)
            values.append(entry.value)
            if keys.count == chunkSize || index == total - 1 {
                try flush(keys, values)
                keys.removeAll(keepingCapacity: true)
                values.removeAll(keepingCapacity: true)
            }
        }
    }

    private func flush(_ keys: [Key], _ values: [Value]) throws {
        var count = UInt32(keys.count)
        let rc = keys.withUnsafeBytes { k in values.withUnsafeBytes { v in mz_map_update_batch(handle.fd, k.baseAddress, v.baseAddress, &count) } }
        if batchUnsupported(rc) {
            for (key, value) in zip(keys, values) { try update(key, value) }
            return
        }
        try check("batch update of map \(handle.name) (\(count) of \(keys.count) written)", rc)
    }

    /// Visits every entry with batch lookups; false when the map type has none.
    private func lookupBatched(batchSize: Int, _ visit: (Key, Value) -> Void) throws -> Bool {
        try forEachBatch(handle, batchSize: batchSize) { keys, values, count in
            for i in 0..<count {
                visit(keys.loadUnaligned(fromByteOffset: i * MemoryLayout<Key>.size, as: Key.self),
                      values.loadUnaligned(fromByteOffset: i * MemoryLayout<Value>.size, as: Value.self))
            }
        }
    }
}

/// Reads a map with `BPF_MAP_LOOKUP_BATCH`: `visit` gets each batch's keys and values as bytes
/// (`count` of each, at the map's key and value sizes). False when the map type has no batch
/// lookup (an LPM trie): nothing was visited.
func forEachBatch(_ handle: BPFMapHandle, batchSize: Int = 4096,
                  _ visit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Int) throws -> Void) throws -> Bool {
    var keys = [UInt8](repeating: 0, count: batchSize * handle.keySize)
    var values = [UInt8](repeating: 0, count: batchSize * handle.valueSize)
    // The batch token is opaque: 8 bytes covers every map type's cursor.
    var inToken = [UInt8](repeating: 0, count: max(8, handle.keySize))
    var outToken = inToken
    var first = true
    while true {
        var count = UInt32(batchSize)
        let rc = inToken.withUnsafeMutableBytes { inBuf in
            outToken.withUnsafeMutableBytes { outBuf in
                keys.withUnsafeMutableBytes { k in
                    values.withUnsafeMutableBytes { v in
                        mz_map_lookup_batch(handle.fd, first ? nil : inBuf.baseAddress, outBuf.baseAddress, k.baseAddress, v.baseAddress, &count)
                    }
                }
            }
        }
        if first && batchUnsupported(rc) { return false }
        if rc < 0 && -rc != ENOENT { try check("batch lookup of map \(handle.name)", rc) }
        try keys.withUnsafeBytes { k in try values.withUnsafeBytes { v in try visit(k, v, Int(count)) } }
        if -rc == ENOENT { return true }  // the kernel says: no more entries
        inToken = outToken
        first = false
    }
}

/// A typed view of a per-CPU hash, array or LRU hash: one value per possible CPU.
public struct PerCPUMap<Key: BitwiseCopyable, Value: BitwiseCopyable>: @unchecked Sendable {
    public let handle: BPFMapHandle
    /// Number of possible CPUs: the length of every value array.
    public let cpuCount: Int
    // The kernel lays per-CPU values out at 8-byte strides.
    private let slot: Int

    public init(_ handle: BPFMapHandle) throws {
        try handle.expect([.perCPUHash, .perCPUArray, .lruPerCPUHash], key: MemoryLayout<Key>.size, value: MemoryLayout<Value>.size, as: "PerCPUMap<\(Key.self), \(Value.self)>")
        self.handle = handle
        self.cpuCount = Int(try check("count possible CPUs", libbpf_num_possible_cpus()))
        self.slot = (MemoryLayout<Value>.size + 7) & ~7
    }

    /// The per-CPU values under `key`, indexed by CPU, or nil.
    public func lookup(_ key: Key) throws -> [Value]? {
        try rawLookup(handle, key, valueBytes: slot * cpuCount) { raw in
            (0..<cpuCount).map { raw.loadUnaligned(fromByteOffset: $0 * slot, as: Value.self) }
        }
    }

    /// Stores `values` (one per CPU) under `key`.
    public func update(_ key: Key, perCPU values: [Value], policy: BPFUpdatePolicy = .any) throws {
        guard values.count == cpuCount else {
            throw BPFError(.typeMismatch, operation: "update map \(handle.name)", message: "\(values.count) values given for \(cpuCount) CPUs")
        }
        var buffer = [UInt8](repeating: 0, count: slot * cpuCount)
        buffer.withUnsafeMutableBytes { raw in
            for (cpu, value) in values.enumerated() { raw.storeBytes(of: value, toByteOffset: cpu * slot, as: Value.self) }
        }
        var key = key
        let rc = withUnsafeBytes(of: &key) { k in buffer.withUnsafeBytes { v in bpf_map_update_elem(handle.fd, k.baseAddress, v.baseAddress, policy.rawValue) } }
        try check("update map \(handle.name)", rc)
    }

    /// Stores the same value on every CPU (e.g. zero to reset a counter).
    public func update(_ key: Key, everyCPU value: Value, policy: BPFUpdatePolicy = .any) throws {
        try update(key, perCPU: Array(repeating: value, count: cpuCount), policy: policy)
    }

    @discardableResult
    public func delete(_ key: Key) throws -> Bool {
        try rawDelete(handle, key)
    }

    public func keys() throws -> [Key] {
        try rawKeys(handle, as: Key.self)
    }
}

private func rawLookup<Key, T>(_ handle: BPFMapHandle, _ key: Key, valueBytes: Int, _ decode: (UnsafeRawBufferPointer) -> T) throws -> T? {
    var key = key
    var buffer = [UInt8](repeating: 0, count: valueBytes)
    let rc = withUnsafeBytes(of: &key) { k in buffer.withUnsafeMutableBytes { v in bpf_map_lookup_elem(handle.fd, k.baseAddress, v.baseAddress) } }
    if rc != 0 {
        if errno == ENOENT { return nil }
        try check("lookup in map \(handle.name)", rc)
    }
    return buffer.withUnsafeBytes(decode)
}

private func rawDelete<Key>(_ handle: BPFMapHandle, _ key: Key) throws -> Bool {
    var key = key
    let rc = withUnsafeBytes(of: &key) { bpf_map_delete_elem(handle.fd, $0.baseAddress) }
    if rc != 0 {
        if errno == ENOENT { return false }
        try check("delete from map \(handle.name)", rc)
    }
    return true
}

private func rawKeys<Key>(_ handle: BPFMapHandle, as: Key.Type) throws -> [Key] {
    try RawMap(handle).keys().map { $0.withUnsafeBytes { $0.loadUnaligned(as: Key.self) } }
}

/// True when a batch call failed only because the map type has no batch support.
private func batchUnsupported(_ rc: Int32) -> Bool {
    let err = -rc
    return err == EINVAL || err == EOPNOTSUPP || err == 524 /* ENOTSUPP */
}
