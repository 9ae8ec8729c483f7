import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MizarAPI
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A client of transitd's API: over its Unix socket (the default) or, for remote
/// management, over HTTPS with a bearer token.
public struct MizarClient: Sendable {
    /// Where transitd listens.
    public enum Server: Sendable, Hashable {
        case unixSocket(String)
        /// `https://HOST:PORT` with the token sent as `Authorization: Bearer`; the server's
        /// certificate is checked against `caFile` (PEM) when given, else the system's roots.
        case https(String, token: String, caFile: String? = nil)
    }

    /// transitd could not be reached (no socket, refused, timed out): `mizarctl` exits 3.
    public struct Unreachable: Error, CustomStringConvertible {
        public let server: String
        public let reason: String
        public var description: String { "cannot reach transitd at \(server): \(reason)" }
    }

    public static let defaultSocket = "/run/mizar/transitd.sock"

    public let server: Server
    public let timeout: TimeAmount

    public init(server: Server = .unixSocket(MizarClient.defaultSocket), timeout: TimeAmount = .seconds(60)) {
        self.server = server
        self.timeout = timeout
    }

    // MARK: Typed calls

    public func health() async throws -> Health { try await call(.GET, "/v1/health", accept: [200, 503]) }
    public func status() async throws -> DaemonStatus { try await call(.GET, "/v1/status") }
    public func counters() async throws -> Counters { try await call(.GET, "/v1/counters") }
    public func plugins() async throws -> [PluginInfo] { try await call(.GET, "/v1/plugins") }
    public func plugin(_ name: String) async throws -> PluginInfo { try await call(.GET, "/v1/plugins/\(escape(name))") }
    public func bouncers() async throws -> [BouncerRole] { try await call(.GET, "/v1/bouncers") }
    public func dividers() async throws -> [DividerRole] { try await call(.GET, "/v1/dividers") }

    public func list(_ kind: Kind) async throws -> [AnyResource] { try await call(.GET, "/v1/\(kind.path)") }
    public func get(_ kind: Kind, _ name: String) async throws -> AnyResource { try await call(.GET, "/v1/\(kind.path)/\(escape(name))") }

    /// Creates or replaces one resource; returns it as stored (defaults filled in, with status).
    public func put(_ resource: AnyResource) async throws -> AnyResource {
        try await call(.PUT, "/v1/\(resource.kind.path)/\(escape(resource.name))", body: resource)
    }

    public func delete(_ kind: Kind, _ name: String) async throws -> ApplyResult {
        try await call(.DELETE, "/v1/\(kind.path)/\(escape(name))")
    }

    /// Applies and deletes in one transaction (at most 1 MiB of request: see `applyInChunks`).
    public func apply(_ request: ApplyRequest) async throws -> ApplyResult { try await call(.POST, "/v1/apply", body: request) }

    /// Applies many resources (and deletes many) as consecutive requests of at most `limit`
    /// bytes each, and in cluster mode of at most as many resources as one etcd transaction
    /// takes (transitd's status says): deletes first, then resources in kind order (what others
    /// refer to first).
    /// Each request is all or nothing; a failure stops the rest and throws `PartialApply`,
    /// which says what the requests before it did.
    public func applyInChunks(_ resources: [AnyResource], deleting: [ResourceReference] = [], limit: Int = 900_000) async throws -> ApplyResult {
        var items: [ApplyResult.Item] = []
        var maxResources = Int.max
        if resources.count + deleting.count > 1, let cap = try await status().cluster?.maxResourcesPerRequest { maxResources = cap }
        let encoder = JSONEncoder()
        var requests: [ApplyRequest] = [], current = ApplyRequest(), size = 0
        func add(_ bytes: Int, _ put: (inout ApplyRequest) -> Void) {
            if size + bytes > limit || current.apply.count + current.delete.count >= maxResources, !(current.apply.isEmpty && current.delete.isEmpty) {
                requests.append(current)
                current = ApplyRequest()
                size = 0
            }
            put(&current)
            size += bytes
        }
        for ref in deleting.sorted(by: { $0.kind > $1.kind }) { add(try encoder.encode(ref).count + 1) { $0.delete.append(ref) } }
        if !current.delete.isEmpty { requests.append(current); current = ApplyRequest(); size = 0 }
        for resource in resources.sorted(by: { $0.kind < $1.kind }) { add(try encoder.encode(resource).count + 1) { $0.apply.append(resource) } }
        if !(current.apply.isEmpty && current.delete.isEmpty) { requests.append(current) }
        for request in requests {
            do { items += try await apply(request).items } catch {
                guard !items.isEmpty else { throw error }
                throw PartialApply(done: ApplyResult(items: items), error: error)
            }
        }
        return ApplyResult(items: items)
    }

