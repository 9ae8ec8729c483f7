import ArgumentParser
import Foundation
import MizarPluginSDK

/// `mizarctl plugin new`: a complete plugin that builds and passes its tests, to edit.
struct PluginNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create a plugin: BPF C, descriptor, Swift descriptor with a typed configuration, and SDK tests that pass.",
        discussion: """
            The plugin is port_guard renamed (it drops TCP and UDP to configured ports, with named drop \
            reasons); edit it from there. In a mizar checkout (run from its root, or --dir <root>/plugins/examples) \
            it goes to plugins/examples/NAME and Package.swift gets its targets; anywhere else, or with \
            --standalone, it is a SwiftPM package of its own that depends on mizar (--mizar). docs/plugins.md.
            """)

    @Argument(help: "The plugin's name: lower-case letters, digits and '_' (it names C functions and maps).") var name: String
    @Option(help: "Where it runs: egress, ingress or both.") var hook: HookChoice = .both
    @Option(help: "The folder to create NAME in (default: plugins/examples in a checkout's root, else the current directory).")
    var dir: String?
    @Flag(help: "Make a standalone SwiftPM package even inside a checkout.") var standalone = false
    @Option(help: "For a standalone package: the mizar checkout (path) or git URL it depends on (default: the checkout mizarctl was built in).")
    var mizar: String?
    @Option(help: "The template plugin's folder (default: the install's share/mizar/plugin-template, or the checkout's plugins/examples/port_guard).")
    var template: String?

    enum HookChoice: String, ExpressibleByArgument, CaseIterable {
        case egress, ingress, both
        var hooks: [String] { self == .both ? ["egress", "ingress"] : [rawValue] }
    }

    func validate() throws {
        if let problem = NewPlugin.problem(with: name) { throw ValidationError(problem) }
        if let mizar, mizar.contains(where: { "\"\\$`' \n\t".contains($0) }) {
            throw ValidationError("--mizar \(mizar): quotes, backslashes, '$', backquotes and blanks are not taken (it goes into Package.swift and a Makefile)")
        }
    }

    func run() throws {
        let plugin = try NewPlugin(name: name, hooks: hook.hooks)
        let cwd = FileManager.default.currentDirectoryPath
        let parent = URL(fileURLWithPath: dir ?? (MizarFiles.isCheckout(cwd) && !standalone ? "plugins/examples" : "."),
                         relativeTo: URL(fileURLWithPath: cwd + "/")).standardizedFileURL.resolvingSymlinksInPath().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw failure("\(parent) is not a folder: give --dir an existing folder")
        }
        // In a checkout, plugins/examples is the tree's place for plugins; elsewhere in it is a mistake.
        let checkout = sequence(first: URL(fileURLWithPath: parent), next: { $0.path == "/" ? nil : $0.deletingLastPathComponent() })
            .map(\.path).first(where: MizarFiles.isCheckout)
        let inTree = !standalone && checkout.map { parent == $0 + "/plugins/examples" } == true
        if let checkout, !standalone, !inTree {
            throw failure("\(parent) is inside the mizar checkout \(checkout): in-tree plugins go to \(checkout)/plugins/examples (run from its root, or --dir there); --standalone makes a package of its own here")
        }
        var on: String? = nil
        if !inTree {
            guard let mizar = mizar ?? MizarFiles.sourceTree else {
                throw failure("a standalone plugin depends on mizar: give --mizar PATH (a checkout) or --mizar URL (its git repository)")
            }
            on = mizar.contains("://") || mizar.hasPrefix("git@") ? mizar : URL(fileURLWithPath: mizar).standardizedFileURL.path
        }
        let files = try PluginTemplate(directory: MizarFiles.templateDirectory(explicit: template)).files(plugin, standaloneOn: on)
        let target = parent + "/" + plugin.name
        if FileManager.default.fileExists(atPath: target) {
            // A run killed before its manifest edit left the folder: finish that part.
            if inTree, let checkout, try PluginTemplate.addToManifest(plugin, root: checkout) == .added {
                printError("added examplePlugin(\"\(plugin.typeName)\", \"\(plugin.name)\") to \(checkout)/Package.swift, which lacked it")
            }
            throw failure("\(target) exists; nothing written")
        }
        if inTree, let checkout, let clash = MizarFiles.bpfSources(in: checkout).first(where: { $0 == plugin.name }) {
            throw failure("the tree already builds \(clash).bpf.o: pick another name")
        }
        try write(files, to: target)
        print("created \(target) (\(inTree ? "in the tree" : "a standalone package on \(on!)")):")
        for file in files.keys.sorted() { print("  \(file)") }
        if inTree, let checkout {
            let call = "examplePlugin(\"\(plugin.typeName)\", \"\(plugin.name)\")"
            switch try PluginTemplate.addToManifest(plugin, root: checkout) {
            case .added, .present: print("added \(call) to \(checkout)/Package.swift")
            case .noAnchor: print("add to the targets of \(checkout)/Package.swift:  + \(call)")
            }
            print("next (root): make bpf && swift build --build-tests && swift test --skip-build --filter \(plugin.typeName)PluginTests")
        } else {
            print("next (root): cd \(target) && make test    # builds \(plugin.name).bpf.o, then the SDK tests")
        }
    }

    /// Writes every file into a hidden folder beside `target` (where neither make nor a plugin
    /// directory scan looks), then renames it: all or nothing. Leftovers of killed runs go first.
    private func write(_ files: [String: String], to target: String) throws {
        let folder = URL(fileURLWithPath: target).deletingLastPathComponent()
        let name = URL(fileURLWithPath: target).lastPathComponent
        for stale in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where stale.hasPrefix(".\(name).new-") {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(stale))
        }
        let staging = folder.appendingPathComponent(".\(name).new-\(getpid())").path
        do {
            for (file, text) in files {
                let path = staging + "/" + file
                try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
                try text.write(toFile: path, atomically: false, encoding: .utf8)
            }
            try FileManager.default.moveItem(atPath: staging, toPath: target)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw failure("cannot write \(target): \(error.localizedDescription)")
        }
    }
}

