import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MizarAPI
import MizarCluster
import NIOCore
import NIOFoundationCompat

/// What a droplet pushes to the bouncers of a change's networks right after committing it:
/// the keys its transaction wrote, at that revision. Bouncers take it as they would the
/// watch's event (which still comes, and then changes nothing), so the change is in every
/// bouncer's table in one round trip instead of two through etcd. Signed with the cluster's
/// secret (HMAC-SHA256 of the body); a push that is refused, late, or finds the bouncer
/// behind falls back to waiting for the bouncer's progress key.
struct PeerChanges: Codable {
    var from: String
    /// The droplets it is for (every bouncer of the change): one body and one signature go to
    /// all of them, and any other droplet refuses it.
    var to: [String]
    var revision: Int64
    /// Seconds since 1970 when it was sent: a push older than 30 s is refused (no replays).
    var sentAt: Double
    var events: [PeerEvent]

    init(from: String, to: [String], revision: Int64, sentAt: Double, events: [PeerEvent]) {
        (self.from, self.to, self.revision, self.sentAt, self.events) = (from, to, revision, sentAt, events)
    }

    private enum CodingKeys: String, CodingKey { case from, to, revision, sentAt, events }

    /// `to` is also taken as one name, as droplets before one body per change sent it: a
    /// cluster upgraded one droplet at a time keeps its pushes.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        from = try c.decode(String.self, forKey: .from)
        to = try (try? c.decode([String].self, forKey: .to)) ?? [c.decode(String.self, forKey: .to)]
        revision = try c.decode(Int64.self, forKey: .revision)
        sentAt = try c.decode(Double.self, forKey: .sentAt)
        events = try c.decode([PeerEvent].self, forKey: .events)
    }
}

struct PeerEvent: Codable {
    var key: String
    /// Nil: the key was deleted.
    var value: Data?
}

struct PeerReply: Codable {
    /// True when every endpoint pushed is in (or out of) this bouncer's table as the push says.
    var held: Bool
}

/// The header that carries a push's signature.
let peerSignatureHeader = "X-Mizar-Signature"

/// Where and how a committed change is pushed: made on the actor, sent off it.
struct PushPlan: Sendable {
    let from: String
    let port: Int
    let secret: [UInt8]
    let logger: Logger
    let metrics: APIMetrics
    let targets: [(name: String, ip: String)]

    /// Starts pushing what a transaction wrote, at `revision`: the task answers with the targets that hold it.
    func start(_ operations: [EtcdOperation], revision: Int64) -> Task<Set<String>, Never> {
        Task { await send(operations, revision: revision) }
    }

    /// Pushes what a transaction wrote, at `revision`, to every target in parallel; returns those
    /// that hold it. One body and one signature for all (encoding one per target put the eighth
    /// request 1 ms behind the first).
    func send(_ operations: [EtcdOperation], revision: Int64) async -> Set<String> {
        let events = operations.map { operation -> PeerEvent in
            switch operation {
            case .put(let key, let value, _): PeerEvent(key: key, value: Data(value))
            case .delete(let key): PeerEvent(key: key, value: nil)
            }
        }
        let changes = PeerChanges(from: from, to: targets.map(\.name), revision: revision, sentAt: Date().timeIntervalSince1970, events: events)
        guard let body = try? JSONEncoder().encode(changes) else { return [] }
        let signature = Daemon.sign(body, secret: secret)
        return await withTaskGroup(of: String?.self) { group in
            for (name, ip) in targets {
                group.addTask {
                    var request = HTTPClientRequest(url: "http://\(ip):\(port)/v1/peer/changes")
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.headers.add(name: peerSignatureHeader, value: signature)
                    request.body = .bytes(ByteBuffer(data: body))
                    let clock = ContinuousClock(), start = clock.now
                    do {
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(1))
                        let reply = try await response.body.collect(upTo: 4096)
                        let held = response.status == .ok && (try? JSONDecoder().decode(PeerReply.self, from: reply))?.held == true
                        metrics.recordPush(outcome: held ? "held" : response.status == .ok ? "not_held" : "failed", duration: clock.now - start)
                        return held ? name : nil
                    } catch {
                        if Task.isCancelled { return nil }  // taken back: not the bouncer's failure
                        metrics.recordPush(outcome: "failed", duration: clock.now - start)
                        logger.debug("push to a bouncer failed; waiting for its progress instead", metadata: ["droplet": "\(name)", "error": "\(error)"])
                        return nil
                    }
                }
            }
            var held = Set<String>()
            for await name in group { if let name { held.insert(name) } }
            return held
        }
    }
}

