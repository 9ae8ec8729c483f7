import CLibBPF
import Foundation

/// A map seen as bytes: for maps whose layout is only known at run time (a plugin's
/// descriptor). Per-CPU maps are not supported: their values are per CPU.
public struct RawMap: @unchecked Sendable {
    public let handle: BPFMapHandle

    public init(_ handle: BPFMapHandle) {
        self.handle = handle
    }

    public func update(key: [UInt8], value: [UInt8]) throws {
        try checkSizes(key, value)
        let rc = key.withUnsafeBytes { k in value.withUnsafeBytes { v in bpf_map_update_elem(handle.fd, k.baseAddress, v.baseAddress, 0) } }
        try check("update map \(handle.name)", rc)
    }

    public func lookup(key: [UInt8]) throws -> [UInt8]? {
        guard !handle.type.isPerCPU else {
            throw BPFError(.typeMismatch, operation: "lookup in map \(handle.name)", message: "per-CPU maps take a value per CPU")
        }
        try checkSizes(key, nil)
        var value = [UInt8](repeating: 0, count: handle.valueSize)
        let rc = key.withUnsafeBytes { k in value.withUnsafeMutableBytes { bpf_map_lookup_elem(handle.fd, k.baseAddress, $0.baseAddress) } }
        if rc != 0 {
            if errno == ENOENT { return nil }
            try check("lookup in map \(handle.name)", rc)
        }
        return value
    }

    /// Every key with its value (the value read right after the key was listed).
    public func entries() throws -> [(key: [UInt8], value: [UInt8])] {
        try keys().compactMap { key in try lookup(key: key).map { (key, $0) } }
    }

    /// True when the map holds no key (one `BPF_MAP_GET_NEXT_KEY`; an array is never empty).
    public func isEmpty() throws -> Bool {
        var first = [UInt8](repeating: 0, count: handle.keySize)
        if first.withUnsafeMutableBytes({ bpf_map_get_next_key(handle.fd, nil, $0.baseAddress) }) == 0 { return false }
        if errno == ENOENT { return true }
        try check("walk keys of map \(handle.name)", -1)
        return false
    }

    /// Every key (`BPF_MAP_GET_NEXT_KEY` walk).
    public func keys() throws -> [[UInt8]] {
        var keys: [[UInt8]] = []
        var next = [UInt8](repeating: 0, count: handle.keySize)
        var previous: [UInt8]? = nil
        while true {
            let rc = next.withUnsafeMutableBytes { n in
                guard var prev = previous else { return bpf_map_get_next_key(handle.fd, nil, n.baseAddress) }
                return prev.withUnsafeMutableBytes { bpf_map_get_next_key(handle.fd, $0.baseAddress, n.baseAddress) }
            }
            if rc != 0 {
                if errno == ENOENT { return keys }
                try check("walk keys of map \(handle.name)", rc)
            }
            keys.append(next)
            previous = next
            // An array map never runs out of keys on its own.
            if keys.count >= Int(handle.maxEntries) { return keys }
        }
    }

    /// Removes `key`; returns false when it was not there.
    @discardableResult
    public func delete(key: [UInt8]) throws -> Bool {
        try checkSizes(key, nil)
        if key.withUnsafeBytes({ bpf_map_delete_elem(handle.fd, $0.baseAddress) }) != 0 {
            if errno == ENOENT { return false }
            try check("delete from map \(handle.name)", -1)
        }
        return true
    }

    /// Makes the map hold exactly `entries`: they are written first, then the keys not
    /// among them are deleted (zeroed, for an array), so a reader never sees the map empty.
    public func replaceAll(with entries: [(key: [UInt8], value: [UInt8])]) throws {
        guard !handle.type.isPerCPU else {
            throw BPFError(.typeMismatch, operation: "replace entries of map \(handle.name)", message: "per-CPU maps take a value per CPU")
        }
        if handle.type == .array { return try replaceArray(with: entries) }
        let keep = Set(entries.map(\.key))
        guard keep.count <= Int(handle.maxEntries) else {
            throw BPFError(.invalidState, operation: "replace entries of map \(handle.name)",
                           message: "\(keep.count) entries; the map holds \(handle.maxEntries)")
        }
        // New entries are written before stale ones go (no gap in what the map says), unless
        // both together would not fit: then the stale ones go first.
        let current = Set(try keys())
        let stale = current.subtracting(keep)
        if current.count + keep.subtracting(current).count > Int(handle.maxEntries) {
            for key in stale { try delete(key: key) }
            for entry in entries { try update(key: entry.key, value: entry.value) }
        } else {
            for entry in entries { try update(key: entry.key, value: entry.value) }
            for key in stale { try delete(key: key) }
        }
    }

