import Foundation
import Hummingbird
import MizarAPI
import MizarDataplane
import MizarNet
import MizarPlugins

/// The largest request body the API reads (docs/api.md): larger ones get 413 and change nothing.
public let maxRequestBody = 1 << 20

/// The routes of API v1 (docs/api.md, docs/openapi.yaml): handlers decode and check the
/// request, hand it to the daemon and encode its answer; every error leaves as `APIError` JSON.
/// With `remote`, every request must carry its bearer token (the TCP listener's router).
public func makeAPIRouter(daemon: Daemon, remote: RemoteAccess? = nil, metrics: APIMetrics? = nil) -> Router<BasicRequestContext> {
    let metrics = metrics ?? daemon.metrics
    let router = Router()
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: APIErrorMiddleware())
    if let remote { router.add(middleware: BearerTokenMiddleware(access: remote)) }
    let v1 = router.group("v1")

    // Prometheus' conventional path, beside the API (docs/observability.md).
    router.get("metrics") { _, _ -> Response in
        let text = try await daemon.metricsText(metrics)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    v1.get("health") { _, _ -> Response in
        let health = await daemon.health()
        return try json(health, status: health.healthy ? .ok : .serviceUnavailable)
    }
    v1.get("status") { _, _ in try json(await daemon.status()) }
    v1.get("counters") { _, _ in try json(try await daemon.counters()) }
    v1.get("bouncers") { _, _ in try json(await daemon.bouncers()) }
    v1.get("dividers") { _, _ in try json(await daemon.dividers()) }
    v1.get("plugins") { _, _ in try json(await daemon.plugins()) }
    v1.get("plugins/:name") { _, context in try json(try await daemon.plugin(try context.parameters.require("name"))) }
    v1.post("plugins/discover") { _, _ in try json(await daemon.discoverPlugins()) }

    v1.get("trace") { request, _ -> Response in
        let parameters = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
        let session = try await daemon.openTrace(try TraceQuery(parameters: parameters))
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody { writer in
            do {
                try await stream(session, to: &writer)
            } catch {
                await daemon.closeTrace(session.id)  // the client went away (a write failed): tracing stops with it
                throw error
            }
            await daemon.closeTrace(session.id)
            try await writer.finish(nil)
        })
    }
    v1.delete("trace") { _, _ -> Response in
        try json(StopTraceResult(stopped: await daemon.stopTrace()))
    }

    v1.get("endpoints/:name/check") { _, context in try json(try await daemon.check(endpoint: try context.parameters.require("name"))) }

    v1.post("apply") { request, _ in
        let body = try await decode(ApplyRequest.self, from: request)
        return try json(try await daemon.apply(body))
    }

    for kind in Kind.allCases {
        v1.get(RouterPath(kind.path)) { _, _ in try json(await daemon.list(kind)) }
        v1.get(RouterPath("\(kind.path)/:name")) { _, context in
            try json(try await daemon.get(ResourceReference(kind: kind, name: try context.parameters.require("name"))))
        }
        v1.put(RouterPath("\(kind.path)/:name")) { request, context in
            let name = try context.parameters.require("name")
            let resource = try await decodingErrorsAsBadRequest { try AnyResource.decode(kind, from: try await body(of: request)) }
            guard resource.name == name else { throw APIError(.badRequest, "metadata.name \(resource.name) differs from the path's \(name)") }
            // `If-None-Match: *`: create only (what the CNI plugin asks, so as never to re-plug a live attachment).
            let onlyIfAbsent = request.headers[.ifNoneMatch].map { $0.trimmingCharacters(in: .whitespaces) == "*" } ?? false
            let (stored, created) = try await daemon.put(resource, onlyIfAbsent: onlyIfAbsent)
            return try json(stored, status: created ? .created : .ok)
        }
        v1.delete(RouterPath("\(kind.path)/:name")) { _, context in
            let ref = ResourceReference(kind: kind, name: try context.parameters.require("name"))
            return try json(try await daemon.apply(ApplyRequest(delete: [ref])))
        }
    }
    return router
}

