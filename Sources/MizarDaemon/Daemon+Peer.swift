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
    var revision: Int64
    /// Seconds since 1970 when it was sent: a push older than 30 s is refused (no replays).
    var sentAt: Double
    var events: [PeerEvent]
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

extension Daemon {
    static func sign(_ body: Data, secret: [UInt8]) -> String {
        HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
    }

    /// Pushes what a transaction wrote to `droplets` in parallel; returns those that hold it.
    func push(_ operations: [EtcdOperation], revision: Int64, to droplets: Set<String>) async -> Set<String> {
        guard let cluster, cluster.peerPort > 0, let secret = clusterState.secret else { return [] }
        let events = operations.map { operation -> PeerEvent in
            switch operation {
            case .put(let key, let value, _): PeerEvent(key: key, value: Data(value))
            case .delete(let key): PeerEvent(key: key, value: nil)
            }
        }
        guard let body = try? JSONEncoder().encode(PeerChanges(from: localName, revision: revision, sentAt: Date().timeIntervalSince1970, events: events))
        else { return [] }
        let signature = Daemon.sign(body, secret: secret), port = cluster.peerPort, logger = logger
        let targets = droplets.compactMap { name in desired.droplets[name].map { (name, "\($0.spec.ip)") } }
        return await withTaskGroup(of: String?.self) { group in
            for (name, ip) in targets {
                group.addTask {
                    var request = HTTPClientRequest(url: "http://\(ip):\(port)/v1/peer/changes")
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.headers.add(name: peerSignatureHeader, value: signature)
                    request.body = .bytes(ByteBuffer(data: body))
                    do {
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(1))
                        let reply = try await response.body.collect(upTo: 4096)
                        guard response.status == .ok, (try? JSONDecoder().decode(PeerReply.self, from: Data(buffer: reply)))?.held == true else { return nil }
                        return name
                    } catch {
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

    /// A bouncer's side of a push: checked (signature, age), then taken in turn with every
    /// other change; each key only when the push is newer than what this droplet has of it.
    public func takePush(_ body: Data, signature: String?) async throws -> Data {
        guard let keys = cluster?.keys, let secret = clusterState.secret else { throw APIError(.unavailable, "not in cluster mode, or the cluster's secret is not known yet") }
        guard let signature, Daemon.sign(body, secret: secret).utf8.elementsEqual(signature.lowercased().utf8) else {
            throw APIError(.unauthorized, "push not signed with the cluster's secret")
        }
        let changes: PeerChanges
        do { changes = try JSONDecoder().decode(PeerChanges.self, from: body) } catch { throw APIError(.badRequest, "not a push: \(error)") }
        guard abs(Date().timeIntervalSince1970 - changes.sentAt) < 30 else { throw APIError(.unauthorized, "push too old (or clocks too far apart)") }
        let held: Bool = try await serialized {
            let events = changes.events.filter { changes.revision > (clusterState.revisions[$0.key] ?? 0) }.map { e in
                EtcdEvent(kind: e.value == nil ? .delete : .put, kv: EtcdKV(key: Array(e.key.utf8), value: e.value.map(Array.init) ?? [], modRevision: changes.revision))
            }
            applyEvents(events, revision: changes.revision, keys: keys, reportsProgress: false)
            return changes.events.allSatisfy { e in
                guard case .resource(let ref) = keys.parse(e.key), ref.kind == .endpoint else { return true }
                return reconciler.holdsRemote(ref.name) == (e.value != nil)
            }
        }
        return try JSONEncoder().encode(PeerReply(held: held))
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
