import ArgumentParser
import Foundation

/// A plugin `mizarctl plugin new` makes: its name in the spellings the template uses.
struct NewPlugin {
    /// snake_case: the descriptor's name, the entry function, the files' and maps' prefix.
    let name: String
    let hooks: [String]

    /// UpperCamelCase: the Swift enum (`<Type>`) and modules (`<Type>Plugin`, `<Type>PluginTests`).
    var typeName: String { name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() }
    /// UPPER_CASE: the C constants.
    var constantPrefix: String { name.uppercased() }

    init(name: String, hooks: [String]) throws {
        if let problem = Self.problem(with: name) { throw ValidationError(problem) }
        self.name = name
        self.hooks = hooks
    }

    /// Why `name` cannot name a plugin, or nil. It becomes C identifiers (function, map,
    /// constants), an object file beside the core's and the built-ins', and Swift types and
    /// modules next to the SDK's, Foundation's and the testing library's: none may clash.
    static func problem(with name: String) -> String? {
        let letters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789_")
        guard let first = name.unicodeScalars.first, CharacterSet.lowercaseLetters.contains(first), name.count <= 24,
              name.unicodeScalars.allSatisfy(letters.contains), !name.hasSuffix("_"), !name.contains("__") else {
            return "'\(name)': a plugin name is 1-24 lower-case letters, digits and single '_', starting with a letter (it names C functions and maps)"
        }
        if cReserved.contains(name) || name.hasPrefix("mz_") || name.hasPrefix("bpf_") || name.hasPrefix("xdp_") {
            return "'\(name)' is reserved in C or by mizar's headers (C keywords, main, mz_*, bpf_*, xdp_*, and the names MZ_PLUGIN uses)"
        }
        if objectNames.contains(name) { return "'\(name)' is the name of one of mizar's own BPF objects: pick another" }
        let type = NewPlugin(unchecked: name).typeName
        if swiftReserved.contains(type) || swiftReserved.contains(type + "Plugin") {
            return "'\(name)' would make the Swift type \(type), which the SDK, Foundation or the testing library already has: pick another"
        }
        return nil
    }

    private init(unchecked name: String) {
        self.name = name
        hooks = []
    }

    /// C keywords, `main`, and what `MZ_PLUGIN` and mizar's headers name inside a plugin.
    static let cReserved: Set<String> = [
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern", "float", "for", "goto",
        "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while", "asm", "typeof", "bool", "true", "false", "main", "mz", "pkt", "xdp",
        "skb", "v", "ctx", "data", "len", "reason", "license",
    ]
    /// Objects the tree builds (the core's, the built-ins', the examples'): a plugin's object shares their folders.
    static let objectNames: Set<String> = ["transit_xdp", "transit_agent", "plugin_harness", "probe", "acl", "nat", "lb", "shaper", "noop", "port_guard"]
    /// Types and modules a plugin's Swift sees: Swift's, Foundation's, the testing library's, and the SDK's public types.
    static let swiftReserved: Set<String> = [
        "String", "Substring", "Character", "Data", "Date", "URL", "UUID", "Int", "Double", "Float", "Bool", "Array", "Set", "Dictionary",
        "Optional", "Result", "Error", "Never", "Void", "Any", "Range", "Sequence", "Collection", "Duration", "Process", "Thread", "Bundle",
        "Locale", "Decimal", "Calendar", "Notification", "Operation", "Timer", "Host", "Stream", "Pipe", "Scanner", "Measurement", "Unit",
        "Mirror", "Test", "Testing", "Suite", "Issue", "Tag", "Trait", "Comment", "Confirmation", "Foundation", "Swift", "Glibc",
        "Dispatch", "Logging", "Logger", "Yams", "System", "XCTest",
        // MizarPluginSDK and what it exports (PluginAuthorTests keeps this list current).
        "AddressError", "BPFError", "BPFLink", "BPFMap", "BPFMapHandle", "BPFMapSpec", "BPFMapType", "BPFObject", "BPFObjectLocator",
        "BPFPinDirectory", "BPFProgram", "BPFUpdatePolicy", "ConfigCheck", "Counter", "FNV1a", "GeneveOption", "HarnessContext",
        "HarnessResult", "HarnessVerdict", "HookPoint", "IPv4Address", "IPv4Frame", "IPv4Interface", "IPv6Address", "LibBPFVersion", "Link",
        "MACAddress", "Neighbor", "NetError", "Netns", "OwnedFileDescriptor", "PacketBuilder", "PerCPUMap", "PluginChains",
        "PluginConfiguration", "PluginCounters", "PluginDescriptor", "PluginDirectory", "PluginError", "PluginHarness", "PluginHook",
        "PluginHost", "PluginMapDescriptor", "PluginMapEntry", "PluginVerdict", "ProgramArray", "ProgramFlavor", "RawMap",
        "RawPluginConfiguration", "RefusedSwitch", "RingBuffer", "Route", "RouteSocket", "TCAction", "TCFilter", "TextCodable", "VNI", "XDP", "XDPAction",
        "XDPAttachment", "XDPMode", "XDPTestRunResult", "MizarPluginSDK", "MizarPlugins", "MizarBPF", "MizarNet", "MizarPacket",
        "MizarAddresses", "CMizarABI", "CLibBPF", "CNetlink",
    ]
}

