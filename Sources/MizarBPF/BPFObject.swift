import CLibBPF
import Foundation

/// A BPF ELF object: opened, configured (globals, map sizes), then loaded into the kernel.
///
/// Programs and maps stay valid while the object lives; closing the object closes
/// their descriptors (pinned maps and attached links keep the kernel objects alive).
public final class BPFObject: @unchecked Sendable {
    let raw: OpaquePointer
    /// The object's name (file name or the name given to `init(bytes:name:)`).
    public let name: String
    public private(set) var isLoaded = false
    // libbpf reads a memory-opened object's ELF in place until load, so the bytes need
    // an address that stays put for the object's life (Data promises none outside a closure).
    private let backing: UnsafeMutableRawBufferPointer?

    /// Opens an object file.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw BPFError(.notFound, errno: ENOENT, operation: "open BPF object \(path)", message: "no such file")
        }
        let ptr = try withLibbpfLog { () throws -> OpaquePointer in
            guard let ptr = bpf_object__open(path) else {
                throw BPFError.system("open BPF object \(path)", errno: errno)
            }
            return ptr
        }
        self.raw = ptr
        self.name = (path as NSString).lastPathComponent
        self.backing = nil
    }

    /// Opens an object held in memory (for example, embedded in a binary).
    public init(bytes: Data, name: String) throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        copy.copyBytes(from: bytes)
        let ptr: OpaquePointer
        do {
            ptr = try withLibbpfLog { () throws -> OpaquePointer in
                var opts = bpf_object_open_opts()
                opts.sz = MemoryLayout<bpf_object_open_opts>.size
                let ptr = name.withCString { cname in
                    opts.object_name = cname
                    return bpf_object__open_mem(copy.baseAddress, bytes.count, &opts)
                }
                guard let ptr else { throw BPFError.system("open BPF object \(name) from memory", errno: errno) }
                return ptr
            }
        } catch {
            copy.deallocate()
            throw error
        }
        self.raw = ptr
        self.name = name
        self.backing = copy
    }

    deinit {
        bpf_object__close(raw)
        backing?.deallocate()
    }

    /// Sets a `const volatile` global before load; the value must have the variable's size.
    public func setGlobal<T: BitwiseCopyable>(_ variable: String, to value: T) throws {
        let operation = "set global \(variable) of \(name)"
        guard !isLoaded else {
            throw BPFError(.invalidState, operation: operation, message: "the object is already loaded; globals are set between open and load")
        }
        var value = value
        let rc = withUnsafeBytes(of: &value) { mz_bpf_object_set_rodata(raw, variable, $0.baseAddress, $0.count) }
        switch -rc {
        case 0: return
        case ENOENT: throw BPFError(.notFound, errno: ENOENT, operation: operation, message: "no const volatile variable named \(variable)")
        case EINVAL: throw BPFError(.typeMismatch, errno: EINVAL, operation: operation, message: "value of \(MemoryLayout<T>.size) bytes does not match the variable's size")
        default: throw BPFError.system(operation, errno: -rc)
        }
    }

    /// Sets the capacity of a map before load (sizes chosen at load time, not compile time).
    public func setMaxEntries(_ count: UInt32, ofMap map: String) throws {
        let operation = "set max entries of map \(map) in \(name)"
        guard !isLoaded else {
            throw BPFError(.invalidState, operation: operation, message: "the object is already loaded")
        }
        guard let m = bpf_object__find_map_by_name(raw, map) else {
            throw BPFError(.notFound, errno: ENOENT, operation: operation, message: "no map named \(map)")
        }
        try check(operation, bpf_map__set_max_entries(m, count))
    }

    /// Makes a map reuse (or create and pin) the map pinned at `path` on load, so state survives restarts.
    public func setPinPath(_ path: String, ofMap map: String) throws {
        let operation = "set pin path of map \(map) in \(name)"
        guard let m = bpf_object__find_map_by_name(raw, map) else {
            throw BPFError(.notFound, errno: ENOENT, operation: operation, message: "no map named \(map)")
        }
        try check(operation, bpf_map__set_pin_path(m, path))
    }

    /// Makes the object's map `map` use an existing map instead of creating its own on load,
    /// so that two objects share one table (`bpf_map__reuse_fd`). Shapes must match.
    public func reuseMap(_ map: String, from existing: BPFMapHandle) throws {
        let operation = "reuse map \(existing.name) as \(map) in \(name)"
        guard !isLoaded else {
            throw BPFError(.invalidState, operation: operation, message: "the object is already loaded")
        }
        guard let m = bpf_object__find_map_by_name(raw, map) else {
            throw BPFError(.notFound, errno: ENOENT, operation: operation, message: "no map named \(map)")
        }
        guard bpf_map__key_size(m) == existing.keySize, bpf_map__value_size(m) == existing.valueSize,
              bpf_map__type(m).rawValue == existing.type.rawValue else {
            throw BPFError(.typeMismatch, operation: operation, message: "the maps differ in type, key or value size")
        }
        try check(operation, bpf_map__reuse_fd(m, existing.fd))
    }

    /// Loads every program and creates every map; a rejected program throws
    /// `.verifierRejected` with the verifier log.
    public func load() throws {
        let operation = "load BPF object \(name)"
        guard !isLoaded else {
            throw BPFError(.invalidState, operation: operation, message: "already loaded")
        }
        mz_libbpf_capture_begin()
        let rc = bpf_object__load(raw)
        let log = takeLibbpfCapture()
        if rc != 0 {
            let err = -rc
            let code: BPFError.Code = log.contains("-- BEGIN PROG LOAD LOG --") ? .verifierRejected : .system
            throw BPFError(code, errno: err, operation: operation, message: String(cString: strerror(err)), log: log)
        }
        isLoaded = true
    }

    /// The program defined by the function `name` in the object.
    public func program(named program: String) throws -> BPFProgram {
        guard let p = bpf_object__find_program_by_name(raw, program) else {
            throw BPFError(.notFound, errno: ENOENT, operation: "find program \(program) in \(name)", message: "no program named \(program); it has: \(programNames.joined(separator: ", "))")
        }
        let fd = bpf_program__fd(p)
        guard fd >= 0 else {
            throw BPFError(.invalidState, operation: "find program \(program) in \(name)", message: "the object is not loaded")
        }
        return BPFProgram(fd: fd, name: program, owner: self)
    }

    /// The map defined as `name` in the object.
    public func map(named map: String) throws -> BPFMapHandle {
        guard let m = bpf_object__find_map_by_name(raw, map) else {
            throw BPFError(.notFound, errno: ENOENT, operation: "find map \(map) in \(name)", message: "no map named \(map); it has: \(mapNames.joined(separator: ", "))")
        }
        let fd = bpf_map__fd(m)
        guard fd >= 0 else {
            throw BPFError(.invalidState, operation: "find map \(map) in \(name)", message: "the object is not loaded")
        }
        return try BPFMapHandle(fd: fd, owner: self)
    }

    /// Names of the object's programs.
    public var programNames: [String] {
        var names: [String] = []
        var p = bpf_object__next_program(raw, nil)
        while let prog = p {
            names.append(String(cString: bpf_program__name(prog)))
            p = bpf_object__next_program(raw, prog)
        }
        return names
    }

    /// Names of the object's maps, internal ones (`.rodata`, `.bss`) included.
    public var mapNames: [String] {
        var names: [String] = []
        var m = bpf_object__next_map(raw, nil)
        while let map = m {
            names.append(String(cString: bpf_map__name(map)))
            m = bpf_object__next_map(raw, map)
        }
        return names
    }
}
