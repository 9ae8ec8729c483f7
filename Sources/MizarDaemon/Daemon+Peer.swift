import Foundation
import Logging
import MizarAPI
import MizarCluster
import NIOCore

/// What a droplet pushes to the bouncers of a change's networks right after committing it:
/// the keys its transaction wrote, at that revision. Bouncers take it as they would the
/// watch's event (which still comes, and then changes nothing), so the change is in every
/// bouncer's table in one round trip instead of two through etcd. It travels signed in one
/// datagram (`PeerDatagram`); a push that is refused, lost, late, or finds the bouncer behind
/// falls back to waiting for the bouncer's progress key.
struct PeerChanges: Codable {
    var from: String
    /// The droplets it is for (every bouncer of the change): one body and one signature go to
    /// all of them, and any other droplet refuses it.
    var to: [String]
    var revision: Int64
    var events: [PeerEvent]
}

struct PeerEvent: Codable {
    var key: String
    /// Nil: the key was deleted.
    var value: Data?
}

/// Where and how a committed change is pushed: made on the actor, sent off it.
struct PushPlan: Sendable {
    let from: String
    let port: Int
    let secret: [UInt8]
    let socket: PeerSocket
    let logger: Logger
    let metrics: APIMetrics
    let targets: [(name: String, ip: String)]

    /// Starts pushing what a transaction wrote, at `revision`: the task answers with the targets that hold it.
    func start(_ operations: [EtcdOperation], revision: Int64) -> Task<Set<String>, Never> {
        Task { await send(operations, revision: revision) }
    }

    /// Pushes what a transaction wrote, at `revision`, to every target at once; returns those
    /// that hold all of it. One body and one signature go to all; a change too large for one
    /// datagram goes as several, each of whole keys.
    func send(_ operations: [EtcdOperation], revision: Int64) async -> Set<String> {
        var chunks: [[PeerEvent]] = [[]], size = 0
        for operation in operations {
            let event: PeerEvent
            switch operation {
            case .put(let key, let value, _): event = PeerEvent(key: key, value: Data(value))
            case .delete(let key): event = PeerEvent(key: key, value: nil)
            }
            // As encoded: the key, the value in base64, and the JSON around them. Chunks are cut at
            // 16 KiB, as estimated (JSON escapes every "/" of a key): each then goes in a dozen IP
            // fragments, not the forty-odd of a full datagram, any of which lost loses it.
            let bytes = event.key.utf8.count + (event.value?.count ?? 0) * 4 / 3 + 64
            if size + bytes > 16_384, !chunks[chunks.count - 1].isEmpty { (chunks, size) = (chunks + [[]], 0) }
            chunks[chunks.count - 1].append(event)
            size += bytes
        }
        let targets = targets
        return await withTaskGroup(of: Set<String>.self) { group in
            for events in chunks {
                group.addTask {
                    let changes = PeerChanges(from: from, to: targets.map(\.name), revision: revision, events: events)
                    guard let body = try? JSONEncoder().encode(changes) else { return [] }
                    guard body.count <= PeerDatagram.maxBody else {
                        logger.debug("a key too large for a datagram; waiting for the bouncers' progress", metadata: ["bytes": "\(body.count)"])
                        return []
                    }
                    return await socket.push(body, to: targets, port: port, secret: secret) { [metrics, logger] name, outcome, duration in
                        metrics.recordPush(outcome: outcome, duration: duration)
                        if outcome == "failed" { logger.debug("push to a bouncer unanswered; waiting for its progress instead", metadata: ["droplet": "\(name)"]) }
                    }
                }
            }
            var held = Set(targets.map(\.name))
            for await chunk in group { held.formIntersection(chunk) }
            return held
        }
    }
}

extension Daemon {
    /// How to push a change to `droplets`, taken from this droplet's state before the change
    /// commits (nil: pushes off or the secret not known yet; every one is then waited for through etcd).
    func pushPlan(to droplets: Set<String>) -> PushPlan? {
        guard let cluster, let socket = clusterState.peerSocket, let secret = clusterState.secret, !droplets.isEmpty else { return nil }
        return PushPlan(from: localName, port: cluster.peerPort, secret: secret, socket: socket, logger: logger, metrics: metrics,
                        targets: droplets.compactMap { name in desired.droplets[name].map { (name, "\($0.spec.ip)") } })
    }