/// `mizarctl plugin build`: the plugin's objects, compiled as the tree compiles its own.
struct PluginBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Compile a plugin's *.bpf.c into *.bpf.o beside its descriptor, ready for the plugin directory.",
        discussion: """
            Runs clang -O2 -g -target bpf -Wall with mizar's headers (mizar/plugin.h), the plugin's folder and \
            its include/, and the architecture's system headers (/usr/include/<arch>-linux-gnu, which Debian's \
            clang does not search for BPF). Prints each command. Then: mizarctl plugin check NAME.plugin.yaml.
            """)

    @Argument(help: "The plugin's folder (or one .bpf.c file).") var path: String = "."
    @Option(name: .customLong("include-dir"), help: "The folder holding mizar/plugin.h (default: $MIZAR_INCLUDE_DIR, the install's include/, the checkout's bpf/include).")
    var includeDir: String?
    @Option(help: "The compiler (default: $CLANG, clang on PATH, /opt/swift/usr/bin/clang).") var clang: String?
    @Flag(inversion: .prefixedNo, help: "Make warnings errors, as the tree's own build (make bpf) does.") var werror = true

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw failure("\(path) does not exist") }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        let folder = isDirectory.boolValue ? absolute.path : absolute.deletingLastPathComponent().path
        let sources = isDirectory.boolValue
            ? ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".bpf.c") }.sorted().map { folder + "/" + $0 }
            : [absolute.path]
        guard !sources.isEmpty, sources.allSatisfy({ $0.hasSuffix(".bpf.c") }) else { throw failure("no *.bpf.c in \(path)") }
        if let checkout = sequence(first: URL(fileURLWithPath: folder), next: { $0.path == "/" ? nil : $0.deletingLastPathComponent() })
            .map(\.path).first(where: MizarFiles.isCheckout), folder.hasPrefix(checkout + "/plugins/") {
            printError("note: \(folder) is in the tree: `make bpf` builds it into build/bpf, which its tests load first; the object made here is for a plugin directory")
        }
        let compiler = try findCompiler()
        var flags = ["-O2", "-g", "-target", "bpf", "-Wall", "-I" + (try MizarFiles.includeDirectory(explicit: includeDir)),
                     "-I" + folder, "-I" + folder + "/include"]
        if werror { flags.append("-Werror") }
        if let arch = systemIncludeDirectory() { flags.append("-I" + arch) }
        for source in sources {
            let object = String(source.dropLast(2)) + ".o"
            let arguments = flags + ["-c", source, "-o", object]
            print(([compiler] + arguments).map(shellQuoted).joined(separator: " "))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: compiler)
            process.arguments = arguments
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw failure("\(compiler) failed on \(source) (status \(process.terminationStatus))") }
        }
        print("built \(sources.count) object\(sources.count == 1 ? "" : "s"); next: mizarctl plugin check \(folder)/<name>.plugin.yaml")
    }

    private func findCompiler() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let searchPath = (env["PATH"] ?? "").split(separator: ":").map(String.init) + ["/opt/swift/usr/bin"]
        func resolve(_ name: String) -> String? {
            if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
            return searchPath.map { $0 + "/" + name }.first(where: FileManager.default.isExecutableFile(atPath:))
        }
        if let given = clang ?? env["CLANG"] {
            guard let found = resolve(given) else { throw failure("the compiler \(given) is not found or not executable") }
            return found
        }
        guard let found = resolve("clang") else {
            throw failure("clang not found on PATH nor in /opt/swift/usr/bin: install clang or the Swift toolchain, or give --clang")
        }
        return found
    }

    /// Debian keeps asm/types.h and friends under the multiarch folder; clang -target bpf does not look there.
    private func systemIncludeDirectory() -> String? {
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let dir = "/usr/include/\(machine == "arm64" ? "aarch64" : machine)-linux-gnu"
        return FileManager.default.fileExists(atPath: dir) ? dir : nil
    }
}

/// `text` as one shell word (printed commands can be pasted back safely).
func shellQuoted(_ text: String) -> String {
    text.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=+:,@".contains($0) }) ? text : "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}
