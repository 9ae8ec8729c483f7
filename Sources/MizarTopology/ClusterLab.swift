import Foundation
import MizarNet

/// Droplets run by transitd in cluster mode on one etcd cluster, all on one underlay: the
/// etcd members are hosts of their own (172.30.0.100, .101, ...) that run no transitd.
/// For the cluster tests, `make demo-cluster` and the bench. `teardown()` removes it all.
public final class ClusterLab: @unchecked Sendable {
    public let daemons: DaemonLab
    public let etcd: EtcdMembers

    /// Makes the droplets' and members' namespaces and starts etcd; `start` runs the daemons,
    /// each with `--etcd` (every member) and `--lease-ttl leaseTTL`.
    /// etcd keeps its data under `etcdDataRoot` when given (a tmpfs such as /dev/shm for the bench), else in the lab's directory.
    public init(droplets: [String], etcdMembers: Int = 1, leaseTTL: Int = 3, transitd: String, bpfDir: String, etcdDataRoot: String? = nil) throws {
        let prefix = uniquePrefix()
        daemons = try DaemonLab(prefix: prefix, droplets: droplets, transitd: transitd, bpfDir: bpfDir)
        do {
            var specs: [(name: String, netns: Netns?, ip: String)] = []
            for i in 0..<etcdMembers {
                let (netns, ip) = try daemons.addExternalHost("etcd\(i + 1)", index: 100 + i)
                specs.append((name: "etcd\(i + 1)", netns: netns, ip: "\(ip)"))
            }
            etcd = try EtcdMembers(specs, root: (etcdDataRoot ?? daemons.root) + "/etcd-\(prefix)", clientPort: 2379, peerPort: 2380)
        } catch {
            daemons.teardown()
            throw error
        }
        daemons.extraArguments = ["--etcd", etcd.clientURLs, "--lease-ttl", "\(leaseTTL)"]
    }

    public func host(_ name: String) -> DaemonLab.Host { daemons.host(name) }

    /// Starts transitd on every droplet named (default: all), in parallel.
    public func start(_ names: [String]? = nil) throws {
        let all = names ?? daemons.hosts.keys.sorted()
        _ = try parallel(all.count) { i in try self.daemons.start(all[i]) }
    }

    /// mizar-controller replicas by name, each running in a droplet's namespace.
    public private(set) var controllers: [String: RunningCommand] = [:]

    /// Starts a mizar-controller replica `name` in `host`'s namespace (nil: the first etcd member's) on every etcd member.
    public func startController(_ name: String, on host: String?, binary: String, leaseTTL: Int = 3, blockGrace: Int = 60) throws {
        controllers[name] = try RunningCommand([binary, "--etcd", etcd.clientURLs, "--name", name, "--lease-ttl", "\(leaseTTL)",
                                                "--block-grace", "\(blockGrace)"], in: host.map { self.host($0).netns } ?? etcd.members[0].netns)
    }

    @discardableResult
    public func stopController(_ name: String, signal: Int32 = SIGKILL) -> CommandResult? {
        controllers.removeValue(forKey: name)?.stop(with: signal)
    }

    public func teardown() {
        for controller in controllers.values { controller.stop(with: SIGKILL) }
        controllers = [:]
        daemons.teardown()
        etcd.teardown()
    }
}