/// Writes a trace's records as NDJSON, a batch per write, until its count or time is reached,
/// a write fails (the client left) or the trace is ended from outside. Polls run off the
/// server's event loop. A `{"lost":N}` line follows lost events and, every 2 s, a quiet
/// stream, so that a client that left is noticed.
private func stream(_ session: TraceSession, to writer: inout any ResponseBodyWriter) async throws {
    let clock = ContinuousClock(), start = clock.now
    let deadline = session.query.seconds.map { start + .milliseconds(Int($0 * 1000)) }
    var sent = 0, lostSent: UInt64 = 0, lastWrite = start
    func lines(_ records: [TraceRecord]) throws -> ByteBuffer {
        var data = Data()
        for record in records {
            data.append(try encoder.encode(record))
            data.append(UInt8(ascii: "\n"))
        }
        return ByteBuffer(bytes: data)
    }
    while !session.isStopped, deadline.map({ clock.now < $0 }) ?? true {
        let polled = try await Task.detached { try session.poll() }.value
        let records = Array(polled.prefix(session.query.count.map { $0 - sent } ?? polled.count))
        if !records.isEmpty {
            try await writer.write(lines(records))
            sent += records.count
            lastWrite = clock.now
            session.progressed()
        }
        let lost = try session.lost()
        if lost != lostSent || clock.now - lastWrite > .seconds(2) {
            try await writer.write(lines([TraceRecord(lost: lost)]))
            (lostSent, lastWrite) = (lost, clock.now)
            session.progressed()
        }
        if let count = session.query.count, sent >= count { break }
        if polled.count < TraceSession.batch { try await Task.sleep(for: .milliseconds(50)) }
    }
    try await writer.write(lines([TraceRecord(lost: try session.lost())]))
}

/// A request's body, at most `maxRequestBody` bytes (413 beyond).
private func body(of request: Request) async throws -> Data {
    var request = request
    return Data(try await request.collectBody(upTo: maxRequestBody).readableBytesView)
}

/// Reads and decodes a JSON body.
private func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
    let data = try await body(of: request)
    return try await decodingErrorsAsBadRequest { try JSONDecoder().decode(T.self, from: data) }
}

/// A body that does not decode is the client's error (400), said where in the document.
private func decodingErrorsAsBadRequest<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as DecodingError { throw APIError(.badRequest, error.summary) }
}

private let encoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return e
}()

/// A JSON response.
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try encoder.encode(value)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Turns every error a handler throws into the API's error shape and status.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = APIError.from(error)
            if apiError.code == APIError.Code.internal.rawValue || apiError.code == APIError.Code.dataplane.rawValue {
                context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(apiError)"])
            }
            let status = APIError.Code(rawValue: apiError.code)?.httpStatus ?? 500
            return try json(apiError, status: HTTPResponse.Status(code: status))
        }
    }
}

extension APIError {
    /// The API's view of any error: library errors keep their message and get a fitting code.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as DataplaneError:
            let code: Code = e.code == .invalidArgument ? .invalid : e.code == .conflict ? .conflict : e.code == .notFound ? .invalid
                : e.code == .full ? .exhausted : .dataplane
            return APIError(code, e.message)
        case let e as PluginError: return APIError(e.code == .invalidConfig ? .invalid : .dataplane, e.description)
        case let e as NetError:
            // What a request named that the system lacks or already has is the request's fault.
            let code: Code = e.code == .notFound || e.code == .invalidArgument ? .invalid : e.code == .exists ? .conflict : .dataplane
            return APIError(code, e.description)
        case let e as HTTPError:
            let code: Code = e.status == .notFound ? .notFound : e.status == .contentTooLarge ? .tooLarge : e.status.code < 500 ? .badRequest : .internal
            return APIError(code, e.body ?? e.status.reasonPhrase)
        case let e as any HTTPResponseError:
            if e.status == .contentTooLarge { return APIError(.tooLarge, "the request body is over \(maxRequestBody) bytes") }
            return APIError(e.status.code < 500 ? .badRequest : .internal, "\(e)")
        default: return APIError(.internal, "\(error)")
        }
    }
}
