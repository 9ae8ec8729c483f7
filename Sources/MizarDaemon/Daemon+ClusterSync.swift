import Foundation
import Logging
import MizarAPI
import MizarCluster

/// What other hosts change reaches this droplet through the watch: it is taken into the
/// desired state as it is (the writer admitted it) and the data plane follows.
extension Daemon {
    /// Applies one change the watch brought, in turn with API changes.
    func applyClusterChange(_ change: EtcdChange) async {
        guard let keys = cluster?.keys else { return }
        clusterState.watchHeard &+= 1
        _ = try? await serialized {
            switch change {
            case .snapshot(let kvs, let revision):
                replaceDesired(with: kvs, revision: revision, keys: keys)
                failures = reconciler.syncAll(desired)
                logger.info("resynchronized with etcd", metadata: ["revision": "\(revision)", "keys": "\(kvs.count)", "unapplied": "\(failures.count)"])
            case .events(let events, let revision):
                applyEvents(events, revision: revision, keys: keys)
                clusterState.revision = max(clusterState.revision, revision)
                // What the watch has passed needs no tombstone: a push that old is refused anyway.
                if !clusterState.tombstones.isEmpty { clusterState.tombstones = clusterState.tombstones.filter { $0.value > revision } }
            }
            clusterState.problem = nil
        }
    }

    /// Takes in a batch of changes: the watch's, or a push's (`pushed`: progress is not
    /// reported, and deletes leave tombstones until the watch passes them).
    func applyEvents(_ events: [EtcdEvent], revision: Int64, keys: ClusterKeys, pushed: Bool = false) {
        var touched = Set<ResourceReference>(), upserts: [AnyResource] = [], deletes: [ResourceReference] = [], mentionsMe = false
        for event in events {
            let key = event.kv.keyString
            guard case .resource(let ref) = keys.parse(key) else {
                let effect = noteKey(key, value: event.kind == .delete ? nil : event.kv.value, revision: event.kv.modRevision, keys: keys)
                touched.formUnion(effect.touched)
                mentionsMe = mentionsMe || effect.mentionsMe
                continue
            }
            if event.kind == .delete {
                clusterState.revisions[key] = nil
                if pushed { clusterState.tombstones[key] = event.kv.modRevision }
                // This droplet stays itself whatever another host deletes: it registers again.
                if ref == ResourceReference(kind: .droplet, name: localName) {
                    clusterState.registered = false
                    continue
                }
                if desired.remove(ref) != nil {
                    touched.insert(ref)
                    deletes.append(ref)
                }
            } else {
                // This very write is here already (a push brought it, or this droplet made it): nothing to decode.
                if clusterState.revisions[key] == event.kv.modRevision { continue }
                clusterState.revisions[key] = event.kv.modRevision
                clusterState.tombstones[key] = nil
                guard let resource = decode(event.kv), resource.reference == ref else { continue }
                // This droplet's own resource says what its interface says: another writer is overwritten at the next renewal.
                if ref == ResourceReference(kind: .droplet, name: localName), resource != desired.resource(ref) {
                    logger.warning("this droplet's resource was changed in etcd; writing it back")
                    clusterState.registered = false
                    continue
                }
                if desired.resource(ref) != resource {
                    desired.put(resource)
                    touched.insert(ref)
                    upserts.append(resource)
                }
            }
        }
        let writes = reconciler.writes
        if !touched.isEmpty {
            do {
                try reconciler.sync(Array(touched), desired)
                for ref in touched { failures[ref] = nil }
            } catch {
                logger.warning("a cluster change did not apply at once; retrying resource by resource", metadata: ["error": "\(error)"])
                failures.merge(reconciler.retry(reconciler.ordered(touched, desired), desired)) { $1 }
            }
        }
        // The data plane took something (or a role is being handed to it): say so, for whoever waits on it.
        if !pushed, reconciler.writes != writes || mentionsMe { reportProgress(revision, promptly: mentionsMe) }
        wakeWaiters()
        if !upserts.isEmpty || !deletes.isEmpty {
            do { try store.commit(upserts: upserts, deletes: deletes) } catch {
                logger.warning("local cache of the cluster state not written", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Takes in a key that is not a resource (written by this droplet or seen by the watch;
    /// nil `value`: deleted). Returns the resources whose tables it changes, and whether it
    /// hands this droplet a role.
    @discardableResult
    func noteKey(_ key: String, value: [UInt8]?, revision: Int64, keys: ClusterKeys) -> (touched: [ResourceReference], mentionsMe: Bool) {
        clusterState.revisions[key] = value == nil ? nil : revision
        switch keys.parse(key) {
        case .block(let network, let base):
            desired.blocks = desired.blocks ?? [:]
            desired.blocks![network, default: [:]][base] = value.map { String(decoding: $0, as: UTF8.self) }
        case .live(let droplet):
            if value == nil { clusterState.live.remove(droplet) } else { clusterState.live.insert(droplet) }
            if droplet == localName, value == nil { clusterState.registered = false }
            guard droplet != localName, desired.live != nil else { return ([], false) }
            let was = desired.isLive(droplet)
            if value == nil { desired.live?.remove(droplet) } else { desired.live?.insert(droplet) }
            if was != desired.isLive(droplet) { return ([ResourceReference(kind: .droplet, name: droplet)], false) }
        case .pending(let network):
            let names = Set(value.flatMap { try? JSONDecoder().decode([String].self, from: Data($0)) } ?? [])
            let old = desired.pendingBouncers[network] ?? []
            desired.pendingBouncers[network] = names.isEmpty ? nil : names
            if old != names { return ([ResourceReference(kind: .network, name: network)], names.contains(localName) && !old.contains(localName)) }
        case .progress(let droplet):
            clusterState.progress[droplet] = value.flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        case .secret:
            learnSecret(value)
        case .address, .leader, .unknown, .resource:
            break
        }
        return ([], false)
    }

    /// Makes etcd's keys the desired state (this droplet's own resource kept when etcd lacks
    /// it: it registers again), and the local cache a copy of them.
    func replaceDesired(with kvs: [EtcdKV], revision: Int64, keys: ClusterKeys) {
        var next = DesiredState(), resources: [AnyResource] = []
        next.blocks = [:]
        next.live = [localName]
        let previous = desired
        desired = next
        clusterState.revisions = [:]
        clusterState.live = []
        for kv in kvs {
            let key = kv.keyString
            guard case .resource(let ref) = keys.parse(key) else {
                noteKey(key, value: kv.value, revision: kv.modRevision, keys: keys)
                continue
            }
            clusterState.revisions[key] = kv.modRevision
            if let resource = decode(kv), resource.reference == ref { resources.append(resource) }
        }
        next = desired
        for resource in resources.sorted(by: { $0.kind < $1.kind }) { next.put(resource) }
        if next.droplets[localName] == nil {
            if let me = previous.droplets[localName] { next.put(.droplet(me)) }
            clusterState.registered = false
        }
        let gone = Kind.allCases.flatMap(previous.references).filter { !next.contains($0) }
        desired = next
        clusterState.revision = revision
        do { try store.commit(upserts: Kind.allCases.flatMap(next.list), deletes: gone) } catch {
            logger.warning("local cache of the cluster state not written", metadata: ["error": "\(error)"])
        }
        wakeWaiters()
    }

    private func decode(_ kv: EtcdKV) -> AnyResource? {
        do { return try ClusterKeys.decode(kv.value) } catch {
            logger.warning("a value in etcd is not a resource; ignored", metadata: ["key": "\(kv.keyString)", "error": "\(error)"])
            return nil
        }
    }
}