/// The plugin that `mizarctl plugin new` copies: port_guard (`plugins/examples/port_guard`),
/// a real plugin that is built and tested with the tree, renamed. Nothing is generated from
/// strings but the files a standalone package adds around it.
struct PluginTemplate {
    static let name = "port_guard"
    static let typeName = "PortGuard"
    static let constantPrefix = "PORT_GUARD"

    /// Where the template's files are (`MizarFiles.templateDirectory`).
    let directory: String

    /// How the template names its hooks, in the descriptor file and in Swift.
    private static let hookLines = (yaml: "hooks: [egress, ingress]", swift: "hooks: [.egress, .ingress]")

    /// The template's four files renamed for `plugin`, by path in the template directory.
    func render(_ plugin: NewPlugin) throws -> [String: String] {
        let files = [Self.name + ".bpf.c", Self.name + ".plugin.yaml", Self.typeName + ".swift", "Tests/" + Self.typeName + "Tests.swift"]
        var rendered: [String: String] = [:]
        for file in files {
            guard var text = try? String(contentsOfFile: directory + "/" + file, encoding: .utf8) else {
                throw failure("the template in \(directory) lacks \(file)")
            }
            text = text.replacingOccurrences(of: Self.name, with: plugin.name)
                .replacingOccurrences(of: Self.typeName, with: plugin.typeName)
                .replacingOccurrences(of: Self.constantPrefix, with: plugin.constantPrefix)
            for (line, hooks) in [(Self.hookLines.yaml, plugin.hooks.joined(separator: ", ")),
                                  (Self.hookLines.swift, plugin.hooks.map { "." + $0 }.joined(separator: ", "))] where text.contains(line) {
                text = text.replacingOccurrences(of: line, with: line.prefix { $0 != "[" } + "[" + hooks + "]")
            }
            rendered[file] = text
        }
        return rendered
    }

    /// The files of `plugin` in place: as a folder of plugins/examples/ (in the tree) or as a
    /// standalone SwiftPM package on `mizar` (a path or a git URL of this repository).
    func files(_ plugin: NewPlugin, standaloneOn mizar: String?) throws -> [String: String] {
        let rendered = try render(plugin)
        let swift = rendered[Self.typeName + ".swift"]!, tests = rendered["Tests/" + Self.typeName + "Tests.swift"]!
        var files = [plugin.name + ".bpf.c": rendered[Self.name + ".bpf.c"]!, plugin.name + ".plugin.yaml": rendered[Self.name + ".plugin.yaml"]!]
        guard let mizar else {
            files[plugin.typeName + ".swift"] = swift
            files["Tests/" + plugin.typeName + "Tests.swift"] = tests
            return files
        }
        let module = plugin.typeName + "Plugin"
        files["Sources/\(module)/\(plugin.typeName).swift"] = swift
        files["Tests/\(module)Tests/\(plugin.typeName)Tests.swift"] = tests
        files["Package.swift"] = Standalone.manifest(plugin, module: module, mizar: mizar)
        files["Makefile"] = Standalone.makefile(plugin, mizar: mizar, mizarctl: MizarFiles.executableDirectory.appendingPathComponent("mizarctl").path)
        files["README.md"] = Standalone.readme(plugin, module: module)
        files[".gitignore"] = ".build/\nPackage.resolved\n*.o\n"
        return files
    }

    enum ManifestEdit { case added, present, noAnchor }

    /// Adds `examplePlugin("<Type>", "<name>")` after the last such call of the tree's
    /// Package.swift (calls in comments do not count). `.noAnchor` when there is none to
    /// follow (the caller prints the line to add).
    static func addToManifest(_ plugin: NewPlugin, root: String) throws -> ManifestEdit {
        let path = root + "/Package.swift"
        let manifest = try String(contentsOfFile: path, encoding: .utf8)
        let call = "examplePlugin(\"\(plugin.typeName)\", \"\(plugin.name)\")"
        let pattern = try NSRegularExpression(pattern: #"examplePlugin\("[A-Za-z0-9]+", "[a-z0-9_]+"\)"#)
        let code = pattern.matches(in: manifest, range: NSRange(manifest.startIndex..., in: manifest)).compactMap { Range($0.range, in: manifest) }
            .filter { range in
                let lineStart = manifest[..<range.lowerBound].lastIndex(of: "\n").map { manifest.index(after: $0) } ?? manifest.startIndex
                return !manifest[lineStart..<range.lowerBound].contains("//")
            }
        if code.contains(where: { manifest[$0] == call }) { return .present }
        guard let last = code.last else { return .noAnchor }
        var edited = manifest
        edited.insert(contentsOf: " + " + call, at: last.upperBound)
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
        return .added
    }
}

/// What a standalone plugin package has besides the template's files.
private enum Standalone {
    /// SwiftPM's identity of the mizar package: its folder's or repository's name.
    static func identity(_ mizar: String) -> String {
        var last = URL(fileURLWithPath: mizar).lastPathComponent
        if mizar.contains("://") || mizar.hasPrefix("git@") { last = String(mizar.split(separator: "/").last ?? "mizar") }
        if last.hasSuffix(".git") { last.removeLast(4) }
        return last.lowercased()
    }

