import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A client of etcd's v3 API through its JSON gateway (`POST /v3/...`, the gRPC messages in
/// proto3's JSON mapping: byte fields base64, 64-bit integers as strings). Several member
/// URLs may be given: a request that cannot reach one is sent to the next, so a member lost
/// from a 3-member cluster interrupts nothing. docs/cluster.md says why the gateway and not gRPC.
public final class EtcdClient: Sendable {
    /// The members' client URLs (`http://HOST:PORT` or `https://...`), tried in order.
    public let endpoints: [String]
    private let http: HTTPClient
    /// The member that answered last: tried first, so that a dead member costs one timeout, not one per request.
    private let preferred = NIOLockedValueBox(0)
    /// Members that could not be reached, and until when they are tried last.
    private let suspects = NIOLockedValueBox([String: NIODeadline]())
    /// What one attempt may take while other members remain to be tried: a dead member's
    /// port is retried by the HTTP client until the deadline, so this is the cost of a lost member.
    public let failoverTimeout: TimeAmount = .seconds(1)
    /// How long one unary request may take before the next member is tried.
    public let requestTimeout: TimeAmount
    /// Told of every unary request: its operation (`kv_txn`, `kv_range`, `lease_keepalive`, ...),
    /// whether a member answered it, and how long it took, failovers included.
    public typealias Observer = @Sendable (_ operation: String, _ answered: Bool, _ duration: Duration) -> Void
    private let observe: Observer?

