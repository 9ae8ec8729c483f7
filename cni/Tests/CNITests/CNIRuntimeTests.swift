import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// Real runtimes run `mizar`: each test starts its own containerd (private root, state and
/// socket) and removes it.
@Suite("CNI with real runtimes", .serialized)
struct CNIRuntimeTests {
    /// A CNI configuration directory and plugin directory for the runtime: `mizar` (this
    /// build's) and Debian's plugins.
    static func cniDirs(_ bed: CNIBed) throws -> (conf: String, bin: String) {
        let conf = bed.lab.root + "/net.d", bin = bed.lab.root + "/cni-bin"
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Binaries.mizar, toPath: bin + "/mizar")
        for plugin in ["loopback", "host-local", "bandwidth", "portmap", "tuning"] {
            try FileManager.default.createSymbolicLink(atPath: bin + "/" + plugin, withDestinationPath: CNIBed.debianPlugins + "/" + plugin)
        }
        try #"{"cniVersion":"1.0.0","name":"mizar","plugins":[{"type":"mizar","socket":"\#(bed.socket)","capabilities":{"ips":true,"mac":true}}]}"#
            .write(toFile: conf + "/10-mizar.conflist", atomically: true, encoding: .utf8)
        return (conf, bin)
    }

    /// `ctr run --cni`: the container gets its address from `mizar`, reaches a peer across
    /// the overlay, and its endpoint is gone when `--rm` removes it.
    @Test func ctrRunWithCNI() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let dirs = try Self.cniDirs(bed)
        let peer = try bed.container("peer")
        let peerAdd = try bed.cni("ADD", container: "peer", netns: peer.path, config: bed.config())
        let peerIP = try #require(CNIBed.address(peerAdd.json), "\(peerAdd)")
        let containerd = try Containerd(dir: bed.lab.root + "/containerd")
        defer { containerd.stop() }

        let run = try containerd.runWithCNI(confDir: dirs.conf, binDir: dirs.bin,
                                            ["--rm", Containerd.image, "ctr-c1", "sh", "-c", "ip -4 addr show eth0 && ping -c 3 -W 2 \(peerIP)"])
        #expect(run.status == 0, "\(run.output)\(run.error)")
        #expect(run.output.contains("inet 10.20.0.") && run.output.contains("mtu 1434"), "\(run.output)")
        #expect(run.output.contains("3 packets received"), "\(run.output)")
        // --rm ran DEL: only the peer is left.
        #expect(try await bed.endpoints().count == 1)
        #expect(try bed.endpointVeths().count == 1)
    }
}