    /// Opens the UDP socket on the substrate address and `--peer-port` where other droplets
    /// push changes to this one's tables and this one sends its pushes from (nil: not in
    /// cluster mode, or pushes off).
    public func openPeerSocket() async throws -> PeerSocket? {
        guard let cluster, cluster.peerPort > 0 else { return nil }
        let metrics = metrics
        let socket = try await PeerSocket.bind(host: "\(dataplane.address.ip)", port: cluster.peerPort,
                                               dropped: { metrics.recordPushTaken(outcome: "dropped") }) { [weak self] body in
            await self?.answerPush(body) ?? []
        }
        clusterState.peerSocket = socket
        learnSecret(clusterState.secret)
        logger.info("peer socket (signed pushes from other droplets)", metadata: ["address": "\(dataplane.address.ip):\(cluster.peerPort)/udp"])
        return socket
    }

    /// Takes the cluster's secret (pushes are signed with it), here and on the peer socket.
    func learnSecret(_ secret: [UInt8]?) {
        clusterState.secret = secret
        clusterState.peerSocket?.secret.withLockedValue { $0 = secret }
    }

    /// The answer to a push whose signature and age the socket checked: decoded and addressed
    /// off the actor (a misaddressed or malformed one never takes its turn), then taken.
    nonisolated func answerPush(_ body: [UInt8]) async -> [UInt8] {
        let changes: PeerChanges
        do { changes = try JSONDecoder().decode(PeerChanges.self, from: Data(body)) } catch {
            return refuse("not a push: \(error)")
        }
        guard changes.to.contains(localName) else { return refuse("push meant for droplets \(changes.to.joined(separator: ", "))") }
        do {
            let held = try await takePush(changes)
            metrics.recordPushTaken(outcome: held ? "held" : "not_held")
            return PeerAnswer(held ? .held : .notHeld, from: localName).bytes
        } catch {
            return refuse((error as? APIError)?.message ?? "\(error)")
        }
    }

    private nonisolated func refuse(_ reason: String) -> [UInt8] {
        metrics.recordPushTaken(outcome: "refused")
        logger.debug("push refused", metadata: ["reason": "\(reason)"])
        return PeerAnswer(.refused, from: localName, reason: reason).bytes
    }

    /// A bouncer's side of a push, in turn with every other change. Only endpoint keys are
    /// taken (nothing else is a bouncer's table), and only from a push newer than both what the
    /// watch has brought and what this droplet has of the key, deleted keys included: a late or
    /// replayed push changes nothing. True when every endpoint pushed is in (or out of) this
    /// bouncer's table as the push says.
    func takePush(_ changes: PeerChanges) async throws -> Bool {
        guard let keys = cluster?.keys else { throw APIError(.unavailable, "not in cluster mode") }
        return try await serialized {
            let fresh = changes.revision > clusterState.revision
            let events = changes.events.filter { e in
                guard fresh, case .resource(let ref) = keys.parse(e.key), ref.kind == .endpoint else { return false }
                return changes.revision > max(clusterState.revisions[e.key] ?? 0, clusterState.tombstones[e.key] ?? 0)
            }.map { e in
                EtcdEvent(kind: e.value == nil ? .delete : .put, kv: EtcdKV(key: Array(e.key.utf8), value: e.value.map(Array.init) ?? [], modRevision: changes.revision))
            }
            applyEvents(events, revision: changes.revision, keys: keys, pushed: true)
            return changes.events.allSatisfy { e in
                guard case .resource(let ref) = keys.parse(e.key), ref.kind == .endpoint else { return true }
                return reconciler.holdsRemote(ref.name) == (e.value != nil)
            }
        }
    }

    /// Makes the cluster's secret when nobody has (create-only: the first droplet's wins), and learns it.
    func ensureClusterSecret() async {
        guard let cluster, clusterState.secret == nil else { return }
        do {
            var secret = [UInt8](repeating: 0, count: 32)
            for i in secret.indices { secret[i] = UInt8.random(in: 0...255) }
            _ = try await cluster.client.txn([.modRevision(cluster.keys.secret, equals: 0)], [.put(cluster.keys.secret, secret)])
            learnSecret(try await cluster.client.get(cluster.keys.secret)?.value)
        } catch {
            noteClusterProblem(error)
        }
    }
}
