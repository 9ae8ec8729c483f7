import Foundation
import MizarNet

/// A containerd of a test's or benchmark's own (root, state and socket under `dir`, the CRI
/// service on or off), a busybox image built from Debian's busybox-static, `ctr`, and the CRI
/// client of `cni/cri/cri.py`. Stopped, its shims killed and its mounts removed by `stop()`.
/// (Lab scaffolding: tools, not product code.)
public final class Containerd: @unchecked Sendable {
    public let dir: String
    public var socket: String { dir + "/containerd.sock" }
    /// The containerd namespace images and containers go in: CRI's is `k8s.io`.
    public let namespace: String
    private var process: RunningCommand?
    /// The CRI client script (`cni/cri/cri.py` of the source tree).
    private let criClient: String?
    /// The image every test container runs: busybox, `sleep 3600` by default.
    public static let image = "mizar.test/busybox:1"

    /// `cri`: the CRI section to add (nil: the CRI service off, as `ctr` needs no more);
    /// `criClient`: the path of `cni/cri/cri.py`, for `cri(_:)`; `netns`: where containerd
    /// (and so the CNI plugins it runs) lives, this process's namespace when nil.
    public init(dir: String, cri: String? = nil, criClient: String? = nil, in netns: Netns? = nil) throws {
        self.dir = dir
        self.criClient = criClient
        namespace = cri == nil ? "mizar-test" : "k8s.io"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = """
            version = 2
            root = "\(dir)/root"
            state = "\(dir)/state"
            \(cri == nil ? #"disabled_plugins = ["io.containerd.grpc.v1.cri"]"# : "")
            [grpc]
              address = "\(socket)"
            [ttrpc]
              address = "\(socket).ttrpc"
            \(cri ?? "")
            """
        try config.write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        process = try RunningCommand(["containerd", "--config", dir + "/config.toml"], in: netns)
        let deadline = Date().addingTimeInterval(30)
        while try runCommand(["ctr", "-a", socket, "version"]).status != 0 {
            guard process?.isRunning == true, Date() < deadline else {
                let log = stop()
                throw NetError(.system, operation: "containerd lab", message: "containerd did not start: \(log)")
            }
            usleep(50_000)
        }
        let imported = try ctr(["images", "import", try Containerd.buildImage(in: dir + "/image")])
        guard imported.status == 0 else { throw NetError(.system, operation: "containerd lab", message: "ctr images import: \(imported.output)\(imported.error)") }
    }

    /// Runs `ctr` against this containerd, in its namespace.
    public func ctr(_ arguments: [String], timeout: TimeInterval = 60) throws -> CommandResult {
        try runCommand(["ctr", "-a", socket, "-n", namespace] + arguments, timeout: timeout)
    }

    /// `ctr run --cni`: ctr reads /etc/cni/net.d and /opt/cni/bin, so it runs in a mount
    /// namespace of its own where `confDir` and `binDir` are mounted there (the host's stay untouched).
    public func runWithCNI(confDir: String, binDir: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> CommandResult {
        let ctr = (["ctr", "-a", socket, "-n", namespace, "run", "--cni"] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let script = "mount -t tmpfs tmpfs /opt && mkdir -p /opt/cni/bin /etc/cni/net.d && mount --bind '\(binDir)' /opt/cni/bin"
            + " && mount -t tmpfs tmpfs /etc/cni && mkdir -p /etc/cni/net.d && mount --bind '\(confDir)' /etc/cni/net.d && exec \(ctr)"
        return try runCommand(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], timeout: timeout)
    }

    /// The CRI section for a containerd whose pods use the CNI configuration in `confDir`
    /// and plugins in `binDir`; the sandbox ("pause") image is the busybox one, which sleeps.
    public static func criSection(confDir: String, binDir: String) -> String {
        """
        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "\(image)"
          restrict_oom_score_adj = true
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "\(binDir)"
            conf_dir = "\(confDir)"
            max_conf_num = 1
        """
    }

    /// Runs the CRI client (cni/Tests/cri/cri.py, Debian's python3-grpcio) against this containerd.
    public func cri(_ arguments: [String], timeout: TimeInterval = 120) throws -> CommandResult {
        guard let criClient else { throw NetError(.invalidArgument, operation: "CRI call", message: "this containerd lab has no CRI client") }
        return try runCommand(["/usr/bin/python3", criClient, socket] + arguments, timeout: timeout)
    }

    /// A pod sandbox as kubelet starts one (RunPodSandbox), and what PodSandboxStatus says of it.
    public struct Pod: Sendable {
        public var id: String
        public var ip: String
        public var netns: String
        public var state: String
    }

    /// The network namespaces of the pods run here (CRI makes them in /var/run/netns): removed
    /// by `stop()` should a test end before it removes its pods.
    private var podNamespaces: [String] = []

    public func runPod(_ name: String, namespace: String) throws -> Pod {
        let run = try cri(["run", name, namespace])
        guard run.status == 0, let id = run.output.split(separator: " ").first.map(String.init) else {
            throw NetError(.system, operation: "containerd lab", message: "RunPodSandbox \(name): \(run.output)\(run.error)")
        }
        let status = try cri(["status", id])
        guard let json = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any] else {
            throw NetError(.system, operation: "containerd lab", message: "PodSandboxStatus \(id): \(status.output)\(status.error)")
        }
        let pod = Pod(id: id, ip: json["ip"] as? String ?? "", netns: json["netns"] as? String ?? "", state: json["state"] as? String ?? "")
        if !pod.netns.isEmpty { podNamespaces.append(pod.netns) }
        return pod
    }

