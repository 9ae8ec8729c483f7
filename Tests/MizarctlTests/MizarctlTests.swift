import Foundation
import MizarTestSupport
import Testing

/// The mizarctl binary of this build.
private let mizarctl = TestPaths.root + "/.build/debug/mizarctl"

@Suite("mizarctl as a user runs it")
struct MizarctlTests {
    @Test func helpNamesEverySubcommand() throws {
        let result = try runCommand([mizarctl, "--help"])
        #expect(result.status == 0)
        #expect(result.output.contains("version"))
        #expect(result.output.contains("bpf"))
        let probeHelp = try runCommand([mizarctl, "bpf", "probe", "--help"])
        #expect(probeHelp.output.contains("--bpf-dir"))
        #expect(probeHelp.output.contains("native XDP on veth"))
    }

    @Test func pluginCheckAcceptsTheExampleAndRefusesABadObject() throws {
        // The example's descriptor sits in the source tree; its object is built elsewhere (found through --bpf-dir).
        let good = try runCommand([mizarctl, "plugin", "check", TestPaths.root + "/plugins/examples/noop/noop.plugin.yaml", "--bpf-dir", TestPaths.bpfDir])
        #expect(good.status == 0 && good.output.contains("ok: noop"), "\(good.output)\(good.error)")

        let dir = NSTemporaryDirectory() + uniquePrefix()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: TestPaths.root + "/plugins/examples/port_guard/port_guard.plugin.yaml", toPath: dir + "/port_guard.plugin.yaml")
        try FileManager.default.copyItem(atPath: TestPaths.bpfDir + "/port_guard.bpf.o", toPath: dir + "/port_guard.bpf.o")
        let ok = try runCommand([mizarctl, "plugin", "check", dir + "/port_guard.plugin.yaml", "--bpf-dir", TestPaths.bpfDir])
        #expect(ok.status == 0 && ok.output.contains("ok: port_guard 1.0.0") && ok.output.contains("map port_guard_ports: hash"), "\(ok.output)\(ok.error)")

        try """
            name: bad
            version: 0.1.0
            abi: 1
            object: bad_verifier_plugin.bpf.o
            entry: bad_verifier
            hooks: [egress]
            """.write(toFile: dir + "/bad.plugin.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: TestPaths.bpfDir + "/tests/bad_verifier_plugin.bpf.o", toPath: dir + "/bad_verifier_plugin.bpf.o")
        let bad = try runCommand([mizarctl, "plugin", "check", dir + "/bad.plugin.yaml", "--bpf-dir", TestPaths.bpfDir])
        #expect(bad.status == 2 && bad.error.contains("verifierRejected") && bad.error.contains("verifier log"), "\(bad.output)\(bad.error)")
    }

    @Test func versionPrintsBothVersions() throws {
        let result = try runCommand([mizarctl, "version"])
        #expect(result.status == 0)
        #expect(result.output.contains("mizarctl 0."))
        #expect(result.output.contains("libbpf v1."))
    }

    @Test func probePassesOnThisHost() throws {
        let result = try runCommand([mizarctl, "bpf", "probe", "--bpf-dir", TestPaths.bpfDir])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        for check in ["bpffs", "btf", "program load + test-run", "tail calls", "xdp live frames", "native xdp on veth"] {
            #expect(result.output.split(separator: "\n").contains { $0.hasPrefix(check) && $0.contains(" ok ") }, "\(check) not ok in:\n\(result.output)")
        }
    }

    @Test func probeNamesWhatIsMissing() throws {
        let empty = NSTemporaryDirectory() + uniquePrefix()
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        // A copy of the binary outside the tree finds no objects anywhere but the empty directory.
        let copy = empty + "/mizarctl"
        try FileManager.default.copyItem(atPath: mizarctl, toPath: copy)
        let result = try runCommand(["env", "-u", "MIZAR_BPF_DIR", "sh", "-c", "cd \(empty) && ./mizarctl bpf probe --bpf-dir \(empty)"])
        #expect(result.status != 0)
        #expect(result.error.contains("lacks"))
        #expect(result.error.contains("native xdp on veth"))
        #expect(result.output.contains("FAILED"))
    }
}
