import CLibBPF
import Foundation

/// A directory on bpffs where maps, programs and links are pinned by name,
/// so that they outlive the process that made them (DESIGN §6).
public struct BPFPinDirectory: Sendable {
    /// The default base of every Mizar pin.
    public static let defaultBase = "/sys/fs/bpf/mizar"

    public let path: String

    /// Uses `path`, creating it if needed; it must be on a mounted bpffs.
    public init(path: String = BPFPinDirectory.defaultBase) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var fs = statfs()
        guard statfs(path, &fs) == 0 else { throw BPFError.system("statfs \(path)", errno: errno) }
        guard UInt(fs.f_type) == UInt(BPF_FS_MAGIC) else {
            throw BPFError(.invalidState, operation: "use pin directory \(path)", message: "not on a bpf filesystem; mount one with: mount -t bpf bpf /sys/fs/bpf")
        }
    }

    public func pathFor(_ name: String) -> String { path + "/" + name }

    public func pin(_ map: BPFMapHandle, as name: String) throws {
        try check("pin map \(map.name) at \(pathFor(name))", bpf_obj_pin(map.fd, pathFor(name)))
    }

    public func pin(_ program: BPFProgram, as name: String) throws {
        try check("pin program \(program.name) at \(pathFor(name))", bpf_obj_pin(program.fd, pathFor(name)))
    }

    public func pin(_ link: BPFLink, as name: String) throws {
        try link.pin(at: pathFor(name))
    }

    public func openMap(_ name: String) throws -> BPFMapHandle {
        let fd = bpf_obj_get(pathFor(name))
        try check("open pinned map \(pathFor(name))", fd)
        return try BPFMapHandle(owning: fd)
    }

    public func openProgram(_ name: String) throws -> BPFProgram {
        let fd = bpf_obj_get(pathFor(name))
        try check("open pinned program \(pathFor(name))", fd)
        return try BPFProgram(owning: fd)
    }

    public func openLink(_ name: String) throws -> BPFLink {
        try BPFLink.openPinned(pathFor(name))
    }

    /// Removes a pin; the object lives on while anything else holds it. False if absent.
    @discardableResult
    public func unpin(_ name: String) throws -> Bool {
        if unlink(pathFor(name)) != 0 {
            if errno == ENOENT { return false }
            throw BPFError.system("unpin \(pathFor(name))", errno: errno)
        }
        return true
    }

    /// Names pinned here.
    public func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    /// Removes every pin here and the directory itself.
    public func removeAll() throws {
        for name in try names() {
            let full = pathFor(name)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), isDir.boolValue {
                try BPFPinDirectory(path: full).removeAll()
            } else {
                try unpin(name)
            }
        }
        if rmdir(path) != 0, errno != ENOENT { throw BPFError.system("remove pin directory \(path)", errno: errno) }
    }
}
