import Foundation
import MizarBPF
@_exported import MizarNet
@_exported import MizarTopology

/// Paths of the source tree the tests run in.
public enum TestPaths {
    /// The package root (three levels above this file).
    public static let root: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    /// Where `make bpf` puts the objects.
    public static let bpfDir = root + "/build/bpf"
    public static let locator = BPFObjectLocator(explicit: bpfDir)

    /// A test-only object from `Tests/bpf`.
    public static func testObject(_ name: String) throws -> BPFObject {
        try BPFObject(path: bpfDir + "/tests/" + name)
    }
}

