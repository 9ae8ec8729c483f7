import Foundation
import Logging
import MizarAPI
import MizarCluster
import MizarNet

/// transitd's way to the cluster store: the etcd client and the key layout.
final class ClusterLink: Sendable {
    let client: EtcdClient
    let keys: ClusterKeys
    let leaseTTL: Int
    /// Where droplets take pushes from each other (0: no pushes, progress keys only).
    let peerPort: Int
    /// The most keys one request may write: etcd's default --max-txn-ops.
    static let maxOperations = 128
    /// Resources per request that always fit: an endpoint writes at most five keys (itself, its
    /// old and new address, a block claimed and one released).
    static let maxResources = 25

    /// Nil when `config` names no etcd (the local store alone).
    init?(config: DaemonConfig) throws {
        guard let urls = config.etcd?.flatMap({ $0.split(separator: ",").map(String.init) }).filter({ !$0.isEmpty }), !urls.isEmpty else { return nil }
        guard (2...3600).contains(config.leaseTTL) else { throw APIError(.invalid, "leaseTTL \(config.leaseTTL): give 2 to 3600 seconds") }
        do {
            client = try EtcdClient(endpoints: urls, caFile: config.etcdCA, certificate: config.etcdCert, key: config.etcdKey)
        } catch {
            throw APIError(.invalid, "\(error)")
        }
        keys = ClusterKeys(prefix: config.etcdPrefix)
        leaseTTL = config.leaseTTL
        guard (0...65535).contains(config.peerPort) else { throw APIError(.invalid, "peerPort \(config.peerPort): give 0 to 65535") }
        peerPort = config.peerPort
    }
}

/// What this droplet has seen of etcd.
struct ClusterState {
    /// The revision of the last change applied here (0: none yet).
    var revision: Int64 = 0
    /// The last-change revision of every key under the prefix: a write compares against it,
    /// so a change made meanwhile by another host fails the transaction instead of being overwritten.
    var revisions: [String: Int64] = [:]
    /// Droplets whose lease is alive.
    var live: Set<String> = []
    var lease: Int64 = 0
    /// True once this droplet and its liveness key are in etcd under the current lease.
    var registered = false
    /// The last failure to reach etcd, while it lasts.
    var problem: (message: String, since: Date)?
    /// The revision each droplet's data plane has applied (its `progress/` key).
    var progress: [String: Int64] = [:]
    /// The revision this droplet's progress key should say, and whether a write of it is under way.
    var progressWanted: Int64 = 0
    var progressWriting = false
    /// Changes waiting for droplets to apply them: who, from which revision.
    /// True once the droplet left for good (its interface went away).
    var left = false
    /// The key pushes to bouncers are signed with (`cluster/secret`); nil: not known yet (no pushes).
    var secret: [UInt8]?
    /// The revision at which each deleted key was deleted (a push older than that is stale).
    var tombstones: [String: Int64] = [:]
    var waiters: [UInt64: (droplets: Set<String>, revision: Int64, continuation: CheckedContinuation<Bool, Never>)] = [:]
    var nextWaiter: UInt64 = 0
}

/// A lock that waits without blocking a thread: changes in cluster mode hold it across
/// their etcd round trip, so that two never interleave inside the actor.
actor AsyncMutex {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty { held = false } else { waiters.removeFirst().resume() }
    }
}

extension Daemon {
    /// Runs `body` holding `changes`.
    func serialized<T>(_ body: () async throws -> T) async throws -> T {
        await changes.lock()
        do {
            let value = try await body()
            await changes.unlock()
            return value
        } catch {
            await changes.unlock()
            throw error
        }
    }

    // MARK: Writes