extension Daemon {
    static func sign(_ body: Data, secret: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] },
                      as: UTF8.self)
    }

    /// How to push a change to `droplets`, taken from this droplet's state before the change
    /// commits (nil: pushes off or the secret not known yet; every one is then waited for through etcd).
    func pushPlan(to droplets: Set<String>) -> PushPlan? {
        guard let cluster, cluster.peerPort > 0, let secret = clusterState.secret, !droplets.isEmpty else { return nil }
        return PushPlan(from: localName, port: cluster.peerPort, secret: secret, logger: logger, metrics: metrics,
                        targets: droplets.compactMap { name in desired.droplets[name].map { (name, "\($0.spec.ip)") } })
    }

    /// A bouncer's side of a push: checked (signature, receiver, age), then taken in turn with
    /// every other change. Only endpoint keys are taken (nothing else is a bouncer's table), and
    /// only from a push newer than both what the watch has brought and what this droplet has
    /// of the key, deleted keys included: a late or replayed push changes nothing.
    public func takePush(_ body: Data, signature: String?) async throws -> Data {
        guard let keys = cluster?.keys, let secret = clusterState.secret else { throw APIError(.unavailable, "not in cluster mode, or the cluster's secret is not known yet") }
        guard let signature, let code = Self.hexBytes(signature),
              HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: body, using: SymmetricKey(data: secret)) else {
            throw APIError(.unauthorized, "push not signed with the cluster's secret")
        }
        let changes: PeerChanges
        do { changes = try JSONDecoder().decode(PeerChanges.self, from: body) } catch { throw APIError(.badRequest, "not a push: \(error)") }
        guard changes.to.contains(localName) else { throw APIError(.unauthorized, "push meant for droplets \(changes.to.joined(separator: ", "))") }
        guard abs(Date().timeIntervalSince1970 - changes.sentAt) < 30 else { throw APIError(.unauthorized, "push too old (or clocks too far apart)") }
        let held: Bool = try await serialized {
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
        return try JSONEncoder().encode(PeerReply(held: held))
    }

    /// The bytes of a hex string (a signature), nil when it is not one.
    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, digits.count <= 128 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Makes the cluster's secret when nobody has (create-only: the first droplet's wins), and learns it.
    func ensureClusterSecret() async {
        guard let cluster, clusterState.secret == nil else { return }
        do {
            var secret = [UInt8](repeating: 0, count: 32)
            for i in secret.indices { secret[i] = UInt8.random(in: 0...255) }
            _ = try await cluster.client.txn([.modRevision(cluster.keys.secret, equals: 0)], [.put(cluster.keys.secret, secret)])
            clusterState.secret = try await cluster.client.get(cluster.keys.secret)?.value
        } catch {
            noteClusterProblem(error)
        }
    }

    /// Where this droplet takes pushes: its substrate address and the peer port (nil: pushes off).
    public nonisolated var peerAddress: (host: String, port: Int)? {
        guard let cluster, cluster.peerPort > 0 else { return nil }
        return ("\(dataplane.address.ip)", cluster.peerPort)
    }
}

/// The routes of the peer listener: only `POST /v1/peer/changes`, signed.
public func makePeerRouter(daemon: Daemon) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: APIErrorMiddleware())
    router.post("v1/peer/changes") { request, context -> Response in
        let body = try await request.body.collect(upTo: maxRequestBody)
        let reply = try await daemon.takePush(Data(buffer: body), signature: request.headers[HTTPField.Name(peerSignatureHeader)!])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(data: reply)))
    }
    return router
}