    /// An array holds every index: the whole image is written in batches, unnamed slots zeroed.
    private func replaceArray(with entries: [(key: [UInt8], value: [UInt8])]) throws {
        try replaceSlots(0..<Int(handle.maxEntries), with: entries)
    }

    /// Makes an array's slots in `range` hold `entries` and zero where none is given, in
    /// batches; slots outside `range` are left alone (half of a generational array).
    public func replaceSlots(_ range: Range<Int>, with entries: [(key: [UInt8], value: [UInt8])]) throws {
        let size = handle.valueSize
        guard handle.type == .array, range.lowerBound >= 0, range.upperBound <= Int(handle.maxEntries) else {
            throw BPFError(.typeMismatch, operation: "write map \(handle.name)", message: "slots \(range) are not slots of an array of \(handle.maxEntries)")
        }
        var image = [UInt8](repeating: 0, count: range.count * size)
        for entry in entries {
            try checkSizes(entry.key, entry.value)
            let index = Int(entry.key.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
            guard range.contains(index) else {
                throw BPFError(.typeMismatch, operation: "write map \(handle.name)", message: "index \(index) is outside slots \(range)")
            }
            let at = (index - range.lowerBound) * size
            image.replaceSubrange(at..<at + size, with: entry.value)
        }
        try writeImage(image, at: range.lowerBound)
    }

    /// Writes slots `start...` of an array from `image` (slot start + i at i * value size), in batches.
    private func writeImage(_ image: [UInt8], at start: Int = 0) throws {
        let size = handle.valueSize, chunk = 65536, count = image.count / size
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            var keys = (UInt32(start + done)..<UInt32(start + done + n)).map { $0 }
            var written = UInt32(n)
            let rc = keys.withUnsafeMutableBytes { k in
                image.withUnsafeBytes { v in mz_map_update_batch(handle.fd, k.baseAddress, v.baseAddress! + done * size, &written) }
            }
            try check("batch update of map \(handle.name)", rc)
            done += n
        }
    }

    /// What a map holds, to put back with `restore`: an array as one image, other maps entry by entry.
    public enum Snapshot: Sendable {
        case image([UInt8])
        case entries([(key: [UInt8], value: [UInt8])])

        /// The keys of a map held entry by entry (none for an array image).
        public var keys: [[UInt8]] {
            guard case .entries(let entries) = self else { return [] }
            return entries.map(\.key)
        }
    }

    public func snapshot() throws -> Snapshot {
        guard handle.type == .array else { return .entries(try entries()) }
        let size = handle.valueSize
        var image = [UInt8](repeating: 0, count: Int(handle.maxEntries) * size)
        let batched = try image.withUnsafeMutableBytes { out in
            try forEachBatch(handle, batchSize: 65536) { keys, values, count in
                for i in 0..<count {
                    let index = Int(keys.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    out.baseAddress!.advanced(by: index * size).copyMemory(from: values.baseAddress!.advanced(by: i * size), byteCount: size)
                }
            }
        }
        guard batched else { throw BPFError(.typeMismatch, operation: "read map \(handle.name)", message: "the kernel has no batch lookup for it") }
        return .image(image)
    }

    /// Makes the map hold what `snapshot` held.
    public func restore(_ snapshot: Snapshot) throws {
        switch snapshot {
        case .image(let image): try writeImage(image)
        case .entries(let entries): try replaceAll(with: entries)
        }
    }

    private func checkSizes(_ key: [UInt8], _ value: [UInt8]?) throws {
        guard key.count == handle.keySize, value.map({ $0.count == handle.valueSize }) ?? true else {
            throw BPFError(.typeMismatch, operation: "access map \(handle.name)",
                           message: "key of \(key.count) B and value of \(value?.count ?? 0) B; the map has \(handle.keySize) and \(handle.valueSize)")
        }
    }
}