    /// Applies a request cluster-wide: admitted against what this droplet has seen, applied to
    /// its data plane, then written to etcd in one transaction that holds only if no key it
    /// touches changed meanwhile. When another host got there first, this droplet catches up
    /// to that change and admits the request again (a few times), so racing hosts never hand
    /// out one address twice. etcd unreachable: 503 and nothing changes.
    /// With `createOnly`, a resource that exists (here, or written meanwhile by another host) is 412 `exists`.
    func applyToCluster(_ request: ApplyRequest, _ cluster: ClusterLink, createOnly: Bool = false) async throws -> ApplyResult {
        for _ in 0..<5 {
            let outcome: (result: ApplyResult?, revision: Int64, confirm: Set<String>, written: [EtcdOperation]) = try await serialized {
                if createOnly, let ref = request.apply.first?.reference, desired.contains(ref) {
                    throw APIError(.exists, "\(ref) exists", details: ["exists": "\(ref.kind.rawValue)/\(ref.name)"])
                }
                let changes = try admission.admit(request, to: &desired)
                guard !changes.previous.isEmpty else { return (ApplyResult(items: changes.items), 0, [], []) }
                do { try reconciler.sync(changes.refs, desired) } catch {
                    rollBack(changes)
                    throw APIError.from(error)
                }
                let (compares, operations) = transaction(for: changes, cluster.keys)
                // etcd refuses a transaction of more operations than its --max-txn-ops (128 by default).
                guard operations.count <= ClusterLink.maxOperations else {
                    rollBack(changes)
                    throw APIError(.tooLarge, "this request writes \(operations.count) keys; a cluster takes at most \(ClusterLink.maxOperations) in one request "
                                   + "(etcd's --max-txn-ops): send fewer resources per request (mizarctl apply does)")
                }
                let done: (succeeded: Bool, revision: Int64)
                do { done = try await cluster.client.txn(compares, operations) } catch {
                    // A timeout may come after etcd committed: the first key written says which.
                    if let committed = await committedRevision(of: operations, cluster) {
                        done = (true, committed)
                    } else {
                        rollBack(changes)
                        noteClusterProblem(error)
                        throw APIError(.unavailable, "the cluster store is unreachable; nothing was changed: \(error)")
                    }
                }
                guard done.succeeded else {
                    rollBack(changes)
                    return (nil, done.revision, [], [])  // another host's change: catch up to it, admit again
                }
                for operation in operations {
                    switch operation {
                    case .put(let key, let value, _): noteKey(key, value: value, revision: done.revision, keys: cluster.keys)
                    case .delete(let key): noteKey(key, value: nil, revision: done.revision, keys: cluster.keys)
                    }
                }
                cache(upserts: changes.upserts, deletes: changes.deletes)
                for ref in changes.refs { failures[ref] = nil }
                // Endpoints: done once every live bouncer of their networks (before and after) has them.
                let confirm = Set(changes.previous.flatMap { [$0.1, desired.resource($0.0)].flatMap(bouncersToConfirm) })
                return (ApplyResult(items: changes.items), done.revision, confirm, operations)
            }
            guard let result = outcome.result else {
                await awaitClusterRevision(outcome.revision)
                continue
            }
            // Pushed to the bouncers at once; those that do not confirm the push are waited for through etcd.
            let unconfirmed = outcome.confirm.isEmpty ? [] : outcome.confirm.subtracting(await push(outcome.written, revision: outcome.revision, to: outcome.confirm))
            if !unconfirmed.isEmpty, !(await awaitProgress(of: unconfirmed, atLeast: outcome.revision)) {
                logger.warning("bouncers did not confirm a change in time", metadata: ["bouncers": "\(unconfirmed.sorted())", "revision": "\(outcome.revision)"])
            }
            return result
        }
        throw APIError(.conflict, "other hosts kept changing what this request touches; nothing was changed, try again")
    }

