import Foundation
import Logging
import MizarAPI
import MizarCluster

/// mizar-controller: places bouncers and dividers over the live droplets, hands a bouncer
/// role over only once the new bouncer holds the network's endpoint table, and frees the
/// address blocks of droplets gone for good. Several replicas run; one leads, elected on an
/// etcd lease, and every write it makes holds only while it still leads (the leader key is
/// compared in each transaction), so a deposed leader cannot write.
public actor Controller {
    public struct Settings: Sendable {
        public var name: String
        public var leaseTTL: Int = 5
        /// How long an empty block of a droplet that left stays claimed (it may come back).
        public var blockGrace: Duration = .seconds(60)
        /// How long a new bouncer may take to confirm its table before it is named anyway.
        public var handoverTimeout: Duration = .seconds(5)
        public init(name: String) { self.name = name }
    }

    let client: EtcdClient
    let keys: ClusterKeys
    let settings: Settings
    let logger: Logger
    var mirror: ClusterMirror
    /// This replica's lease and leader-key value while it leads (or campaigns).
    var lease: Int64 = 0
    var identity: String?
    public private(set) var leading = false
    /// Handovers under way: network → when its pending key was written.
    var handovers: [String: ContinuousClock.Instant] = [:]
    /// Placements written since start (roles moved), for the log and tests.
    public private(set) var moves = 0

    public init(client: EtcdClient, keys: ClusterKeys, settings: Settings, logger: Logger) {
        self.client = client
        self.keys = keys
        self.settings = settings
        self.logger = logger
        mirror = ClusterMirror(keys: keys)
    }

    /// Runs until cancelled: the mirror, the election and, while leading, the work.
    public func run() async {
        let follower = EtcdFollower(client: client, prefix: keys.prefix)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await follower.run(after: nil, onError: { error in self.logger.warning("etcd", metadata: ["error": "\(error)"]) }) { change in
                    await self.take(change)
                }
            }
            group.addTask { await self.elect() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    await self.workIfLeading()
                }
            }
            await group.waitForAll()
        }
    }

    /// Steps down (a clean stop): the lease goes, a standby takes over at once.
    public func resign() async {
        guard lease != 0 else { return }
        try? await client.revoke(lease)
        leading = false
    }

    private func take(_ change: EtcdChange) {
        switch change {
        case .snapshot(let kvs, let revision): mirror.reset(kvs, revision: revision)
        case .events(let events, let revision):
            for event in events {
                if let (droplet, live) = mirror.note(event.kv.keyString, event.kind == .delete ? nil : event.kv.value, revision: event.kv.modRevision) {
                    logger.notice(live ? "droplet joined" : "droplet lost: its roles are re-placed", metadata: ["droplet": "\(droplet)"])
                }
            }
            mirror.revision = revision
        }
    }

    // MARK: Election

    /// Campaigns whenever no controller leads; while leading, renews the lease (every third
    /// of its TTL) and steps down when it cannot.
    private func elect() async {
        let period = Duration.milliseconds(max(300, settings.leaseTTL * 1000 / 3))
        var lastRenewal = ContinuousClock.now
        while !Task.isCancelled {
            if leading {
                try? await Task.sleep(for: period)
                do {
                    if try await client.keepAlive(lease) > 0 { lastRenewal = .now } else { stepDown("its lease expired") }
                } catch {
                    if ContinuousClock.now - lastRenewal > .seconds(settings.leaseTTL) { stepDown("etcd unreachable past the lease: \(error)") }
                }
                continue
            }
            try? await Task.sleep(for: .milliseconds(100))
            guard mirror.revision > 0, mirror.leader == nil else { continue }
            do {
                let lease = try await client.grantLease(ttl: settings.leaseTTL)
                let identity = "\(settings.name)/\(lease)"
                if try await client.txn([.modRevision(keys.leader, equals: 0)], [.put(keys.leader, Array(identity.utf8), lease: lease)]).succeeded {
                    (self.lease, self.identity, leading, lastRenewal) = (lease, identity, true, .now)
                    handovers = [:]
                    logger.notice("leading", metadata: ["controller": "\(identity)"])
                } else {
                    try? await client.revoke(lease)
                }
            } catch {
                logger.warning("campaign failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func stepDown(_ why: String) {
        logger.warning("no longer leading", metadata: ["why": "\(why)"])
        leading = false
        lease = 0
        identity = nil
    }

    // MARK: Work

    private func workIfLeading() async {
        guard leading, let identity, mirror.leader == identity else { return }
        let live = mirror.liveDroplets
        guard !live.isEmpty else { return }
        for vpc in mirror.vpcs.values.sorted(by: { $0.name < $1.name }) { await place(vpc, live: live, identity) }
        for network in mirror.networks.values.sorted(by: { $0.name < $1.name }) { await place(network, live: live, identity) }
        await collectBlocks(identity)
    }

    /// A placed VPC's dividers become the heaviest live droplets for it.
    private func place(_ vpc: VPC, live: Set<String>, _ identity: String) async {
        guard let count = vpc.spec.dividerCount else { return }
        let target = Placement.choose(count, of: live, for: Placement.role(vpc: vpc.name))
        guard !target.isEmpty, Set(target) != Set(vpc.spec.dividers ?? []) else { return }
        var placed = vpc
        placed.spec.dividers = target
        await write(.vpc(placed), identity, moved: Set(target).symmetricDifference(vpc.spec.dividers ?? []).count)
    }

    /// A placed network's bouncers become the heaviest live droplets for it, in two steps
    /// when one is new: the pending key makes it fill its endpoint table, its progress key
    /// says it has, and only then does the network name it (agents and dividers send to it).
    private func place(_ network: Network, live: Set<String>, _ identity: String) async {
        guard let count = network.spec.bouncerCount else { return }
        let current = network.spec.bouncers ?? [], pendingKey = keys.pending(network.name)
        let target = Placement.choose(count, of: live, for: Placement.role(network: network.name))
        guard !target.isEmpty else { return }
        let added = Set(target).subtracting(current)
        if Set(target) == Set(current) {
            if mirror.pending[network.name] != nil { await transact([.delete(pendingKey)], identity) }
            handovers[network.name] = nil
            return
        }
        if !added.isEmpty {
            guard mirror.pending[network.name] == added, let written = mirror.revisions[pendingKey] else {
                if await transact([.put(pendingKey, Array(try! JSONEncoder().encode(added.sorted())))], identity) {
                    handovers[network.name] = .now
                }
                return
            }
            let waiting = added.filter { live.contains($0) && (mirror.progress[$0] ?? 0) < written }
            if !waiting.isEmpty {
                guard let since = handovers[network.name], ContinuousClock.now - since > settings.handoverTimeout else { return }
                logger.warning("new bouncers did not confirm their tables in time; naming them anyway",
                               metadata: ["network": "\(network.name)", "bouncers": "\(waiting.sorted())"])
            }
        }
        var placed = network
        placed.spec.bouncers = target
        let moved = Set(target).symmetricDifference(current).count
        if await write(.network(placed), identity, moved: moved, also: mirror.pending[network.name] == nil ? [] : [.delete(pendingKey)]) {
            handovers[network.name] = nil
            logger.info("bouncers placed", metadata: ["network": "\(network.name)", "bouncers": "\(target)", "was": "\(current)"])
        }
    }

    /// Frees blocks that hold no endpoint and whose droplet is gone: deleted, or not live for the grace time.
    private func collectBlocks(_ identity: String) async {
        var operations: [EtcdOperation] = []
        for (network, blocks) in mirror.blocks {
            guard let cidr = mirror.networks[network]?.spec.cidr else {
                operations += blocks.keys.map { .delete(keys.block(network: network, base: $0)) }  // the network is gone
                continue
            }
            let size = AddressBlocks.blockSize(of: cidr), used = Set((mirror.addresses[network] ?? [:]).values.map { $0 & ~(size - 1) })
            for (base, owner) in blocks where !used.contains(base) {
                let gone = !mirror.droplets.contains(owner)
                    || (!mirror.live.contains(owner) && mirror.lostAt[owner].map { ContinuousClock.now - $0 > settings.blockGrace } ?? true)
                if gone { operations.append(.delete(keys.block(network: network, base: base))) }
            }
        }
        // In transactions of at most 60 deletes (etcd takes 128 operations and as many compares).
        for start in stride(from: 0, to: operations.count, by: 60) {
            let chunk = Array(operations[start..<min(start + 60, operations.count)])
            if await transact(chunk, identity) { logger.info("address blocks freed", metadata: ["blocks": "\(chunk.count)"]) }
        }
    }

    // MARK: Writes

    @discardableResult
    private func write(_ resource: AnyResource, _ identity: String, moved: Int, also: [EtcdOperation] = []) async -> Bool {
        guard let value = try? ClusterKeys.encode(resource) else { return false }
        let done = await transact([.put(keys.resource(resource.reference), value)] + also, identity)
        if done { moves += moved }
        return done
    }

    /// One transaction that holds only while this replica leads and no key it writes changed
    /// since the mirror saw it.
    @discardableResult
    private func transact(_ operations: [EtcdOperation], _ identity: String) async -> Bool {
        var compares: [EtcdCompare] = [.value(keys.leader, equals: Array(identity.utf8))]
        for operation in operations {
            switch operation {
            case .put(let key, _, _), .delete(let key): compares.append(.modRevision(key, equals: mirror.revisions[key] ?? 0))
            }
        }
        do {
            let done = try await client.txn(compares, operations)
            if done.succeeded {
                for operation in operations {
                    switch operation {
                    case .put(let key, let value, _): mirror.note(key, value, revision: done.revision)
                    case .delete(let key): mirror.note(key, nil, revision: done.revision)
                    }
                }
            }
            return done.succeeded
        } catch {
            logger.warning("write failed", metadata: ["error": "\(error)"])
            return false
        }
    }
}
