import Foundation
import MizarTestSupport

/// podman with its CNI network backend and state of the test's own: storage, run directory,
/// network configurations and containers.conf under `dir`, removed by `stop()`.
final class Podman {
    let dir: String

    /// `confDir` holds the conflists (the network `mizar` is the one named so), `binDirs` the plugins.
    init(dir: String, confDir: String, binDirs: [String]) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // nofile and nproc below this machine's hard limits (podman's defaults exceed them).
        let conf = """
            [containers]
            default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
            [network]
            network_backend = "cni"
            cni_plugin_dirs = [\(binDirs.map { "\"\($0)\"" }.joined(separator: ", "))]
            network_config_dir = "\(confDir)"
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            runtime = "runc"
            """
        try conf.write(toFile: dir + "/containers.conf", atomically: true, encoding: .utf8)
        self.confDir = confDir
        let loaded = try podman(["load", "-i", try Containerd.buildImage(in: dir + "/image")])
        guard loaded.status == 0 else { throw NetError(.system, operation: "podman load", message: loaded.output + loaded.error) }
    }

    private let confDir: String

    func podman(_ arguments: [String], timeout: TimeInterval = 120) throws -> CommandResult {
        try runCommand(["podman", "--root", dir + "/root", "--runroot", dir + "/run", "--storage-driver", "vfs", "--network-config-dir", confDir] + arguments,
                       environment: ["CONTAINERS_CONF": dir + "/containers.conf"], timeout: timeout)
    }

    /// Removes every container, then the files (unmounting what is left under `dir`).
    func stop() {
        _ = try? podman(["rm", "--all", "--force", "--time", "0"])
        unmountAll(under: dir)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
