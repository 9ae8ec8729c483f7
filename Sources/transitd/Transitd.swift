import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import MizarAPI
import MizarClient
import MizarDaemon
import ServiceLifecycle

/// The per-host daemon: owns the droplet's data plane and serves the API on a Unix socket.
@main
struct Transitd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transitd",
        abstract: "The Mizar per-host daemon: owns the data plane of one droplet and serves its API.",
        discussion: """
            Runs in the foreground. Flags override the configuration file (YAML, same names). \
            On the first start it creates VPC vpc0 (VNI 1) and network net0 (10.20.0.0/16) with this droplet \
            as divider and bouncer. SIGTERM or SIGINT stop it; see docs/transitd.md. \
            With --etcd, the desired state is the cluster's, kept in etcd and shared by every transitd \
            pointed at it (docs/cluster.md); the local store is then a cache for starts without etcd.
            """,
        version: Daemon.version)

    @Option(name: .long, help: "The substrate interface (the droplet), e.g. eth0.")
    var interface: String?
    @Option(name: .long, help: "This droplet's name among droplets (default: the host name).")
    var name: String?
    @Option(name: .long, help: "Configuration file (default \(DaemonConfig.defaultPath); missing is fine).")
    var config: String?
    @Option(name: .long, help: "The API's Unix socket (default /run/mizar/transitd.sock).")
    var socket: String?
    @Option(name: .long, help: "Directory of the desired-state database (default /var/lib/mizar).")
    var stateDir: String?
    @Option(name: .long, help: "Base of the pins on bpffs (default /sys/fs/bpf/mizar).")
    var bpffs: String?
    @Option(name: .long, help: "Directory of the BPF objects (default: the installed ones, then build/bpf).")
    var bpfDir: String?
    @Option(name: .long, help: "Directory of third-party plugins (default /etc/mizar/plugins).")
    var pluginDir: String?
    @Option(name: .long, help: "Where endpoints' agents run unless they say: tc or xdp.")
    var agentHook: AgentHook?
    @Flag(name: .long, help: "On exit, unplug every endpoint and detach the programs (the store is kept).")
    var cleanup = false
    @Option(name: .long, help: "Also serve the API on HOST:PORT for remote management: always TLS, always a bearer token (off by default).")
    var listen: String?
    @Option(name: .long, help: "File holding the bearer token of --listen (at least 16 characters).")
    var tokenFile: String?
    @Option(name: .long, help: "PEM certificate chain of --listen.")
    var tlsCert: String?
    @Option(name: .long, help: "PEM private key of --listen.")
    var tlsKey: String?
    @Option(name: .long, parsing: .singleValue,
            help: "Cluster mode: an etcd member's client URL (http:// or https://); repeat it or separate with commas (docs/cluster.md).")
    var etcd: [String] = []
    @Option(name: .long, help: "PEM CA file trusted for https etcd members.")
    var etcdCA: String?
    @Option(name: .long, help: "PEM client certificate for etcd members that ask for one.")
    var etcdCert: String?
    @Option(name: .long, help: "PEM private key of --etcd-cert.")
    var etcdKey: String?
    @Option(name: .long, help: "Key prefix of the cluster's objects in etcd (default /mizar/v1/).")
    var etcdPrefix: String?
    @Option(name: .long, help: "Seconds this droplet's lease in etcd lives unrenewed (default 10).")
    var leaseTTL: Int?
    @Option(name: .long, help: "Cluster mode: UDP port on the droplet's address where other droplets push changes to its tables, signed (default 7947; 0: off).")
    var peerPort: Int?
    @Option(name: .long, help: "Seconds a learned direct path is used unrefreshed (default 30); 0 sends everything through bouncers.")
    var directPathMaxAge: Int?
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        var settings: DaemonConfig
        do { settings = try DaemonConfig.load(config) } catch { throw ValidationError("\(error)") }
        settings.interface = interface ?? settings.interface
        settings.name = name ?? settings.name
        settings.socket = socket ?? settings.socket
        settings.stateDir = stateDir ?? settings.stateDir
        settings.bpffs = bpffs ?? settings.bpffs
        settings.bpfDir = bpfDir ?? settings.bpfDir
        settings.pluginDir = pluginDir ?? settings.pluginDir
        settings.agentHook = agentHook ?? settings.agentHook
        settings.cleanup = cleanup || settings.cleanup
        settings.listen = listen ?? settings.listen
        settings.tokenFile = tokenFile ?? settings.tokenFile
        settings.tlsCert = tlsCert ?? settings.tlsCert
        settings.tlsKey = tlsKey ?? settings.tlsKey
        if !etcd.isEmpty { settings.etcd = etcd }
        settings.etcdCA = etcdCA ?? settings.etcdCA
        settings.etcdCert = etcdCert ?? settings.etcdCert
        settings.etcdKey = etcdKey ?? settings.etcdKey
        settings.etcdPrefix = etcdPrefix ?? settings.etcdPrefix
        settings.leaseTTL = leaseTTL ?? settings.leaseTTL
        settings.peerPort = peerPort ?? settings.peerPort
        settings.directPathMaxAge = directPathMaxAge ?? settings.directPathMaxAge
        guard (settings.etcdCert == nil) == (settings.etcdKey == nil) else { throw ValidationError("give --etcd-cert and --etcd-key together") }
        var remote: RemoteAccess?
        if let address = settings.listen {
            do { remote = try RemoteAccess(listen: address, tokenFile: settings.tokenFile, certificate: settings.tlsCert, key: settings.tlsKey) } catch {
                throw ValidationError("\(error)")
            }
        }
        guard settings.interface != nil else { throw ValidationError("give --interface IFNAME (or `interface:` in \(config ?? DaemonConfig.defaultPath))") }

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "transitd")
        // Files made from here on (socket, database) are the owner's only.
        umask(0o077)
        let socketPath = settings.socket
        let daemon: Daemon
        do {
            // Before anything is touched: another transitd on this socket or state refuses this one.
            try prepareSocket(socketPath)
            daemon = try Daemon(config: settings, logger: logger)
            try await daemon.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }

        let metrics = daemon.metrics  // one set for both listeners: /metrics counts every request
        let app = Application(router: makeAPIRouter(daemon: daemon, metrics: metrics),
                              configuration: .init(address: .unixDomainSocket(path: settings.socket), serverName: "transitd"),
                              onServerRunning: { _ in
                                  // Root only: the API can rewire every endpoint of the host.
                                  chmod(socketPath, 0o600)
                                  logger.info("API listening", metadata: ["socket": "\(socketPath)"])
                              },
                              logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app), .init(service: RetryService(daemon: daemon))]
        if settings.etcd?.isEmpty == false { services.append(.init(service: ClusterService(daemon: daemon))) }
        do {
            // First in the group, so last to stop (a group stops in reverse): pushes made while the API drains still go out.
            if let socket = try await daemon.openPeerSocket() { services.insert(.init(service: PeerSocketService(socket: socket)), at: 0) }
        } catch {
            logger.critical("cannot open the peer socket", metadata: ["error": "\(error)"])
            await daemon.shutdown()
            throw ExitCode.failure
        }
        if let remote {
            let tcp = Application(router: makeAPIRouter(daemon: daemon, remote: remote, metrics: metrics), server: try .tls(.http1(), tlsConfiguration: remote.tls),
                                  configuration: .init(address: .hostname(remote.host, port: remote.port), serverName: "transitd"),
                                  onServerRunning: { _ in logger.info("remote API listening (TLS, bearer token)", metadata: ["address": "\(remote.host):\(remote.port)"]) },
                                  logger: logger)
            services.append(.init(service: tcp))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await daemon.shutdown()
        unlink(settings.socket)
        logger.info("transitd stopped", metadata: ["cleanup": "\(settings.cleanup)"])
    }

    /// Makes the socket's directory and removes a socket left by a process that is gone;
    /// refuses to start beside a transitd that still answers there.
    private func prepareSocket(_ path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard !MizarClient.answers(socket: path) else { throw APIError(.conflict, "another transitd answers on \(path)") }
        unlink(path)
    }
}

extension AgentHook: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Every 10 seconds: retries what the data plane could not take at start, and sweeps
/// plugin state that has expired (idle NAT translations).
struct RetryService: Service {
    let daemon: Daemon

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            // Woken at once by a SIGTERM, not after the rest of its sleep.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
            if Task.isShuttingDownGracefully { return }
            await daemon.retryFailures()
            await daemon.sweepPluginState()
        }
    }
}

/// Cluster mode: the watch of etcd and the renewal of this droplet's lease, until transitd stops.
struct ClusterService: Service {
    let daemon: Daemon

    func run() async throws {
        await cancelWhenGracefulShutdown { await daemon.runCluster() }
    }
}

/// Keeps the peer socket open until shutdown.
struct PeerSocketService: Service {
    let socket: PeerSocket

    func run() async throws {
        try? await gracefulShutdown()
        await socket.close()
    }
}