    /// When a transaction's answer was lost: the revision it committed at when its first write
    /// shows in etcd — a put's value there, changed since this droplet saw the key; a delete's
    /// key gone — and nil when it does not or etcd cannot say.
    private func committedRevision(of operations: [EtcdOperation], _ cluster: ClusterLink) async -> Int64? {
        switch operations.first {
        case .put(let key, let value, _)?:
            guard let kv = try? await cluster.client.get(key), kv.value == value, kv.modRevision > (clusterState.revisions[key] ?? 0) else { return nil }
            return kv.modRevision
        case .delete(let key)?:
            guard let read = try? await cluster.client.range(prefix: key), !read.kvs.contains(where: { $0.keyString == key }) else { return nil }
            return read.revision
        case nil:
            return nil
        }
    }

    /// The live droplets other than this one that hold `resource` when it is an endpoint (the
    /// bouncers of its network, pending too).
    private func bouncersToConfirm(_ resource: AnyResource?) -> [String] {
        guard case .endpoint(let endpoint)? = resource, let network = desired.networks[endpoint.spec.network] else { return [] }
        return desired.bouncers(of: network, pending: true).filter { $0 != localName }
    }

    /// The compares and writes of `changes`: each resource key; each endpoint's address key;
    /// the address block a new address of this droplet's lies in, claimed when nobody has;
    /// and this droplet's blocks left empty, released. Every key is compared with the
    /// revision this droplet saw, so the transaction fails if another host changed it.
    private func transaction(for changes: Admission.Changes, _ keys: ClusterKeys) -> ([EtcdCompare], [EtcdOperation]) {
        var compares: [EtcdCompare] = [], operations: [EtcdOperation] = [], written = Set<String>()
        func touch(_ key: String, _ operation: EtcdOperation) {
            guard written.insert(key).inserted else { return }
            compares.append(.modRevision(key, equals: clusterState.revisions[key] ?? 0))
            operations.append(operation)
        }
        func address(_ resource: AnyResource?) -> (network: MizarAPI.Network, ip: IPv4Address, droplet: String?)? {
            guard case .endpoint(let e)? = resource, let ip = e.spec.ip, let network = desired.networks[e.spec.network] else { return nil }
            return (network, ip, e.spec.droplet)
        }
        var vacated: [(MizarAPI.Network, UInt32)] = []
        for (ref, old) in changes.previous {
            let new = desired.resource(ref), key = keys.resource(ref)
            if let new, let value = try? ClusterKeys.encode(new) { touch(key, .put(key, value)) } else { touch(key, .delete(key)) }
            let before = address(old), after = address(new)
            guard before.map({ "\($0.network.spec.vpc)/\($0.ip)" }) != after.map({ "\($0.network.spec.vpc)/\($0.ip)" }) else { continue }
            if let before {
                let k = keys.address(vpc: before.network.spec.vpc, ip: before.ip)
                touch(k, .delete(k))
                vacated.append((before.network, AddressBlocks.base(of: before.ip, in: before.network.spec.cidr)))
            }
            if let after {
                let k = keys.address(vpc: after.network.spec.vpc, ip: after.ip)
                touch(k, .put(k, Array(ref.name.utf8)))
                let base = AddressBlocks.base(of: after.ip, in: after.network.spec.cidr)
                if after.droplet == localName, desired.blocks?[after.network.name]?[base] == nil {
                    let block = keys.block(network: after.network.name, base: base)
                    touch(block, .put(block, Array(localName.utf8)))
                }
            }
        }
        for (network, base) in vacated where desired.blocks?[network.name]?[base] == localName {
            let cidr = network.spec.cidr, size = AddressBlocks.blockSize(of: cidr)
            let inUse = (desired.endpointsByNetwork[network.name] ?? []).contains { name in
                desired.endpoints[name]?.spec.ip.map { $0.value >= base && $0.value < base &+ size } ?? false
            }
            let block = keys.block(network: network.name, base: base)
            if !inUse, !written.contains(block) { touch(block, .delete(block)) }
        }
        return (compares, operations)
    }

