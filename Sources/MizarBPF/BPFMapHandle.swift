import CLibBPF
import Foundation

/// The kind of a BPF map, as the kernel names it.
public struct BPFMapType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let hash = BPFMapType(rawValue: BPF_MAP_TYPE_HASH.rawValue)
    public static let array = BPFMapType(rawValue: BPF_MAP_TYPE_ARRAY.rawValue)
    public static let programArray = BPFMapType(rawValue: BPF_MAP_TYPE_PROG_ARRAY.rawValue)
    public static let perCPUHash = BPFMapType(rawValue: BPF_MAP_TYPE_PERCPU_HASH.rawValue)
    public static let perCPUArray = BPFMapType(rawValue: BPF_MAP_TYPE_PERCPU_ARRAY.rawValue)
    public static let lruHash = BPFMapType(rawValue: BPF_MAP_TYPE_LRU_HASH.rawValue)
    public static let lruPerCPUHash = BPFMapType(rawValue: BPF_MAP_TYPE_LRU_PERCPU_HASH.rawValue)
    public static let lpmTrie = BPFMapType(rawValue: BPF_MAP_TYPE_LPM_TRIE.rawValue)

    public var isPerCPU: Bool { [.perCPUHash, .perCPUArray, .lruPerCPUHash].contains(self) }

    public var description: String {
        guard let name = libbpf_bpf_map_type_str(bpf_map_type(rawValue)) else { return "unknown(\(rawValue))" }
        return String(cString: name)
    }
}

/// An untyped map: its descriptor and shape, read from the kernel.
/// Wrap it in `BPFMap`, `PerCPUMap` or `ProgramArray` to use it.
public struct BPFMapHandle: @unchecked Sendable {
    public let fd: Int32
    public let name: String
    public let type: BPFMapType
    public let keySize: Int
    public let valueSize: Int
    public let maxEntries: UInt32
    public let id: UInt32
    let owner: AnyObject

    init(fd: Int32, owner: AnyObject) throws {
        var info = bpf_map_info()
        try check("read map info of fd \(fd)", mz_map_info(fd, &info))
        self.fd = fd
        self.owner = owner
        self.name = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        self.type = BPFMapType(rawValue: info.type)
        self.keySize = Int(info.key_size)
        self.valueSize = Int(info.value_size)
        self.maxEntries = info.max_entries
        self.id = info.id
    }

    /// Wraps a map descriptor obtained elsewhere (pin, id); takes ownership of it.
    public init(owning fd: Int32) throws {
        try self.init(fd: fd, owner: OwnedFileDescriptor(fd))
    }

    /// Throws unless the map has one of `types` and the given key/value sizes.
    func expect(_ types: [BPFMapType], key: Int, value: Int?, as wrapper: String) throws {
        let operation = "use map \(name) as \(wrapper)"
        guard types.contains(type) else {
            throw BPFError(.typeMismatch, operation: operation, message: "map type is \(type), expected one of \(types.map(\.description).joined(separator: ", "))")
        }
        guard key == keySize else {
            throw BPFError(.typeMismatch, operation: operation, message: "key type has \(key) bytes, the map's key has \(keySize)")
        }
        if let value, value != valueSize {
            throw BPFError(.typeMismatch, operation: operation, message: "value type has \(value) bytes, the map's value has \(valueSize)")
        }
    }
}

extension BPFMapHandle {
    /// Kernel memory the map uses now, in bytes, as the kernel reports it (`memlock` in
    /// the descriptor's fdinfo; a map without preallocation grows with its entries).
    public var memoryUsage: UInt64 {
        get throws {
            let text = try String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8)
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("memlock:") }),
                  let bytes = UInt64(line.dropFirst("memlock:".count).trimmingCharacters(in: .whitespaces)) else {
                throw BPFError(.notFound, operation: "read memory usage of map \(name)", message: "no memlock line in fdinfo")
            }
            return bytes
        }
    }
}
