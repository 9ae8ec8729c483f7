import Foundation
import MizarTestSupport
import Testing

/// The mizarctl binary of this build.
private let mizarctl = TestPaths.root + "/.build/debug/mizarctl"

/// A plugin author's path, as the guide gives it: `plugin new` (both forms), `plugin build`,
/// `plugin check`, and the new plugin's own tests.
@Suite("mizarctl plugin new, build and check as a plugin author runs them")
struct PluginAuthorTests {
    /// A fresh folder, removed by the caller's `defer`.
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + uniquePrefix()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `command` with sh in `dir`, as an author in that folder would.
    func shell(_ command: String, in dir: String, timeout: TimeInterval = 60) throws -> CommandResult {
        try runCommand(["/bin/sh", "-c", "cd '\(dir)' && \(command)"], timeout: timeout)
    }

    /// Every file below `dir`, by relative path, with its text.
    func files(_ dir: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for case let file as String in FileManager.default.enumerator(atPath: dir)! {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + file, isDirectory: &isDirectory), !isDirectory.boolValue {
                out[file] = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            }
        }
        return out
    }

    @Test("standalone: a SwiftPM package on this checkout that builds its object, passes check and its own tests")
    func standalone() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try runCommand([mizarctl, "plugin", "new", "udp_block", "--hook", "ingress", "--dir", dir, "--mizar", TestPaths.root])
        #expect(made.status == 0 && made.output.contains("make test"), "\(made.output)\(made.error)")
        let plugin = dir + "/udp_block"
        let written = try files(plugin)
        #expect(Set(written.keys) == ["Package.swift", "Makefile", "README.md", ".gitignore", "udp_block.bpf.c", "udp_block.plugin.yaml",
                                      "Sources/UdpBlockPlugin/UdpBlock.swift", "Tests/UdpBlockPluginTests/UdpBlockTests.swift"])
        for (file, text) in written {
            #expect(!text.lowercased().contains("port_guard") && !text.lowercased().contains("portguard"), "\(file) keeps the template's name")
        }
        #expect(written["udp_block.plugin.yaml"]!.contains("hooks: [ingress]") && written["Sources/UdpBlockPlugin/UdpBlock.swift"]!.contains("hooks: [.ingress]"))

        // The loop the package's README gives: its object (mizarctl plugin build), then its SDK tests, in the kernel.
        let tested = try shell("make test MIZARCTL=\(mizarctl) MIZAR_BPF_DIR=\(TestPaths.bpfDir)", in: plugin, timeout: 1200)
        #expect(tested.status == 0, "\(tested.output)\(tested.error)")
        #expect(tested.output.contains("-target bpf") && FileManager.default.fileExists(atPath: plugin + "/udp_block.bpf.o"), "the object beside its yaml")
        #expect(tested.output.contains("Test run with 5 tests in 1 suite passed"), "\(tested.output)")

        // plugin check with a bare file name, as the README shows it.
        let checked = try shell("\(mizarctl) plugin check udp_block.plugin.yaml", in: plugin)
        #expect(checked.status == 0 && checked.output.contains("ok: udp_block") && checked.output.contains("drop reason 1: blocked-port"),
                "\(checked.output)\(checked.error)")

        let again = try runCommand([mizarctl, "plugin", "new", "udp_block", "--dir", dir, "--mizar", TestPaths.root])
        #expect(again.status == 1 && again.error.contains("exists"), "\(again.output)\(again.error)")
        #expect(try String(contentsOfFile: plugin + "/udp_block.plugin.yaml", encoding: .utf8) == written["udp_block.plugin.yaml"], "nothing overwritten")
        let badName = try runCommand([mizarctl, "plugin", "new", "Bad-Name", "--dir", dir])
        #expect(badName.status == 2 && !FileManager.default.fileExists(atPath: dir + "/Bad-Name"), "\(badName.error)")
    }

    @Test("in the tree: plugins/examples/NAME, its targets added to Package.swift, its object built by make, the standalone form's code")
    func inTree() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for item in ["Package.swift", "Makefile", "bpf", "plugins"] {
            try FileManager.default.copyItem(atPath: TestPaths.root + "/" + item, toPath: root + "/" + item)
        }
        let made = try shell("\(mizarctl) plugin new tcp_gate --hook egress", in: root)
        #expect(made.status == 0 && made.output.contains("added examplePlugin(\"TcpGate\", \"tcp_gate\")"), "\(made.output)\(made.error)")
        let plugin = root + "/plugins/examples/tcp_gate"
        let written = try files(plugin)
        #expect(Set(written.keys) == ["tcp_gate.bpf.c", "tcp_gate.plugin.yaml", "TcpGate.swift", "Tests/TcpGateTests.swift"])

        // The manifest still parses and declares the plugin's library and tests where the files are.
        let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        #expect(manifest.components(separatedBy: "examplePlugin(\"TcpGate\", \"tcp_gate\")").count == 2, "added once")
        let dumped = try shell("swift package dump-package", in: root, timeout: 300)
        let package = try #require(try JSONSerialization.jsonObject(with: Data(dumped.output.utf8)) as? [String: Any], "\(dumped.error)")
        let targets = (package["targets"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) { $0[$1["name"] as! String] = $1["path"] as? String }
        #expect(targets["TcpGatePlugin"] == "plugins/examples/tcp_gate" && targets["TcpGatePluginTests"] == "plugins/examples/tcp_gate/Tests")
        #expect(targets["PortGuardPlugin"] != nil, "the others stay")

        // make bpf picks the new source up like every plugin under plugins/.
        let built = try shell("make build/bpf/tcp_gate.bpf.o", in: root, timeout: 120)
        #expect(built.status == 0 && FileManager.default.fileExists(atPath: root + "/build/bpf/tcp_gate.bpf.o"), "\(built.output)\(built.error)")

        // Its Swift is the standalone form's, file for file: the standalone test runs this code, and
        // the template itself (port_guard) passes its tests in this suite.
        let other = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: other) }
        #expect(try runCommand([mizarctl, "plugin", "new", "tcp_gate", "--hook", "egress", "--dir", other, "--mizar", TestPaths.root]).status == 0)
        let standalone = try files(other + "/tcp_gate")
        #expect(standalone["Sources/TcpGatePlugin/TcpGate.swift"] == written["TcpGate.swift"])
        #expect(standalone["Tests/TcpGatePluginTests/TcpGateTests.swift"] == written["Tests/TcpGateTests.swift"])
        #expect(standalone["tcp_gate.bpf.c"] == written["tcp_gate.bpf.c"] && standalone["tcp_gate.plugin.yaml"] == written["tcp_gate.plugin.yaml"])

        let again = try shell("\(mizarctl) plugin new tcp_gate", in: root)
        #expect(again.status == 1 && again.error.contains("exists"))
        #expect(try String(contentsOfFile: root + "/Package.swift", encoding: .utf8) == manifest, "a refused run leaves the manifest alone")

        // A run killed midway: its hidden staging folder goes, and a folder whose manifest line
        // never came gets it on the next run. Calls in comments do not count.
        try FileManager.default.createDirectory(atPath: root + "/plugins/examples/.udp_gate.new-1/", withIntermediateDirectories: true)
        try "broken".write(toFile: root + "/plugins/examples/.udp_gate.new-1/udp_gate.bpf.c", atomically: true, encoding: .utf8)
        let commented = manifest.replacingOccurrences(of: " + examplePlugin(\"TcpGate\", \"tcp_gate\")", with: "")
            .replacingOccurrences(of: "let package = Package(", with: "// examplePlugin(\"UdpGate\", \"udp_gate\") in a comment\nlet package = Package(")
        try commented.write(toFile: root + "/Package.swift", atomically: true, encoding: .utf8)
        let healed = try shell("\(mizarctl) plugin new tcp_gate", in: root)
        #expect(healed.status == 1 && healed.error.contains("lacked it") && healed.error.contains("exists"), "\(healed.output)\(healed.error)")
        let made2 = try shell("\(mizarctl) plugin new udp_gate --hook ingress", in: root)
        #expect(made2.status == 0, "\(made2.output)\(made2.error)")
        let edited = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        #expect(edited.contains("examplePlugin(\"TcpGate\", \"tcp_gate\") + examplePlugin(\"UdpGate\", \"udp_gate\")"), "after the real calls")
        #expect(edited.contains("// examplePlugin(\"UdpGate\", \"udp_gate\") in a comment\n"), "the comment untouched")
        #expect(!FileManager.default.fileExists(atPath: root + "/plugins/examples/.udp_gate.new-1"), "the stale staging folder is gone")
        #expect(try shell("make build/bpf/udp_gate.bpf.o", in: root, timeout: 120).status == 0)

        // Elsewhere in a checkout is a mistake, said as such.
        let misplaced = try shell("\(mizarctl) plugin new stray", in: root + "/plugins")
        #expect(misplaced.status == 1 && misplaced.error.contains("inside the mizar checkout") && !FileManager.default.fileExists(atPath: root + "/plugins/stray"))
    }

    @Test("installed: mizarctl with make install-sdk's headers and template makes and builds a plugin outside any checkout")
    func installed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let installed = try shell("make install-sdk DESTDIR=\(dir) PREFIX=/usr", in: TestPaths.root)
        #expect(installed.status == 0, "\(installed.output)\(installed.error)")
        let bin = dir + "/usr/bin", work = dir + "/work"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: mizarctl, toPath: bin + "/mizarctl")

        let orphan = try shell("\(bin)/mizarctl plugin new icmp_free", in: work)
        #expect(orphan.status == 1 && orphan.error.contains("--mizar"), "no checkout to depend on: \(orphan.output)\(orphan.error)")
        let made = try shell("\(bin)/mizarctl plugin new icmp_free --mizar \(TestPaths.root)", in: work)
        #expect(made.status == 0 && FileManager.default.fileExists(atPath: work + "/icmp_free/Package.swift"), "\(made.output)\(made.error)")
        let built = try shell("\(bin)/mizarctl plugin build icmp_free", in: work, timeout: 120)
        #expect(built.status == 0 && built.output.contains("-I\(dir)/usr/include ") && FileManager.default.fileExists(atPath: work + "/icmp_free/icmp_free.bpf.o"),
                "the installed headers: \(built.output)\(built.error)")
    }

    @Test("names that would clash in C, with mizar's objects or with Swift's and the SDK's types are refused before anything is written")
    func reservedNames() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Every public type of the SDK's modules that a snake_case name turns into.
        var sdkTypes: [String] = []
        for module in ["MizarPluginSDK", "MizarPlugins", "MizarBPF", "MizarNet", "MizarPacket", "MizarAddresses"] {
            for file in try FileManager.default.contentsOfDirectory(atPath: TestPaths.root + "/Sources/" + module) where file.hasSuffix(".swift") {
                let text = try String(contentsOfFile: TestPaths.root + "/Sources/\(module)/\(file)", encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("public ") {
                    let words = line.split(separator: " ")
                    if words.count > 2, ["struct", "enum", "class", "protocol", "typealias", "actor", "final"].contains(String(words[1])) {
                        sdkTypes.append(String((words[1] == "final" ? words[3] : words[2]).prefix { $0.isLetter || $0.isNumber }))
                    }
                }
            }
        }
        func snake(_ type: String) -> String {
            var out = ""
            for c in type { if c.isUppercase, !out.isEmpty { out += "_" }; out += c.lowercased() }
            return out
        }
        let camelRoundTrips = sdkTypes.filter { type in snake(type).split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() == type }
        #expect(camelRoundTrips.contains("PluginHarness") && camelRoundTrips.contains("Counter"), "\(camelRoundTrips)")
        for name in ["int", "main", "mz_x", "bpf_thing", "pkt", "string", "test", "testing", "data", "acl", "shaper", "plugin_harness", "transit_xdp"]
            + camelRoundTrips.map(snake) {
            let refused = try runCommand([mizarctl, "plugin", "new", name, "--dir", dir, "--mizar", TestPaths.root])
            #expect(refused.status == 2 && refused.error.contains("'\(name)'") && refused.error.contains("plugin new"), "\(name): \(refused.error)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/" + name))
        }
    }

    @Test("plugin check finds the object by a bare name, a relative or absolute path, or through --bpf-dir; a missing one names every path tried, once")
    func checkFindsTheObject() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plugin = dir + "/guard", objects = dir + "/objects"
        try FileManager.default.createDirectory(atPath: plugin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: objects, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestPaths.root + "/plugins/examples/port_guard/port_guard.plugin.yaml", toPath: plugin + "/port_guard.plugin.yaml")
        try FileManager.default.copyItem(atPath: TestPaths.bpfDir + "/port_guard.bpf.o", toPath: plugin + "/port_guard.bpf.o")
        for (command, cwd) in [("plugin check port_guard.plugin.yaml", plugin), ("plugin check guard/port_guard.plugin.yaml", dir),
                               ("plugin check \(plugin)/port_guard.plugin.yaml", "/")] {
            let result = try shell("\(mizarctl) \(command)", in: cwd)
            #expect(result.status == 0 && result.output.contains("ok: port_guard") && result.output.contains("object: \(plugin)/port_guard.bpf.o"),
                    "\(command) in \(cwd): \(result.output)\(result.error)")
        }
        let nothing = try shell("\(mizarctl) plugin check nothing.plugin.yaml", in: plugin)
        #expect(nothing.status == 1 && nothing.error.contains("no descriptor file"), "a missing file is not a refused plugin: \(nothing.error)")

        // An object of a name no BPF directory holds: found only through --bpf-dir.
        var yaml = try String(contentsOfFile: plugin + "/port_guard.plugin.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "object: port_guard.bpf.o", with: "object: guard_copy.bpf.o")
        try yaml.write(toFile: plugin + "/port_guard.plugin.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(atPath: plugin + "/port_guard.bpf.o", toPath: objects + "/guard_copy.bpf.o")
        let missing = try shell("\(mizarctl) plugin check port_guard.plugin.yaml --bpf-dir \(dir)", in: plugin)
        #expect(missing.status == 1 && missing.error.contains("objectNotFound") && !missing.error.contains("invalidDescriptor"), "\(missing.error)")
        let tried = missing.error.components(separatedBy: "tried ").last?.components(separatedBy: " (build it").first?.components(separatedBy: ", ") ?? []
        #expect(tried.first == plugin + "/guard_copy.bpf.o" && tried.contains(dir + "/guard_copy.bpf.o"), "beside the yaml first, then --bpf-dir: \(tried)")
        #expect(Set(tried).count == tried.count && tried.count >= 3, "each path once: \(tried)")
        let found = try shell("\(mizarctl) plugin check port_guard.plugin.yaml --bpf-dir \(objects)", in: plugin)
        #expect(found.status == 0 && found.output.contains("ok: port_guard"), "\(found.output)\(found.error)")
    }

    @Test("plugin build compiles with the include paths a bare clang line lacks, and reports a broken source with clang's error")
    func build() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for file in ["port_guard.bpf.c", "port_guard.plugin.yaml"] {
            try FileManager.default.copyItem(atPath: TestPaths.root + "/plugins/examples/port_guard/" + file, toPath: dir + "/" + file)
        }
        let built = try shell("\(mizarctl) plugin build", in: dir, timeout: 120)
        #expect(built.status == 0 && built.output.contains("-I/usr/include/") && FileManager.default.fileExists(atPath: dir + "/port_guard.bpf.o"),
                "\(built.output)\(built.error)")
        #expect(try shell("\(mizarctl) plugin check port_guard.plugin.yaml", in: dir).status == 0)

        try "#include <mizar/plugin.h>\nint broken(\n".write(toFile: dir + "/broken.bpf.c", atomically: true, encoding: .utf8)
        let failed = try shell("\(mizarctl) plugin build broken.bpf.c", in: dir, timeout: 120)
        #expect(failed.status == 1 && failed.error.contains("broken.bpf.c") && !FileManager.default.fileExists(atPath: dir + "/broken.bpf.o"),
                "\(failed.output)\(failed.error)")
        let empty = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(try shell("\(mizarctl) plugin build", in: empty).error.contains("no *.bpf.c"))
    }
}