    /// StopPodSandbox then RemovePodSandbox (kubelet's order): DEL runs on the stop.
    public func removePod(_ pod: Pod) throws {
        for step in ["stop", "remove"] {
            let result = try cri([step, pod.id])
            guard result.status == 0 else { throw NetError(.system, operation: "containerd lab", message: "\(step) \(pod.id): \(result.output)\(result.error)") }
        }
    }

    /// Stops containerd, kills the shims it left, unmounts and removes its files; returns its log.
    @discardableResult
    public func stop() -> String {
        let log = process?.stop(with: SIGTERM).error ?? ""
        process = nil
        if let shims = try? runCommand(["pgrep", "-f", "containerd-shim.*\(socket)"]) {
            for pid in shims.output.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        unmountAll(under: dir)
        for path in podNamespaces where FileManager.default.fileExists(atPath: path) {
            _ = umount2(path, Int32(MNT_DETACH))
            unlink(path)
        }
        try? FileManager.default.removeItem(atPath: dir)
        return log
    }

    /// An OCI image archive of busybox (Debian's busybox-static) whose command sleeps: the
    /// test containers' and the CRI sandbox's image. Returns its path.
    public static func buildImage(in dir: String) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/rootfs/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/layout/blobs/sha256", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "/bin/busybox", toPath: dir + "/rootfs/bin/busybox")
        for applet in ["sh", "sleep", "ping", "ip", "cat", "ifconfig", "nc", "wget"] {
            try fm.createSymbolicLink(atPath: dir + "/rootfs/bin/" + applet, withDestinationPath: "busybox")
        }
        guard try runCommand(["tar", "-C", dir + "/rootfs", "-cf", dir + "/layer.tar", "."]).status == 0 else { throw NetError(.system, operation: "containerd lab", message: "tar of the rootfs failed") }
        func blob(_ data: Data) throws -> (digest: String, size: Int) {
            let path = dir + "/blob"
            try data.write(to: URL(fileURLWithPath: path))
            let hex = String(try runCommand(["sha256sum", path]).output.prefix(64))
            try fm.moveItem(atPath: path, toPath: dir + "/layout/blobs/sha256/" + hex)
            return ("sha256:" + hex, data.count)
        }
        let layer = try blob(try Data(contentsOf: URL(fileURLWithPath: dir + "/layer.tar")))
        let config = try blob(Data(#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sleep","3600"]},"rootfs":{"type":"layers","diff_ids":["\#(layer.digest)"]}}"#.utf8))
        let manifest = try blob(Data(#"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(config.digest)","size":\#(config.size)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(layer.digest)","size":\#(layer.size)}]}
            """#.utf8))
        try #"""
            {"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifest.digest)","size":\#(manifest.size),"annotations":{"io.containerd.image.name":"\#(image)","org.opencontainers.image.ref.name":"1"}}]}
            """#.write(toFile: dir + "/layout/index.json", atomically: true, encoding: .utf8)
        try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: dir + "/layout/oci-layout", atomically: true, encoding: .utf8)
        guard try runCommand(["tar", "-C", dir + "/layout", "-cf", dir + "/image.tar", "."]).status == 0 else { throw NetError(.system, operation: "containerd lab", message: "tar of the image failed") }
        return dir + "/image.tar"
    }
}