    static func isURL(_ mizar: String) -> Bool { mizar.contains("://") || mizar.hasPrefix("git@") }

    static func manifest(_ plugin: NewPlugin, module: String, mizar: String) -> String {
        let dependency = isURL(mizar) ? ".package(url: \"\(mizar)\", branch: \"main\")" : ".package(path: \"\(mizar)\")"
        let sdk = ".product(name: \"MizarPluginSDK\", package: \"\(identity(mizar))\")"
        return """
            // swift-tools-version: 6.0
            // \(plugin.name): a Mizar data-plane plugin, made by `mizarctl plugin new` (README.md says how to build and test it).
            import PackageDescription

            let package = Package(
                name: "\(plugin.name)",
                platforms: [.macOS(.v14)],
                products: [.library(name: "\(module)", targets: ["\(module)"])],
                dependencies: [\(dependency)],
                targets: [
                    // The descriptor and the typed configuration, on the plugin SDK alone.
                    .target(name: "\(module)", dependencies: [\(sdk)], path: "Sources/\(module)"),
                    // SDK harness tests: the kernel runs \(plugin.name).bpf.o (root; `make test` builds it first).
                    .testTarget(name: "\(module)Tests", dependencies: ["\(module)", \(sdk)], path: "Tests/\(module)Tests"),
                ]
            )

            """
    }

    static func makefile(_ plugin: NewPlugin, mizar: String, mizarctl: String) -> String {
        let objects = isURL(mizar) ? "/usr/local/lib/mizar/bpf" : mizar + "/build/bpf"
        return """
            # \(plugin.name): build the BPF object, check it as a droplet would, run the SDK tests (root).
            export PATH := $(PATH):/opt/swift/usr/bin
            # The mizarctl that made this package; MIZARCTL=mizarctl takes the one on PATH.
            MIZARCTL ?= \(mizarctl)
            # The SDK harness's own object (plugin_harness.bpf.o): mizar's `make bpf` output or its install.
            MIZAR_BPF_DIR ?= \(objects)
            export MIZAR_BPF_DIR

            .PHONY: all bpf check test clean
            all: bpf
            bpf:
            \t$(MIZARCTL) plugin build .
            check: bpf
            \t$(MIZARCTL) plugin check \(plugin.name).plugin.yaml
            test: bpf
            \tswift build --build-tests
            \tswift test --skip-build
            clean:
            \trm -rf .build \(plugin.name).bpf.o

            """
    }

    static func readme(_ plugin: NewPlugin, module: String) -> String {
        """
        # \(plugin.name)

        A Mizar data-plane plugin (a tail-called XDP/TC network function; mizar's docs/plugins.md
        is the guide). As made by `mizarctl plugin new`, it drops TCP and UDP frames to the
        destination ports of its configuration map: change that in `\(plugin.name).bpf.c`.

        | file | what |
        |---|---|
        | `\(plugin.name).bpf.c` | the program: `MZ_PLUGIN(\(plugin.name))` around one function |
        | `\(plugin.name).plugin.yaml` | the descriptor a droplet checks against the object: hooks, maps, drop reasons' names |
        | `Sources/\(module)/` | the same descriptor in Swift and the typed configuration |
        | `Tests/\(module)Tests/` | tests through the SDK's `PluginHarness` (the real kernel, `BPF_PROG_TEST_RUN`) |

        As root:

        ```sh
        make test      # mizarctl plugin build . (the object beside the yaml), then swift build + swift test
        make check     # mizarctl plugin check: the descriptor, the object, the verifier on every flavour
        cp \(plugin.name).plugin.yaml \(plugin.name).bpf.o /etc/mizar/plugins/ && mizarctl plugin list --discover
        mizarctl chain set \(plugin.hooks.first ?? "egress") \(plugin.name)
        ```

        `swift test` alone does not rebuild the BPF object; `make test` does. The tests find the
        harness's own object through `MIZAR_BPF_DIR` (the Makefile sets it).

        """
    }
}
