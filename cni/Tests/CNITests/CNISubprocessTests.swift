import Foundation
import MizarCNI
import MizarTestSupport
import Testing

/// A delegated plugin is run but not trusted: one that hangs, floods its output, leaves a
/// child holding the pipe or writes before it reads cannot hang or exhaust `mizar`.
@Suite("CNI: running another plugin", .serialized)
struct CNISubprocessTests {
    /// A shell script of the test's own as the plugin.
    static func script(_ body: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-plugin-\(UUID().uuidString)").path
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    @Test func wellBehavedPluginGetsItsInputAndGivesItsOutput() throws {
        let plugin = try Self.script("cat; echo done; exit 3")
        defer { unlink(plugin) }
        let (status, output) = try Subprocess.run(plugin, environment: [:], input: Array("hello ".utf8))
        #expect(status == 3 && String(decoding: output, as: UTF8.self) == "hello done\n")
    }

    @Test func hangingPluginIsKilledWithWhatItForked() throws {
        // A sleep no other process runs (its argument is the marker pgrep looks for).
        let marker = "sleep 300.\(getpid())1"
        let plugin = try Self.script("cat >/dev/null; \(marker) & sleep 300")
        defer { unlink(plugin) }
        let start = Date()
        let error = #expect(throws: CNIError.self) { try Subprocess.run(plugin, environment: [:], input: [], timeout: 1) }
        #expect(error?.message.contains("did not finish within 1 s") == true, "\(String(describing: error))")
        #expect(Date().timeIntervalSince(start) < 10)
        usleep(200_000)
        #expect(try runCommand(["pgrep", "-f", marker]).status != 0, "the plugin's child outlived the timeout")
    }

    @Test func childHoldingThePipeDoesNotHoldTheCall() throws {
        let marker = "sleep 300.\(getpid())2"
        let plugin = try Self.script("cat >/dev/null; \(marker) & echo '{\"cniVersion\":\"1.0.0\"}'")
        defer {
            unlink(plugin)
            _ = try? runCommand(["pkill", "-f", marker])
        }
        let start = Date()
        let (status, output) = try Subprocess.run(plugin, environment: [:], input: [], timeout: 30)
        #expect(status == 0 && String(decoding: output, as: UTF8.self).contains("cniVersion"))
        #expect(Date().timeIntervalSince(start) < 5, "waited for the background child")
        #expect(try runCommand(["pgrep", "-f", marker]).status == 0, "the test's background child is not there: the check above proves nothing")
    }

    @Test func floodAndWriteBeforeReadAreHandled() throws {
        let flood = try Self.script("head -c 20000000 /dev/zero")
        defer { unlink(flood) }
        let error = #expect(throws: CNIError.self) { try Subprocess.run(flood, environment: [:], input: [], timeout: 30) }
        #expect(error?.message.contains("more than 16 MiB") == true, "\(String(describing: error))")
        // 200 KB out before 200 KB in: both pipes are served at once.
        let eager = try Self.script("head -c 200000 /dev/zero; cat >/dev/null")
        defer { unlink(eager) }
        let (status, output) = try Subprocess.run(eager, environment: [:], input: Array(repeating: 0x41, count: 200_000), timeout: 30)
        #expect(status == 0 && output.count == 200_000)
    }
}
