import Foundation
import MizarAPI
import MizarDataplane

/// One trace of a droplet's data plane (`GET /v1/trace`): the ring's events as API records.
///
/// Whatever happens to the request, tracing ends with it: the session turns the kernel's
/// filter off when its stream ends, when it is released unread (the client left before the
/// body ran), when a watchdog finds it stalled (a client that stopped reading) or past its
/// time, when another trace takes over a stalled one, or on `DELETE /v1/trace`.
public final class TraceSession: @unchecked Sendable {
    public let query: TraceQuery
    let id: UInt64
    private let reader: TraceReader
    private let droplet: MizarDataplane.Droplet
    private let daemon: Daemon
    private let name: String
    private let lostAtStart: UInt64
    private let lock = NSLock()
    private var lastProgress = ContinuousClock.now
    private var stopped = false
    let started = ContinuousClock.now
    private let formatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()

    /// Records a poll hands out at most: a burst is streamed in slices, never held at once.
    static let batch = 2000

    init(id: UInt64, query: TraceQuery, reader: TraceReader, droplet: MizarDataplane.Droplet, daemon: Daemon, name: String) throws {
        self.id = id
        self.query = query
        self.reader = reader
        self.droplet = droplet
        self.daemon = daemon
        self.name = name
        lostAtStart = try droplet.traceLost()
    }

    deinit {
        let (daemon, id) = (daemon, id)
        Task { await daemon.closeTrace(id) }
    }

    /// The events that came since the last call, at most `batch` (never waits).
    public func poll() throws -> [TraceRecord] {
        let endpoints = droplet.localEndpointsByIfindex()
        return try reader.next(timeoutMilliseconds: 0, limit: Self.batch).map { record($0, endpoints) }
    }

    /// Events lost since this trace began.
    public func lost() throws -> UInt64 { try droplet.traceLost() &- lostAtStart }

    /// The stream wrote something: the client is reading.
    public func progressed() { lock.withLock { lastProgress = .now } }
    var sinceProgress: Duration { lock.withLock { ContinuousClock.now - lastProgress } }

    /// True once the trace was ended from outside (watchdog, takeover, DELETE): the stream stops.
    public var isStopped: Bool { lock.withLock { stopped } }
    func stop() { lock.withLock { stopped = true } }

    private func record(_ e: TraceEvent, _ endpoints: [UInt32: EndpointID]) -> TraceRecord {
        let proto = switch e.proto {
        case 6: "tcp"
        case 17: "udp"
        case 1: "icmp"
        default: "\(e.proto)"
        }
        let ports = e.proto == 6 || e.proto == 17, ip = e.source4.value != 0 || e.destination4.value != 0
        return TraceRecord(time: formatter.string(from: e.time), droplet: name, source: e.source.rawValue, hook: e.hook?.rawValue,
                           plugin: e.plugin, verdict: e.verdict, reason: e.reason.isEmpty ? nil : e.reason, vni: e.vni, proto: ip ? proto : nil,
                           src: ip ? e.source4.description : nil, dst: ip ? e.destination4.description : nil,
                           sport: ports ? e.sourcePort : nil, dport: ports ? e.destinationPort : nil,
                           endpoint: endpoints[e.ifindex].map { "\($0.ip)" }, length: e.length)
    }
}

extension Daemon {
    /// A trace whose client has not taken anything for this long is stalled: it is ended, and
    /// another trace may take its place.
    static let traceStall: Duration = .seconds(10)

    /// Turns tracing on for `query` and hands back the session that reads it. One trace at a
    /// time per droplet: 409 while another makes progress; a stalled one is taken over.
    public func openTrace(_ query: TraceQuery) throws -> TraceSession {
        if let running = activeTrace {
            if let session = running.weak.session, session.sinceProgress < Self.traceStall {
                throw APIError(.conflict, "a trace is already running on droplet \(localName): one at a time (DELETE /v1/trace ends it)")
            }
            logger.warning("a stalled trace was taken over", metadata: ["trace": "\(running.id)"])
            running.weak.session?.stop()
        }
        let reader = try dataplane.traceReader()
        _ = try reader.next(timeoutMilliseconds: 0)  // what an earlier trace left unread
        traceCount += 1
        let session = try TraceSession(id: traceCount, query: query, reader: reader, droplet: dataplane, daemon: self, name: localName)
        try dataplane.setTracing(TraceFilter(vni: query.vni, ip: query.ip, dropsOnly: query.drops, sample: query.sample))
        activeTrace = (session.id, WeakTrace(session))
        logger.info("trace started", metadata: ["trace": "\(session.id)", "query": "\(query.queryString)"])
        Task { await self.watch(WeakTrace(session), id: session.id) }
        return session
    }

    /// Ends trace `id` if it is still the one on: the programs go back to one read of the filter per packet.
    public func closeTrace(_ id: UInt64) {
        guard activeTrace?.id == id else { return }
        do { try dataplane.setTracing(nil) } catch { logger.error("tracing could not be turned off", metadata: ["error": "\(error)"]) }
        activeTrace?.weak.session?.stop()
        activeTrace = nil
        logger.info("trace ended", metadata: ["trace": "\(id)"])
    }

    /// `DELETE /v1/trace`: ends whatever trace runs (its stream stops). Returns whether one did.
    public func stopTrace() -> Bool {
        guard let id = activeTrace?.id else { return false }
        closeTrace(id)
        return true
    }

    /// Ends a trace that stalled (its client stopped reading), outlived its `seconds`, or was
    /// released without its stream ever running. Holds the session weakly.
    private func watch(_ trace: WeakTrace, id: UInt64) async {
        while activeTrace?.id == id {
            try? await Task.sleep(for: .seconds(1))
            guard let session = trace.session else { return closeTrace(id) }
            let limit = session.query.seconds.map { Duration.milliseconds(Int($0 * 1000)) + .seconds(5) }
            if session.sinceProgress > Self.traceStall || limit.map({ ContinuousClock.now - session.started > $0 }) == true {
                logger.warning("trace stalled or overran: ended", metadata: ["trace": "\(id)"])
                closeTrace(id)
            }
        }
    }

    var tracing: Bool { activeTrace != nil }
}

/// The running trace, without keeping it alive (its release ends it).
struct WeakTrace {
    weak var session: TraceSession?
    init(_ session: TraceSession) { self.session = session }
}