    /// An apply split into several requests failed after some of them were applied.
    public struct PartialApply: Error, CustomStringConvertible {
        /// What the requests before the failing one did (they stay applied).
        public let done: ApplyResult
        public let error: any Error
        public var description: String { "\(error) (after \(done.items.count) resources were applied)" }
    }

    /// Discovers third-party plugins in transitd's plugin directory.
    public func discoverPlugins() async throws -> DiscoverResult { try await call(.POST, "/v1/plugins/discover") }

    /// Streams `GET /v1/trace`: each record as transitd sends it, until its count or time is
    /// reached or the caller stops iterating (which ends the trace on transitd).
    public func trace(_ query: TraceQuery) async throws -> AsyncThrowingStream<TraceRecord, any Error> {
        if case .unixSocket(let socket) = server, !MizarClient.answers(socket: socket) {
            throw Unreachable(server: socket, reason: FileManager.default.fileExists(atPath: socket) ? "nothing listens on the socket" : "no socket there")
        }
        var request = HTTPClientRequest(url: url("/v1/trace?" + query.queryString))
        request.headers.add(name: "Accept", value: "application/x-ndjson")
        if case .https(_, let token, _) = server { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let http = try httpClient()
        let response: HTTPClientResponse
        do {
            // A trace without an end waits a year; a bad `seconds` (transitd refuses it) no longer than a minute.
            let seconds = query.seconds.flatMap { $0.isFinite && $0 > 0 && $0 <= 86400 ? Int64($0) : 0 } ?? 31_536_000
            response = try await http.execute(request, timeout: .seconds(seconds + 60))
        } catch {
            throw Unreachable(server: describe(server), reason: "\(error)")
        }
        guard response.status.code == 200 else {
            let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
            throw (try? JSONDecoder().decode(APIError.self, from: data)) ?? APIError(.internal, "HTTP \(response.status.code) from transitd")
        }
        let body = response.body
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var pending = Data()
                    for try await buffer in body {
                        pending.append(contentsOf: buffer.readableBytesView)
                        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = pending[pending.startIndex..<newline]
                            pending.removeSubrange(pending.startIndex...newline)
                            if !line.isEmpty { continuation.yield(try JSONDecoder().decode(TraceRecord.self, from: Data(line))) }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
                if http !== HTTPClient.shared { try? await http.shutdown() }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: Transport

    private struct Empty: Encodable {}

    func call<T: Decodable>(_ method: HTTPMethod, _ path: String, accept: Set<Int> = [200, 201]) async throws -> T {
        try await call(method, path, body: Optional<Empty>.none, accept: accept)
    }

    func call<T: Decodable, B: Encodable>(_ method: HTTPMethod, _ path: String, body: B?, accept: Set<Int> = [200, 201]) async throws -> T {
        // A socket nobody listens on would have the connection pool retry until the deadline.
        if case .unixSocket(let socket) = server, !MizarClient.answers(socket: socket) {
            throw Unreachable(server: socket, reason: FileManager.default.fileExists(atPath: socket) ? "nothing listens on the socket" : "no socket there")
        }
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if case .https(_, let token, _) = server { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        }
        let response: HTTPClientResponse
        var data: Data
        let http = try httpClient()
        do {
            response = try await http.execute(request, timeout: timeout)
            data = Data(buffer: try await response.body.collect(upTo: 256 << 20))
        } catch {
            if http !== HTTPClient.shared { try? await http.shutdown() }
            throw Unreachable(server: describe(server), reason: "\(error)")
        }
        if http !== HTTPClient.shared { try await http.shutdown() }
        guard accept.contains(Int(response.status.code)) else {
            if let apiError = try? JSONDecoder().decode(APIError.self, from: data) { throw apiError }
            throw APIError(.internal, "HTTP \(response.status.code) from transitd: \(String(decoding: data, as: UTF8.self))")
        }
        if data.isEmpty { data = Data("{}".utf8) }
        return try JSONDecoder().decode(T.self, from: data)
    }

    /// The shared client for the socket; for HTTPS one that trusts `caFile` (shut down after the call).
    private func httpClient() throws -> HTTPClient {
        guard case .https(_, _, let caFile?) = server else { return HTTPClient.shared }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = tls
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private func url(_ path: String) -> String {
        switch server {
        case .unixSocket(let socket): URL(httpURLWithSocketPath: socket, uri: path)!.absoluteString
        case .https(let base, _, _): base.hasSuffix("/") ? String(base.dropLast()) + path : base + path
        }
    }

    private func describe(_ server: Server) -> String {
        switch server {
        case .unixSocket(let path): path
        case .https(let base, _, _): base
        }
    }

    private func escape(_ name: String) -> String { name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name }
}

extension MizarClient {
    /// True when something accepts connections on the Unix socket at `path` (a transitd
    /// that is up, or one still starting its HTTP server).
    public static func answers(socket path: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}
