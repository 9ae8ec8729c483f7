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
        _ = try? await serialized {
            switch change {
            case .snapshot(let kvs, let revision):
                replaceDesired(with: kvs, revision: revision, keys: keys)
                failures = reconciler.syncAll(desired)
                logger.info("resynchronized with etcd", metadata: ["revision": "\(revision)", "keys": "\(kvs.count)", "unapplied": "\(failures.count)"])
            case .events(let events, let revision):
                applyEvents(events, keys: keys)
                clusterState.revision = max(clusterState.revision, revision)
            }
            clusterState.problem = nil
        }
    }

    private func applyEvents(_ events: [EtcdEvent], keys: ClusterKeys) {
        var touched = Set<ResourceReference>(), upserts: [AnyResource] = [], deletes: [ResourceReference] = []
        for event in events {
            let key = event.kv.keyString
            switch keys.parse(key) {
            case .resource(let ref):
                if event.kind == .delete {
                    clusterState.revisions[key] = nil
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
                    clusterState.revisions[key] = event.kv.modRevision
                    guard let resource = decode(event.kv), resource.reference == ref else { continue }
                    if desired.resource(ref) != resource {
                        desired.put(resource)
                        touched.insert(ref)
                        upserts.append(resource)
                    }
                }
            case .address:
                clusterState.revisions[key] = event.kind == .delete ? nil : event.kv.modRevision
            case .live(let droplet):
                if event.kind == .delete { clusterState.live.remove(droplet) } else { clusterState.live.insert(droplet) }
                if droplet == localName, event.kind == .delete { clusterState.registered = false }
            case .unknown:
                continue
            }
        }
        guard !touched.isEmpty else { return }
        do {
            try reconciler.sync(Array(touched), desired)
            for ref in touched { failures[ref] = nil }
        } catch {
            logger.warning("a cluster change did not apply at once; retrying resource by resource", metadata: ["error": "\(error)"])
            failures.merge(reconciler.retry(reconciler.ordered(touched, desired), desired)) { $1 }
        }
        do { try store.commit(upserts: upserts, deletes: deletes) } catch {
            logger.warning("local cache of the cluster state not written", metadata: ["error": "\(error)"])
        }
    }

    /// Makes etcd's keys the desired state (this droplet's own resource kept when etcd lacks
    /// it: it registers again), and the local cache a copy of them.
    func replaceDesired(with kvs: [EtcdKV], revision: Int64, keys: ClusterKeys) {
        var next = DesiredState(), revisions: [String: Int64] = [:], live = Set<String>()
        var resources: [AnyResource] = []
        for kv in kvs {
            let key = kv.keyString
            switch keys.parse(key) {
            case .resource(let ref):
                revisions[key] = kv.modRevision
                if let resource = decode(kv), resource.reference == ref { resources.append(resource) }
            case .address: revisions[key] = kv.modRevision
            case .live(let droplet): live.insert(droplet)
            case .unknown: continue
            }
        }
        for resource in resources.sorted(by: { $0.kind < $1.kind }) { next.put(resource) }
        if next.droplets[localName] == nil {
            if let me = desired.droplets[localName] { next.put(.droplet(me)) }
            clusterState.registered = false
        }
        let gone = Kind.allCases.flatMap(desired.references).filter { !next.contains($0) }
        desired = next
        clusterState.revision = revision
        clusterState.revisions = revisions
        clusterState.live = live
        do { try store.commit(upserts: Kind.allCases.flatMap(next.list), deletes: gone) } catch {
            logger.warning("local cache of the cluster state not written", metadata: ["error": "\(error)"])
        }
    }

    private func decode(_ kv: EtcdKV) -> AnyResource? {
        do { return try ClusterKeys.decode(kv.value) } catch {
            logger.warning("a value in etcd is not a resource; ignored", metadata: ["key": "\(kv.keyString)", "error": "\(error)"])
            return nil
        }
    }
}
