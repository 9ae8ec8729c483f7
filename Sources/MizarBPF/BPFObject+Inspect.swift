import CLibBPF
import Foundation

/// A map as an object declares it, before load.
public struct BPFMapSpec: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let type: BPFMapType
    public let keySize: Int
    public let valueSize: Int
    public let maxEntries: UInt32

    public init(name: String, type: BPFMapType, keySize: Int, valueSize: Int, maxEntries: UInt32) {
        self.name = name
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
    }

    public var description: String { "\(name) (\(type), key \(keySize) B, value \(valueSize) B, \(maxEntries) entries)" }
}

extension BPFObject {
    /// Reads a `const volatile` global as compiled into the object (before load).
    public func global<T: BitwiseCopyable>(_ variable: String, as type: T.Type = T.self) throws -> T {
        let operation = "read global \(variable) of \(name)"
        let size = MemoryLayout<T>.size
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<T>.alignment)
        defer { buffer.deallocate() }
        let rc = mz_bpf_object_get_rodata(raw, variable, buffer, size)
        switch -rc {
        case 0: return buffer.loadUnaligned(as: T.self)
        case ENOENT: throw BPFError(.notFound, errno: ENOENT, operation: operation, message: "no const volatile variable named \(variable)")
        case EINVAL: throw BPFError(.typeMismatch, errno: EINVAL, operation: operation, message: "the variable does not have \(size) bytes")
        case EBUSY: throw BPFError(.invalidState, errno: EBUSY, operation: operation, message: "the object is already loaded")
        default: throw BPFError.system(operation, errno: -rc)
        }
    }

    /// Chooses whether `program` is loaded with the object (all are by default). A program
    /// left out is not verified and does not bind the maps it uses to its type.
    public func setAutoload(_ program: String, _ load: Bool) throws {
        let operation = "set autoload of \(program) in \(name)"
        guard !isLoaded else { throw BPFError(.invalidState, operation: operation, message: "the object is already loaded") }
        guard let p = bpf_object__find_program_by_name(raw, program) else {
            throw BPFError(.notFound, errno: ENOENT, operation: operation, message: "no program named \(program); it has: \(programNames.joined(separator: ", "))")
        }
        try check(operation, bpf_program__set_autoload(p, load))
    }

    /// The object's own maps as declared (internal `.rodata`/`.bss`/`.data` maps left out).
    public var declaredMaps: [BPFMapSpec] {
        var specs: [BPFMapSpec] = []
        var m = bpf_object__next_map(raw, nil)
        while let map = m {
            if !bpf_map__is_internal(map) {
                specs.append(BPFMapSpec(name: String(cString: bpf_map__name(map)), type: BPFMapType(rawValue: bpf_map__type(map).rawValue),
                                        keySize: Int(bpf_map__key_size(map)), valueSize: Int(bpf_map__value_size(map)),
                                        maxEntries: bpf_map__max_entries(map)))
            }
            m = bpf_object__next_map(raw, map)
        }
        return specs
    }
}

extension BPFMapHandle {
    /// Creates a map outside any object; it lives as long as the handle (and whatever uses it).
    public static func create(_ type: BPFMapType, name: String, keySize: Int, valueSize: Int, maxEntries: UInt32) throws -> BPFMapHandle {
        let fd = mz_map_create(bpf_map_type(type.rawValue), name, UInt32(keySize), UInt32(valueSize), maxEntries)
        guard fd >= 0 else { throw BPFError.system("create \(type) map \(name)", errno: -fd) }
        return try BPFMapHandle(owning: fd)
    }
}

extension ProgramArray {
    /// A new, empty program array of `capacity` slots.
    public static func create(name: String, capacity: UInt32) throws -> ProgramArray {
        try ProgramArray(.create(.programArray, name: name, keySize: 4, valueSize: 4, maxEntries: capacity))
    }
}
