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
