import Foundation
import CMizarABI
import MizarBPF
import MizarClient
import MizarNet

/// Droplets on an `Underlay`, each run by its own `transitd` process with private state,
/// socket and plugin directory: the product as a user runs it, for tests, the demo and the
/// bench. `teardown()` stops every daemon and removes every namespace and file it made.
public final class DaemonLab: @unchecked Sendable {
    /// A droplet namespace and the transitd serving it.
    public final class Host: @unchecked Sendable {
        public let name: String
        public let netns: Netns
        public let ip: IPv4Address
        /// The API socket, state directory and plugin directory of this host's transitd.
        public let socket: String
        public let stateDir: String
        public let pluginDir: String
        public fileprivate(set) var process: RunningCommand?

        init(name: String, netns: Netns, ip: IPv4Address, root: String) {
            self.name = name
            self.netns = netns
            self.ip = ip
            socket = root + "/transitd.sock"
            stateDir = root + "/state"
            pluginDir = root + "/plugins"
        }

        /// A client of this host's transitd.
        public var client: MizarClient { MizarClient(server: .unixSocket(socket)) }
        /// What transitd has logged so far.
        public var log: String { process?.errorOutput ?? "" }
    }

    public let underlay: Underlay
    public let transitd: String
    /// The BPF objects daemons start with (point it elsewhere to start one on other objects).
    public var bpfDir: String
    /// Where every host's files live (removed by `teardown`).
    public let root: String
    public private(set) var hosts: [String: Host] = [:]
    /// Extra flags for every transitd (`--agent-hook xdp`, ...).
    public var extraArguments: [String] = []
    /// The XDP_PASS program on the fabric's ports (frames a droplet sends with XDP_TX need one there).
    private var fabricProgram: BPFProgram?

    /// Makes the underlay and one namespace per droplet (172.30.0.1, .2, ... in order);
    /// `start` runs their daemons.
    public init(prefix: String = uniquePrefix(), droplets: [String], transitd: String, bpfDir: String) throws {
        self.transitd = transitd
        self.bpfDir = bpfDir
        root = FileManager.default.temporaryDirectory.appendingPathComponent(prefix).path
        underlay = try Underlay(prefix: prefix)
        do {
            // The fabric ports stand in for the switch: frames droplets send back out with
            // XDP_TX reach a veth peer only through an XDP program there (as in OverlayLab).
            let pass = try BPFObjectLocator(explicit: bpfDir).open(MZ_PROBE_OBJECT)
            try pass.load()
            let program = try pass.program(named: MZ_PROBE_VERDICT_PROG)
            fabricProgram = program
            for (i, name) in droplets.enumerated() {
                let (netns, ip) = try underlay.addHost(name, index: i + 1)
                try underlay.attachFabricPeer(index: i + 1, program: program)
                let host = Host(name: name, netns: netns, ip: ip, root: root + "/" + name)
                try FileManager.default.createDirectory(atPath: host.pluginDir, withIntermediateDirectories: true)
                hosts[name] = host
            }
        } catch {
            teardown()
            throw error
        }
    }

    public func host(_ name: String) -> Host { hosts[name]! }

    /// An endpoint's namespace `<prefix>-<name>` (removed by `teardown`); its path goes in `netns:`.
    public func endpointNamespace(_ name: String) throws -> Netns { try underlay.addNamespace(name) }

    /// A host on the underlay that runs no transitd (172.30.0.`index`): a client outside the overlay.
    public func addExternalHost(_ name: String, index: Int = 100) throws -> (netns: Netns, ip: IPv4Address) {
        let (netns, ip) = try underlay.addHost(name, index: index)
        if let fabricProgram { try underlay.attachFabricPeer(index: index, program: fabricProgram) }
        return (netns, ip)
    }

    /// Starts (or restarts) transitd on `name` and waits until its socket answers.
    public func start(_ name: String, timeout: TimeInterval = 30) throws {
        let host = host(name)
        if let running = host.process, running.isRunning { throw NetError(.busy, operation: "start transitd on \(name)", message: "already running") }
        let process = try RunningCommand([transitd, "--interface", "eth0", "--name", name, "--socket", host.socket, "--state-dir", host.stateDir,
                                          "--bpf-dir", bpfDir, "--plugin-dir", host.pluginDir, "--bpffs", "\(pinRoot)/\(name)",
                                          "--config", "/dev/null"] + extraArguments, in: host.netns)
        host.process = process
        let deadline = Date().addingTimeInterval(timeout)
        while !MizarClient.answers(socket: host.socket) {
            guard process.isRunning, Date() < deadline else {
                let result = process.stop(with: SIGKILL)
                throw NetError(.system, operation: "start transitd on \(name)", message: "it did not come up:\n\(result.error)")
            }
            usleep(20_000)
        }
    }

    /// Waits (at most `timeout`) until `host`'s transitd has deleted the veths its DELs retired
    /// (it deletes them in the background; alias `mizar:-retired`).
    public func awaitRetiredVeths(_ host: String, timeout: TimeInterval = 60) throws {
        let socket = try RouteSocket(in: self.host(host).netns)
        let deadline = Date().addingTimeInterval(timeout)
        while try socket.links().contains(where: { $0.alias == "mizar:-retired" }), Date() < deadline { usleep(20_000) }
    }

    /// Stops transitd on `name` with `signal` (SIGTERM: a clean stop; SIGKILL: a crash).
    @discardableResult
    public func stop(_ name: String, signal: Int32 = SIGTERM) -> CommandResult? {
        host(name).process?.stop(with: signal)
    }

    /// Stops every daemon, removes the namespaces and the files.
    public func teardown() {
        for host in hosts.values { host.process?.stop(with: SIGKILL) }
        underlay.teardown()
        try? FileManager.default.removeItem(atPath: root)
        if FileManager.default.fileExists(atPath: pinRoot) { try? BPFPinDirectory(path: pinRoot).removeAll() }
    }

    /// Where the daemons pin (one directory per host below it).
    public var pinRoot: String { "/sys/fs/bpf/\(underlay.prefix)" }

    /// The pins of `host`'s droplet (`eth0`).
    public func pins(_ host: String) -> String { "\(pinRoot)/\(host)/eth0" }
}
