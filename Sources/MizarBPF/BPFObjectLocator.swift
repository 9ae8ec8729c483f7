import Foundation

/// Finds compiled BPF objects: `$MIZAR_BPF_DIR`, then next to the executable
/// (`../lib/mizar/bpf`), the install location, and `build/bpf` of a source tree.
public struct BPFObjectLocator: Sendable {
    public var directories: [String]

    public init(explicit: String? = nil) {
        var dirs: [String] = []
        if let explicit { dirs.append(explicit) }
        if let env = ProcessInfo.processInfo.environment["MIZAR_BPF_DIR"] { dirs.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        dirs.append(exe.appendingPathComponent("../lib/mizar/bpf").standardized.path)
        dirs.append("/usr/local/lib/mizar/bpf")
        dirs.append(FileManager.default.currentDirectoryPath + "/build/bpf")
        // A SwiftPM build tree: .build/<triple>/<config>/<exe> sits three levels below the package root.
        dirs.append(exe.appendingPathComponent("../../../build/bpf").standardized.path)
        directories = dirs
    }

    /// Where object `file` may be, in search order, each place once; `first` directories go before ours.
    public func candidates(of file: String, first: [String] = []) -> [String] {
        var seen = Set<String>()
        return (first + directories).map { URL(fileURLWithPath: $0).standardizedFileURL.appendingPathComponent(file).path }
            .filter { seen.insert($0).inserted }
    }

    /// The path of object `file`, or a `.notFound` error naming every place searched.
    public func path(of file: String) throws -> String {
        let tried = candidates(of: file)
        if let found = tried.first(where: FileManager.default.fileExists(atPath:)) { return found }
        throw BPFError(.notFound, errno: ENOENT, operation: "find BPF object \(file)", message: "tried \(tried.joined(separator: ", ")); run `make bpf` or set MIZAR_BPF_DIR")
    }

    /// Opens object `file` from the first directory that has it.
    public func open(_ file: String) throws -> BPFObject {
        try BPFObject(path: path(of: file))
    }
}