    /// `caFile` (PEM) is trusted for https members besides the system's roots; `certificate`
    /// and `key` (PEM) authenticate this client to members that ask for client certificates.
    public init(endpoints: [String], caFile: String? = nil, certificate: String? = nil, key: String? = nil,
                requestTimeout: TimeAmount = .seconds(3), observe: Observer? = nil) throws {
        let urls = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        guard !urls.isEmpty else { throw EtcdError.invalid("no etcd URL given") }
        for url in urls where !(url.hasPrefix("http://") || url.hasPrefix("https://")) || URL(string: url)?.host == nil {
            throw EtcdError.invalid("etcd URL \(url) is not http://HOST:PORT or https://HOST:PORT")
        }
        self.endpoints = urls
        self.requestTimeout = requestTimeout
        self.observe = observe
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        if let certificate, let key {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            tls.privateKey = .file(key)
        }
        // A short connect timeout: a dead member (its port refused, which the client retries until this runs out) costs
        // under a second before the next is tried; a lease of a few seconds outlives that.
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .milliseconds(750)))
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    // Not syncShutdown: the last reference may go on one of the client's own event loops.
    deinit { http.shutdown { _ in } }

    // MARK: Keys and values

    /// Every key under `prefix`, read at one revision (in pages, so that a large prefix never
    /// makes one oversized response), and that revision.
    public func range(prefix: String, pageSize: Int = 1000) async throws -> (kvs: [EtcdKV], revision: Int64) {
        var kvs: [EtcdKV] = [], start = Array(prefix.utf8), revision: Int64 = 0
        let end = Self.prefixEnd(prefix)
        while true {
            var request: [String: Any] = ["key": Self.b64(start), "range_end": Self.b64(end), "limit": pageSize]
            if revision > 0 { request["revision"] = String(revision) }
            let reply = try await call("/v3/kv/range", request)
            if revision == 0 { revision = reply.revision }
            let answer = try reply.decode(RangeResponse.self)
            let page = answer.kvs ?? []
            kvs += page
            guard answer.more == true, let last = page.last else { return (kvs, revision) }
            start = last.key + [0]
        }
    }

    /// The revision of the newest write under `prefix` still there (0: none): a watch on the
    /// prefix that stays behind it has stopped delivering.
    public func latestWrite(under prefix: String) async throws -> Int64 {
        let reply = try await call("/v3/kv/range", ["key": Self.b64(Array(prefix.utf8)), "range_end": Self.b64(Self.prefixEnd(prefix)),
                                                    "limit": 1, "sort_order": "DESCEND", "sort_target": "MOD", "keys_only": true])
        return try reply.decode(RangeResponse.self).kvs?.first?.modRevision ?? 0
    }

    /// The store's revision now (one small read).
    public func revision() async throws -> Int64 {
        try await call("/v3/kv/range", ["key": Self.b64([0]), "count_only": true]).revision
    }

    /// The value under `key`, nil when there is none.
    public func get(_ key: String) async throws -> EtcdKV? {
        let reply = try await call("/v3/kv/range", ["key": Self.b64(Array(key.utf8))])
        return try reply.decode(RangeResponse.self).kvs?.first
    }

    /// Puts and deletes in one transaction, done only when every comparison holds. Returns
    /// whether it was done and the store's revision after it (the writes' revision when done).
    @discardableResult
    public func txn(_ compares: [EtcdCompare], _ operations: [EtcdOperation]) async throws -> (succeeded: Bool, revision: Int64) {
        // Typed and encoded by JSONEncoder: a transaction of 100-odd writes goes several times faster than through JSONSerialization.
        let reply = try await call("/v3/kv/txn", payload: try JSONEncoder().encode(TxnRequest(compare: compares, success: operations)))
        return (reply.body["succeeded"] as? Bool ?? false, reply.revision)
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        try await txn([], [.put(key, value, lease: lease)]).revision
    }

    @discardableResult
    public func delete(_ key: String) async throws -> Int64 { try await txn([], [.delete(key)]).revision }

    /// Forgets history before `revision`: watches from earlier revisions then fail as compacted.
    public func compact(_ revision: Int64) async throws {
        _ = try await call("/v3/kv/compaction", ["revision": String(revision), "physical": true])
    }

    // MARK: Leases

    /// A lease of `ttl` seconds; keys put with it go when it expires.
    public func grantLease(ttl: Int) async throws -> Int64 {
        let reply = try await call("/v3/lease/grant", ["TTL": String(ttl)])
        guard let id = EtcdKV.int64(reply.body["ID"]), id != 0 else { throw EtcdError.protocolError("lease grant returned no ID: \(reply.body)") }
        return id
    }

    /// Renews `lease`; returns the seconds it has left, 0 when it has expired (its keys are gone).
    public func keepAlive(_ lease: Int64) async throws -> Int64 {
        let reply = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        return EtcdKV.int64((reply.body["result"] as? [String: Any])?["TTL"]) ?? 0
    }

    public func revoke(_ lease: Int64) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
    }

    // MARK: Transport

    struct Reply {
        var body: [String: Any]
        var revision: Int64
        /// The answer as it came.
        var bytes: ByteBuffer

        /// The answer decoded as `type`; etcd answering something else is a protocol error.
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do { return try JSONDecoder().decode(type, from: bytes) } catch { throw EtcdError.protocolError("unexpected answer: \(error)") }
        }
    }

    /// One unary request: each member in turn until one answers. A member's own error (a
    /// 4xx/5xx with etcd's message) is thrown at once; only an unreachable member moves on.
    func call(_ path: String, _ body: [String: Any]) async throws -> Reply {
        try await call(path, payload: try JSONSerialization.data(withJSONObject: body))
    }

    func call(_ path: String, payload: Data) async throws -> Reply {
        guard let observe else { return try await attempt(path, payload) }
        let clock = ContinuousClock(), start = clock.now
        let operation = path.split(separator: "/").suffix(2).joined(separator: "_")
        do {
            let reply = try await attempt(path, payload)
            observe(operation, true, clock.now - start)
            return reply
        } catch {
            // etcd's own refusal was an answer; an unreachable store (or a cancelled call) was not.
            observe(operation, { if case EtcdError.server = error { true } else { false } }(), clock.now - start)
            throw error
        }
    }

    private func attempt(_ path: String, _ payload: Data) async throws -> Reply {
        var failures: [String] = []
        let members = inTurn()
        for (attempt, base) in members.enumerated() {
            var request = HTTPClientRequest(url: base + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: payload))
            let response: HTTPClientResponse, bytes: ByteBuffer
            do {
                response = try await http.execute(request, timeout: attempt < members.count - 1 ? min(failoverTimeout, requestTimeout) : requestTimeout)
                bytes = try await response.body.collect(upTo: 64 << 20)
            } catch {
                if Task.isCancelled { throw CancellationError() }
                suspect(base)
                failures.append("\(base): \(error)")
                continue
            }
            let json = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
            guard response.status == .ok else {
                let message = json["error"] as? String ?? json["message"] as? String ?? String(buffer: bytes)
                // A member cut off from its quorum answers 503 (or "no leader"): the next may not be.
                if response.status == .serviceUnavailable || message.contains("no leader") || message.contains("timed out") {
                    failures.append("\(base): \(message)")
                    continue
                }
                throw EtcdError.server(status: Int(response.status.code), message: message)
            }
            prefer(base)
            return Reply(body: json, revision: EtcdKV.int64((json["header"] as? [String: Any])?["revision"]) ?? 0, bytes: bytes)
        }
        throw EtcdError.unavailable(failures.joined(separator: "; "))
    }

    /// Opens a watch on `prefix` from `revision` and hands each batch of events to `handle`
    /// until the stream ends (thrown: the member went away) or the task is cancelled. The
    /// first member that accepts the watch serves it. Throws `EtcdError.compacted` when
    /// `revision` is older than the store keeps.
    public func watch(prefix: String, from revision: Int64, _ handle: ([EtcdEvent], _ revision: Int64) async throws -> Void) async throws {
        let create: [String: Any] = ["create_request": ["key": Self.b64(Array(prefix.utf8)), "range_end": Self.b64(Self.prefixEnd(prefix)),
                                                        "start_revision": String(revision)]]
        let payload = try JSONSerialization.data(withJSONObject: create)
        var failures: [String] = []
        for base in inTurn() {
            var request = HTTPClientRequest(url: base + "/v3/watch")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: payload))
            let response: HTTPClientResponse
            do { response = try await http.execute(request, deadline: .distantFuture) } catch {
                if Task.isCancelled { throw CancellationError() }
                suspect(base)
                failures.append("\(base): \(error)")
                continue
            }
            guard response.status == .ok else { throw EtcdError.server(status: Int(response.status.code), message: "watch refused") }
            prefer(base)
            // The gateway writes one JSON object per line.
            var pending = [UInt8]()
            for try await chunk in response.body {
                pending += chunk.readableBytesView
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[..<newline])
                    pending.removeSubrange(...newline)
                    // Typed: this runs for every change on every droplet, and JSONSerialization cost twice as much.
                    // A line not understood ends the watch (the caller resyncs) rather than losing its events.
                    let message: WatchMessage
                    do { message = try JSONDecoder().decode(WatchMessage.self, from: Data(line)) } catch {
                        throw EtcdError.protocolError("watch: unexpected line: \(error)")
                    }
                    guard let result = message.result else {
                        throw EtcdError.server(status: 200, message: String(decoding: line, as: UTF8.self))
                    }
                    if let compacted = result.compactRevision?.value, compacted > 0 { throw EtcdError.compacted(compacted) }
                    if result.canceled == true { throw EtcdError.server(status: 200, message: "watch canceled: \(result.cancelReason ?? "")") }
                    let at = result.header?.revision?.value ?? 0
                    let events = result.events ?? []
                    if !events.isEmpty { try await handle(events, events.map(\.kv.modRevision).max() ?? at) }
                }
            }
            throw EtcdError.unavailable("\(base): the watch stream ended")
        }
        throw EtcdError.unavailable(failures.joined(separator: "; "))
    }

    /// The members: the one that answered last first, those that could not be reached lately last.
    private func inTurn() -> [String] {
        let first = preferred.withLockedValue { $0 }, now = NIODeadline.now()
        let suspected = suspects.withLockedValue { $0.filter { $0.value > now }.keys }
        let order = Array(endpoints[first...] + endpoints[..<first])
        return order.filter { !suspected.contains($0) } + order.filter { suspected.contains($0) }
    }

    private func prefer(_ base: String) {
        if let index = endpoints.firstIndex(of: base) { preferred.withLockedValue { $0 = index } }
        suspects.withLockedValue { $0[base] = nil }
    }

    private func suspect(_ base: String) {
        suspects.withLockedValue { $0[base] = .now() + .seconds(5) }
    }

    static func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The first key after every key that starts with `prefix`.
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var end = Array(prefix.utf8)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }
}

/// What went wrong talking to etcd.
public enum EtcdError: Error, Sendable, CustomStringConvertible, Equatable {
    /// No member could be reached (or none had a quorum).
    case unavailable(String)
    /// A member refused the request.
    case server(status: Int, message: String)
    /// A watch asked for history before this revision, which the store has compacted.
    case compacted(Int64)
    /// An answer that is not what the API promises.
    case protocolError(String)
    /// A bad URL or option.
    case invalid(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "etcd is unreachable (\(why))"
        case .server(let status, let message): "etcd refused the request (\(status)): \(message)"
        case .compacted(let revision): "etcd has compacted its history up to revision \(revision)"
        case .protocolError(let why): "etcd answered unexpectedly: \(why)"
        case .invalid(let why): why
        }
    }
}
