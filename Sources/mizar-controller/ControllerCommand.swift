import ArgumentParser
import Foundation
import Logging
import MizarCluster
import MizarController
import ServiceLifecycle

/// The cluster's controller: places bouncers and dividers, hands roles over, frees address
/// blocks. Run several; one leads.
@main
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-controller",
        abstract: "Mizar's cluster controller: places bouncers and dividers over the live droplets and frees the address blocks of droplets gone.",
        discussion: """
            Runs in the foreground beside transitd's in cluster mode, on the same etcd (docs/cluster.md). Run two or three \
            replicas: one leads (elected on an etcd lease); a killed leader is replaced within --lease-ttl. SIGTERM or SIGINT \
            hand the lead over at once.
            """)

    @Option(name: .long, parsing: .singleValue, help: "An etcd member's client URL; repeat it or separate with commas.")
    var etcd: [String] = []
    @Option(name: .long, help: "This replica's name (default: the host name and the process ID).")
    var name: String?
    @Option(name: .long, help: "Key prefix of the cluster's objects in etcd.")
    var etcdPrefix = "/mizar/v1/"
    @Option(name: .long, help: "PEM CA file trusted for https etcd members.")
    var etcdCA: String?
    @Option(name: .long, help: "PEM client certificate for etcd members that ask for one.")
    var etcdCert: String?
    @Option(name: .long, help: "PEM private key of --etcd-cert.")
    var etcdKey: String?
    @Option(name: .long, help: "Seconds the leader's lease lives unrenewed: how soon a standby takes over a dead leader.")
    var leaseTTL = 5
    @Option(name: .long, help: "Seconds an empty address block stays with a droplet that left (it may come back).")
    var blockGrace = 60
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard !etcd.isEmpty else { throw ValidationError("give --etcd URL (every member, or several --etcd)") }
        guard (2...3600).contains(leaseTTL) else { throw ValidationError("--lease-ttl: 2 to 3600 seconds") }
        guard blockGrace >= 0 else { throw ValidationError("--block-grace: 0 or more seconds") }
        guard (etcdCert == nil) == (etcdKey == nil) else { throw ValidationError("give --etcd-cert and --etcd-key together") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "mizar-controller")
        let client: EtcdClient
        do {
            client = try EtcdClient(endpoints: etcd.flatMap { $0.split(separator: ",").map(String.init) }, caFile: etcdCA, certificate: etcdCert, key: etcdKey)
        } catch {
            throw ValidationError("\(error)")
        }
        var settings = Controller.Settings(name: name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())")
        settings.leaseTTL = leaseTTL
        settings.blockGrace = .seconds(blockGrace)
        let controller = Controller(client: client, keys: ClusterKeys(prefix: etcdPrefix), settings: settings, logger: logger)
        logger.info("mizar-controller started", metadata: ["name": "\(settings.name)", "etcd": "\(client.endpoints)"])
        let group = ServiceGroup(configuration: .init(services: [.init(service: ControllerService(controller: controller))],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await controller.resign()
        logger.info("mizar-controller stopped")
    }
}

struct ControllerService: Service {
    let controller: Controller
    func run() async throws { await cancelWhenGracefulShutdown { await controller.run() } }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
