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
    init?(config: DaemonConfig, metrics: APIMetrics) throws {
        guard let urls = config.etcd?.flatMap({ $0.split(separator: ",").map(String.init) }).filter({ !$0.isEmpty }), !urls.isEmpty else { return nil }
        guard (2...3600).contains(config.leaseTTL) else { throw APIError(.invalid, "leaseTTL \(config.leaseTTL): give 2 to 3600 seconds") }
        do {
            client = try EtcdClient(endpoints: urls, caFile: config.etcdCA, certificate: config.etcdCert, key: config.etcdKey,
                                    observe: { metrics.recordStore(operation: $0, answered: $1, duration: $2) })
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
    /// True when the next progress write is wanted at once (not put off).
    var progressPrompt = false
    /// The put-off progress write, waiting until it is due.
    var progressDue: CheckedContinuation<Void, Never>?
    /// True once the droplet left for good (its interface went away).
    var left = false
    /// The key pushes to bouncers are signed with (`cluster/secret`); nil: not known yet (no pushes).
    var secret: [UInt8]?
    /// Where pushes are sent from and taken (nil: pushes off, or not open yet).
    var peerSocket: PeerSocket?
    /// The revision at which each deleted key was deleted (a push older than that is stale).
    var tombstones: [String: Int64] = [:]
    /// Changes waiting for droplets to apply them: who, from which revision.
    var waiters: [UInt64: (droplets: Set<String>, revision: Int64, continuation: CheckedContinuation<Bool, Never>)] = [:]
    /// The watch under way, and how it looked at the last renewals (`checkWatch`).
    var watching: Task<Void, Never>?
    /// Batches the watch brought (counted on arrival, before they wait for their turn), and that count at the last check.
    var watchHeard = 0
    var watchHeardChecked = 0
    var watchStalls = 0
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

    /// Applies a request cluster-wide: admitted against what this droplet has seen, plugged
    /// into its data plane and written to etcd in one transaction that holds only if no key it
    /// touches changed meanwhile (new endpoints: plugged while etcd commits; changes to what
    /// exists: plugged first). When another host got there first, this droplet catches up
    /// to that change and admits the request again (a few times), so racing hosts never hand
    /// out one address twice. A request naming what this droplet has not seen yet (a network
    /// made a moment ago through another host) makes it catch up with etcd once. etcd
    /// unreachable: 503 and nothing changes.
    /// With `createOnly`, a resource that exists (here, or written meanwhile by another host) is 412 `exists`.
    func applyToCluster(_ request: ApplyRequest, _ cluster: ClusterLink, createOnly: Bool = false) async throws -> ApplyResult {
        var caughtUp = false
        for _ in 0..<5 {
            let outcome: (result: ApplyResult?, revision: Int64, confirm: Set<String>, pushing: Task<Set<String>, Never>?, missing: APIError?) = try await serialized {
                if createOnly, let ref = request.apply.first?.reference, desired.contains(ref) {
                    throw APIError(.exists, "\(ref) exists", details: ["exists": "\(ref.kind.rawValue)/\(ref.name)"])
                }
                let changes: Admission.Changes
                do { changes = try admission.admit(request, to: &desired) } catch let error as APIError where error.details?["missing"] != nil && !caughtUp {
                    return (nil, 0, [], nil, error)
                }
                guard !changes.previous.isEmpty else { return (ApplyResult(items: changes.items), 0, [], nil, nil) }
                uncommitted = Dictionary(changes.previous.map { ($0.0, $0.1) }) { first, _ in first }
                defer { uncommitted = [:] }
                let (compares, operations) = transaction(for: changes, cluster.keys)
                // etcd refuses a transaction of more operations than its --max-txn-ops (128 by default).
                guard operations.count <= ClusterLink.maxOperations else {
                    rollBack(changes)
                    throw APIError(.tooLarge, "this request writes \(operations.count) keys; a cluster takes at most \(ClusterLink.maxOperations) in one request "
                                   + "(etcd's --max-txn-ops): send fewer resources per request (mizarctl apply does)")
                }
                // Endpoints: done once every live bouncer of their networks (before and after) has them.
                let confirm = Set(changes.previous.flatMap { [$0.1, desired.resource($0.0)].flatMap(bouncersToConfirm) })
                let plan = pushPlan(to: confirm)
                let committed: Committed, plugged: Result<Void, any Error>
                if changes.previous.allSatisfy({ $0.1 == nil && $0.0.kind == .endpoint }) {
                    // New endpoints (a CNI ADD's) are plugged while etcd commits them and the
                    // bouncers take them, each taking milliseconds; a plug that fails after the
                    // commit takes it back.
                    async let committing = Committed.attempt(compares, operations, cluster, plan)
                    plugged = Result(catching: { try reconciler.sync(changes.refs, desired) })
                    committed = await committing
                } else {
                    // Anything else is plugged first: a refused plug never reaches etcd.
                    plugged = Result(catching: { try reconciler.sync(changes.refs, desired) })
                    if case .failure(let error) = plugged {
                        rollBack(changes)
                        throw APIError.from(error)
                    }
                    committed = await Committed.attempt(compares, operations, cluster, plan)
                }
                var done: (succeeded: Bool, revision: Int64), pushing = committed.pushing
                switch committed.answer {
                case .success(let reply): done = reply
                case .failure(let error):
                    // A timeout may come after etcd committed: the first key written says which.
                    guard let revision = await committedRevision(of: operations, cluster) else {
                        rollBack(changes)
                        noteClusterProblem(error)
                        throw APIError(.unavailable, "the cluster store is unreachable; the change was undone here (should etcd apply it late, "
                                       + "the watch brings it back), try again: \(error)")
                    }
                    done = (true, revision)
                    if case .success = plugged { pushing = plan?.start(operations, revision: revision) }
                }
                if case .failure(let error) = plugged {
                    if done.succeeded {
                        pushing?.cancel()
                        try await takeBack(changes, operations, committedAt: done.revision, cluster, plugError: error)
                    }
                    rollBack(changes)
                    throw APIError.from(error)
                }
                guard done.succeeded else {
                    rollBack(changes)
                    return (nil, done.revision, [], nil, nil)  // another host's change: catch up to it, admit again
                }
                noteCommitted(operations, at: done.revision, cluster.keys)
                cache(upserts: changes.upserts, deletes: changes.deletes)
                for ref in changes.refs { failures[ref] = nil }
                return (ApplyResult(items: changes.items), done.revision, confirm, pushing, nil)
            }
            if let missing = outcome.missing {
                // What the request names may be in etcd and not here yet (a network just made
                // through another host): once, this droplet catches up with etcd and admits again.
                caughtUp = true
                guard let named = missing.details?["missing"], let slash = named.firstIndex(of: "/"),
                      let kind = Kind(rawValue: String(named[..<slash])),
                      let stored = try? await cluster.client.get(cluster.keys.resource(ResourceReference(kind: kind, name: String(named[named.index(after: slash)...])))),
                      stored.modRevision > clusterState.revision else { throw missing }
                await awaitClusterRevision(stored.modRevision)
                continue
            }
            guard let result = outcome.result else {
                await awaitClusterRevision(outcome.revision)
                continue
            }
            // Bouncers that did not confirm the push (unreachable, or pushes off) are waited for through etcd.
            let unconfirmed = outcome.confirm.subtracting(await outcome.pushing?.value ?? [])
            if !unconfirmed.isEmpty, !(await awaitProgress(of: unconfirmed, atLeast: outcome.revision)) {
                logger.warning("bouncers did not confirm a change in time", metadata: ["bouncers": "\(unconfirmed.sorted())", "revision": "\(outcome.revision)"])
            }
            return result
        }
        throw APIError(.conflict, "other hosts kept changing what this request touches; nothing was changed, try again")
    }

    /// Takes in what this droplet's own transaction wrote, at `revision`.
    private func noteCommitted(_ operations: [EtcdOperation], at revision: Int64, _ keys: ClusterKeys) {
        for operation in operations {
            switch operation {
            case .put(let key, let value, _): noteKey(key, value: value, revision: revision, keys: keys)
            case .delete(let key): noteKey(key, value: nil, revision: revision, keys: keys)
            }
        }
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

    /// Undoes the transaction of new endpoints whose plug failed after it committed at
    /// `revision`: its keys are deleted, each only if still as written. Taken back, the watch
    /// skips the puts (nothing comes back here) and the caller rolls back. Not taken back (etcd
    /// unreachable, or a key changed meanwhile), the endpoints stay stored and desired: this
    /// droplet retries plugging them, a DELETE removes them, and this throws saying so.
    private func takeBack(_ changes: Admission.Changes, _ operations: [EtcdOperation], committedAt revision: Int64, _ cluster: ClusterLink,
                          plugError: any Error) async throws {
        let keys = operations.compactMap { if case .put(let key, _, _) = $0 { key } else { nil } }
        let why: String
        do {
            if try await cluster.client.txn(keys.map { .modRevision($0, equals: revision) }, keys.map { .delete($0) }).succeeded {
                for key in keys { clusterState.revisions[key] = revision }
                return
            }
            why = "another host changed them meanwhile"
        } catch {
            noteClusterProblem(error)
            why = "\(error)"
        }
        logger.error("a change whose plug failed stays in etcd", metadata: ["keys": "\(keys)", "error": "\(why)"])
        noteCommitted(operations, at: revision, cluster.keys)
        cache(upserts: changes.upserts, deletes: changes.deletes)
        for ref in changes.refs { failures[ref] = "\(plugError)" }
        var error = APIError.from(plugError)
        error.message += "; it is stored in the cluster and could not be taken back (\(why)): transitd retries plugging it, delete it to remove it"
        throw error
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

    /// How long a progress write that nobody waits on may be put off (see `reportProgress`).
    static let progressDelay: Duration = .seconds(1)

    /// Has this droplet's progress key say `revision`. Writes coalesce (one at a time, the
    /// latest wins) and, unless `promptly`, wait `progressDelay` first: with pushes on, the
    /// writer of an endpoint learns from the push's answer that this bouncer holds it, and a
    /// progress write per change per bouncer would cost etcd a write and every droplet a watch
    /// event. Prompt: a role handed to this droplet (the controller waits on it), pushes off or
    /// not possible yet (no secret).
    func reportProgress(_ revision: Int64, promptly: Bool) {
        guard let cluster, revision > clusterState.progressWanted else { return }
        clusterState.progressWanted = revision
        // Without pushes (off, or the cluster's secret not known yet) the writer waits on this key.
        clusterState.progressPrompt = clusterState.progressPrompt || promptly || cluster.peerPort == 0 || clusterState.secret == nil
        if clusterState.progressPrompt { progressIsDue() }
        guard !clusterState.progressWriting else { return }
        clusterState.progressWriting = true
        Task {
            var written: Int64 = 0
            while let wanted = await self.nextProgress(after: written) {
                do { try await cluster.client.put(cluster.keys.progress(self.localName), Array("\(wanted)".utf8)) } catch {
                    self.noteClusterProblem(error)
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                written = wanted
            }
        }
    }

    /// The revision to write next, once it is due, or nil (and no writer any more) when `written` is the latest.
    private func nextProgress(after written: Int64) async -> Int64? {
        guard clusterState.progressWanted > written else {
            clusterState.progressWriting = false
            return nil
        }
        if !clusterState.progressPrompt {
            await withCheckedContinuation { continuation in
                clusterState.progressDue = continuation
                Task {
                    try? await Task.sleep(for: Self.progressDelay)
                    self.progressIsDue()
                }
            }
        }
        clusterState.progressPrompt = false
        return clusterState.progressWanted
    }

    /// Ends the wait of a put-off progress write.
    private func progressIsDue() {
        clusterState.progressDue?.resume()
        clusterState.progressDue = nil
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
}

/// A change's transaction as etcd answered it, and its push to the bouncers under way (it
/// answers with those that hold it; the change's turn need not wait for it).
struct Committed: Sendable {
    var answer: Result<(succeeded: Bool, revision: Int64), any Error>
    var pushing: Task<Set<String>, Never>?

    /// Commits, and when that succeeds starts pushing what it wrote by `plan`.
    static func attempt(_ compares: [EtcdCompare], _ operations: [EtcdOperation], _ cluster: ClusterLink, _ plan: PushPlan?) async -> Committed {
        do {
            let reply = try await cluster.client.txn(compares, operations)
            return Committed(answer: .success(reply), pushing: reply.succeeded ? plan?.start(operations, revision: reply.revision) : nil)
        } catch {
            return Committed(answer: .failure(error))
        }
    }
}
