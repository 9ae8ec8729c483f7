import ArgumentParser
import Foundation

/// What mizarctl finds beside itself: an install (`<prefix>/bin/mizarctl` with
/// `<prefix>/include/mizar` and `<prefix>/share/mizar`), or the source tree it was built in.
enum MizarFiles {
    /// The directory of the running executable, links resolved (`argv[0]` may be a bare name found on PATH).
    static let executableDirectory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
    }()

    /// The mizar checkout mizarctl was built in (`.build/<triple>/<config>/mizarctl`), or the
    /// current directory when it is one.
    static var sourceTree: String? {
        [executableDirectory.appendingPathComponent("../../..").standardized.path, FileManager.default.currentDirectoryPath]
            .first(where: isCheckout)
    }

    /// A directory holding mizar's Package.swift.
    static func isCheckout(_ dir: String) -> Bool {
        guard let manifest = try? String(contentsOfFile: dir + "/Package.swift", encoding: .utf8) else { return false }
        return manifest.contains("name: \"mizar\"")
    }

    /// The objects a checkout builds, by name (`<name>.bpf.c` under bpf/, plugins/*/, plugins/examples/*/, Tests/bpf/).
    static func bpfSources(in root: String) -> [String] {
        let fm = FileManager.default
        func sources(_ dir: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".bpf.c") }.map { String($0.dropLast(6)) }
        }
        // Hidden folders (a killed `plugin new`'s staging) are not built: make's wildcards skip them too.
        func subfolders(_ dir: String) -> [String] { ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.map { dir + "/" + $0 } }
        let folders = [root + "/bpf", root + "/Tests/bpf"] + subfolders(root + "/plugins") + subfolders(root + "/plugins/examples")
        return folders.flatMap(sources)
    }

    /// The first of `candidates` (nil entries skipped) that holds `file`, and every place tried, each once.
    static func first(of candidates: [String?], holding file: String) -> (found: String?, tried: [String]) {
        var tried: [String] = []
        for case let dir? in candidates {
            let path = URL(fileURLWithPath: dir).standardizedFileURL.path
            guard !tried.contains(path) else { continue }
            tried.append(path)
            if FileManager.default.fileExists(atPath: path + "/" + file) { return (path, tried) }
        }
        return (nil, tried)
    }

    /// The directory holding `mizar/plugin.h`: `explicit`, `$MIZAR_INCLUDE_DIR`, the install, the source tree.
    static func includeDirectory(explicit: String?) throws -> String {
        let found = first(of: [explicit, ProcessInfo.processInfo.environment["MIZAR_INCLUDE_DIR"],
                               executableDirectory.appendingPathComponent("../include").path, "/usr/local/include",
                               sourceTree.map { $0 + "/bpf/include" }], holding: "mizar/plugin.h")
        guard let dir = found.found else {
            throw failure("mizar/plugin.h not found; tried \(found.tried.joined(separator: ", ")): give --include-dir or set MIZAR_INCLUDE_DIR")
        }
        return dir
    }

    /// The plugin `mizarctl plugin new` copies (port_guard): `explicit`, the install, the source tree.
    static func templateDirectory(explicit: String?) throws -> String {
        let found = first(of: [explicit, executableDirectory.appendingPathComponent("../share/mizar/plugin-template").path,
                               "/usr/local/share/mizar/plugin-template", sourceTree.map { $0 + "/plugins/examples/port_guard" }],
                          holding: PluginTemplate.name + ".plugin.yaml")
        guard let dir = found.found else {
            throw failure("the plugin template (\(PluginTemplate.name)) was not found; tried \(found.tried.joined(separator: ", ")): give --template")
        }
        return dir
    }
}

/// Prints `error: message` and gives the exit code (1) to throw.
func failure(_ message: String) -> ExitCode {
    printError("error: " + message)
    return ExitCode(1)
}