    /// Waits (at most `timeout`) until every droplet of `droplets` still alive has applied
    /// `revision` (says so in its progress key); false on timeout.
    func awaitProgress(of droplets: Set<String>, atLeast revision: Int64, timeout: Duration = .seconds(5)) async -> Bool {
        guard !droplets.allSatisfy({ !desired.isLive($0) || (clusterState.progress[$0] ?? 0) >= revision }) else { return true }
        let id = clusterState.nextWaiter
        clusterState.nextWaiter += 1
        return await withCheckedContinuation { continuation in
            clusterState.waiters[id] = (droplets, revision, continuation)
            Task {
                try? await Task.sleep(for: timeout)
                self.clusterState.waiters.removeValue(forKey: id)?.continuation.resume(returning: false)
            }
        }
    }

    /// Resumes the waiters whose droplets have all caught up (or died).
    func wakeWaiters() {
        for (id, waiter) in clusterState.waiters
        where waiter.droplets.allSatisfy({ !desired.isLive($0) || (clusterState.progress[$0] ?? 0) >= waiter.revision }) {
            clusterState.waiters[id] = nil
            waiter.continuation.resume(returning: true)
        }
    }

    /// Has this droplet's progress key say `revision` (writes coalesce: one at a time, the latest wins).
    func reportProgress(_ revision: Int64) {
        guard let cluster, revision > clusterState.progressWanted else { return }
        clusterState.progressWanted = revision
        guard !clusterState.progressWriting else { return }
        clusterState.progressWriting = true
        Task {
            var written: Int64 = 0
            while let wanted = self.nextProgress(after: written) {
                do { try await cluster.client.put(cluster.keys.progress(self.localName), Array("\(wanted)".utf8)) } catch {
                    self.noteClusterProblem(error)
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                written = wanted
            }
        }
    }

    /// The revision to write next, or nil (and no writer any more) when `written` is the latest.
    private func nextProgress(after written: Int64) -> Int64? {
        if clusterState.progressWanted > written { return clusterState.progressWanted }
        clusterState.progressWriting = false
        return nil
    }

    /// Waits (at most 2 s) until the watch has brought this droplet to `revision`.
    func awaitClusterRevision(_ revision: Int64) async {
        let deadline = ContinuousClock.now + .seconds(2)
        while clusterState.revision < revision, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
    }

    /// Writes to the local store, which in cluster mode is the cache a start falls back on.
    private func cache(upserts: [AnyResource], deletes: [ResourceReference]) {
        do { try store.commit(upserts: upserts, deletes: deletes) } catch {
            logger.warning("local cache of the cluster state not written", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Start and liveness

    /// At start: takes etcd's state in place of the cache when etcd answers.
    func loadClusterSnapshot() async {
        guard let cluster else { return }
        do {
            let (kvs, revision) = try await cluster.client.range(prefix: cluster.keys.prefix)
            replaceDesired(with: kvs, revision: revision, keys: cluster.keys)
            logger.info("cluster state loaded from etcd", metadata: ["revision": "\(revision)", "keys": "\(kvs.count)"])
        } catch {
            noteClusterProblem(error)
            logger.warning("etcd unreachable at start; the data plane runs on the cached state until it answers", metadata: ["error": "\(error)"])
        }
    }

    /// Puts this droplet and its liveness key (bound to a fresh lease when the old one is gone) into etcd.
    func registerInCluster() async {
        guard let cluster, let me = desired.droplets[localName] else { return }
        do {
            if clusterState.lease == 0 { clusterState.lease = try await cluster.client.grantLease(ttl: cluster.leaseTTL) }
            let key = cluster.keys.resource(me.reference.self), live = cluster.keys.live(localName)
            let presence = Array("{\"ip\":\"\(me.spec.ip)\",\"since\":\"\(ISO8601DateFormatter().string(from: Date()))\"}".utf8)
            let done = try await cluster.client.txn([], [.put(key, try ClusterKeys.encode(.droplet(me))), .put(live, presence, lease: clusterState.lease)])
            clusterState.revisions[key] = done.revision
            clusterState.registered = true
            clusterState.live.insert(localName)
            clusterState.problem = nil
            logger.info("droplet registered in the cluster", metadata: ["lease": "\(clusterState.lease)", "ttl": "\(cluster.leaseTTL)s"])
        } catch {
            noteClusterProblem(error)
        }
    }

    /// Refuses to start under a name another live droplet holds (another host, same --name):
    /// its liveness key says a different address. A restart of this droplet finds its own.
    func refuseTakenName() async throws {
        guard let cluster, let live = try? await cluster.client.get(cluster.keys.live(localName)) else { return }
        let mine = "\"ip\":\"\(dataplane.address.ip)\""
        guard String(decoding: live.value, as: UTF8.self).contains(mine) else {
            throw APIError(.conflict, "droplet \(localName) is live in the cluster at another address (\(String(decoding: live.value, as: UTF8.self))): "
                           + "another transitd runs under this name; give this one --name")
        }
    }

    /// Renews the lease; a lease etcd no longer knows (expired while etcd or this process was
    /// away) is replaced and the droplet registered again.
    func renewLease() async {
        guard let cluster, !clusterState.left else { return }
        // The substrate interface removed: the droplet is gone, it leaves (the lease goes, and
        // the cluster runs its loss workflow at once, not a TTL later).
        if (try? RouteSocket(in: dataplane.netns).link(index: dataplane.ifindex)) == nil {
            logger.critical("the droplet's interface is gone; leaving the cluster", metadata: ["interface": "\(dataplane.interface)"])
            clusterState.left = true
            await leaveCluster()
            return
        }
        guard clusterState.registered, clusterState.lease != 0 else { return await registerInCluster() }
        do {
            if try await cluster.client.keepAlive(clusterState.lease) == 0 {
                logger.warning("the droplet's lease expired; registering again")
                clusterState.lease = 0
                clusterState.registered = false
                await registerInCluster()
            } else {
                clusterState.problem = nil
            }
        } catch {
            noteClusterProblem(error)
        }
    }

    /// The cluster's loops, run by transitd until it stops: the watch that applies what other
    /// hosts change, and the lease's renewal (every third of its TTL, at most 2 s, with a check that the interface is still there).
    public func runCluster() async {
        guard let cluster else { return }
        let follower = EtcdFollower(client: cluster.client, prefix: cluster.keys.prefix)
        let after = clusterState.revision > 0 ? clusterState.revision : nil
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await follower.run(after: after, onError: { error in Task { await self.noteClusterProblem(error) } }) { change in
                    await self.applyClusterChange(change)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    // A third of the TTL, at most 2 s: the interface check rides along.
                    try? await Task.sleep(for: .seconds(min(2, max(1, Double(cluster.leaseTTL) / 3))))
                    if Task.isCancelled { return }
                    await self.renewLease()
                }
            }
            await group.waitForAll()
        }
    }

    /// Gives up this droplet's lease (a clean stop): other hosts see it leave at once.
    public func leaveCluster() async {
        guard let cluster, clusterState.lease != 0 else { return }
        try? await cluster.client.revoke(clusterState.lease)
    }

    func noteClusterProblem(_ error: any Error) {
        if clusterState.problem == nil {
            logger.warning("cluster store problem", metadata: ["error": "\(error)"])
            clusterState.problem = ("\(error)", Date())
        } else {
            clusterState.problem?.message = "\(error)"
        }
    }

    func clusterHealth() -> String {
        if let problem = clusterState.problem {
            return "etcd unreachable since \(ISO8601DateFormatter().string(from: problem.since)): \(problem.message)"
        }
        return "ok (revision \(clusterState.revision), \(clusterState.live.count) live droplets\(clusterState.registered ? "" : ", not registered yet"))"
    }
}
