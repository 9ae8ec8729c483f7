import Foundation
import Logging
import MizarAPI
import MizarCluster
import MizarNet

/// A droplet's membership of the cluster: its start from etcd's state, its registration and
/// lease, the loops that follow etcd, and its health as far as etcd goes.
extension Daemon {
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
            return
        }
        // After the renewal, which must not wait on them: a secret etcd could not give at start, the watch's health.
        await ensureClusterSecret()
        await checkWatch()
    }

    /// The cluster's loops, run by transitd until it stops: the watch that applies what other
    /// hosts change, and the lease's renewal (every third of its TTL, at most 2 s, with a check that the interface is still there).
    public func runCluster() async {
        guard let cluster else { return }
        let follower = EtcdFollower(client: cluster.client, prefix: cluster.keys.prefix)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Followed from what was applied; again from there when `checkWatch` ends a watch that stalled.
                while !Task.isCancelled {
                    let after = await self.clusterState.revision
                    let watching = Task {
                        await follower.run(after: after > 0 ? after : nil, onError: { error in Task { await self.noteClusterProblem(error) } }) { change in
                            await self.applyClusterChange(change)
                        }
                    }
                    await self.follow(watching)
                    await withTaskCancellationHandler { await watching.value } onCancel: { watching.cancel() }
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

    private func follow(_ watching: Task<Void, Never>) {
        clusterState.watching = watching
    }

    /// A watch on a member that hangs (its connection open, nothing on it) delivers nothing and
    /// fails no request. At each renewal: when the watch has brought nothing since the last
    /// one and etcd's revision is past what it applied, the newest write under the prefix is
    /// read (a scan of the prefix, so only then); behind that twice in a row, the watch is
    /// ended and followed again from what was applied, on a member that answers. A watch that
    /// only misses deletes is not noticed until the next write.
    func checkWatch() async {
        guard let cluster else { return }
        let heard = clusterState.watchHeard, applied = clusterState.revision
        defer { clusterState.watchHeardChecked = heard }
        guard heard == clusterState.watchHeardChecked, let now = try? await cluster.client.revision(), now > applied,
              let latest = try? await cluster.client.latestWrite(under: cluster.keys.prefix), latest > applied else {
            clusterState.watchStalls = 0
            return
        }
        clusterState.watchStalls += 1
        guard clusterState.watchStalls >= 2 else { return }
        logger.warning("the watch delivers nothing while etcd has newer writes; following again from another member",
                       metadata: ["applied": "\(applied)", "latest": "\(latest)"])
        clusterState.watchStalls = 0
        clusterState.watching?.cancel()
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
