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


/// The frames of a classic pcap file (tcpdump -w), microsecond or nanosecond format.
public func readPcap(_ path: String) throws -> [[UInt8]] {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    guard data.count >= 24 else { return [] }
    let little = data[0] == 0xd4 || data[0] == 0x4d
    func u32(_ i: Int) -> Int {
        let b = data[i..<i + 4].map(Int.init)
        return little ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[3] | b[2] << 8 | b[1] << 16 | b[0] << 24
    }
    var frames: [[UInt8]] = [], offset = 24
    while offset + 16 <= data.count {
        let captured = u32(offset + 8)
        guard offset + 16 + captured <= data.count else { break }
        frames.append(Array(data[offset + 16..<offset + 16 + captured]))
        offset += 16 + captured
    }
    return frames
}

/// Writes Ethernet frames as a classic little-endian pcap file, for tools to decode.
public func writePcap(_ frames: [[UInt8]], to path: String) throws {
    func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    var out = le32(0xa1b2_c3d4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(65535) + le32(1)
    for (i, frame) in frames.enumerated() {
        out += le32(UInt32(i)) + le32(0) + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
    }
    try Data(out).write(to: URL(fileURLWithPath: path))
}

/// A network namespace and a bpffs pin directory under one unique name, for a droplet whose
/// tables outlive it (restarts, upgrades); `remove()` takes both away (call it in `defer`).
public struct PinnedNetns {
    public let prefix: String
    public let netns: Netns
    public let pins: BPFPinDirectory

    public init() throws {
        prefix = uniquePrefix()
        netns = try Netns.create(named: prefix)
        do { pins = try BPFPinDirectory(path: "/sys/fs/bpf/" + prefix) } catch {
            _ = try? Netns.delete(named: prefix)
            throw error
        }
    }

    public func remove() {
        try? pins.removeAll()
        _ = try? Netns.delete(named: prefix)
    }
}
