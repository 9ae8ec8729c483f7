import Foundation
import MizarAPI
import MizarDataplane

/// One trace of a droplet's data plane (`GET /v1/trace`): the ring's events as API records.
public final class TraceSession: @unchecked Sendable {
    public let query: TraceQuery
    private let reader: TraceReader
    private let droplet: MizarDataplane.Droplet
    private let name: String
    private let lostAtStart: UInt64
    private let formatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()

    init(query: TraceQuery, reader: TraceReader, droplet: MizarDataplane.Droplet, name: String) throws {
        self.query = query
        self.reader = reader
        self.droplet = droplet
        self.name = name
        lostAtStart = try droplet.traceLost()
    }

    /// The events that came since the last call (never waits).
    public func poll() throws -> [TraceRecord] {
        try reader.next(timeoutMilliseconds: 0).map(record)
    }

    /// Events lost since this trace began.
    public func lost() throws -> UInt64 { try droplet.traceLost() &- lostAtStart }

    private func record(_ e: TraceEvent) -> TraceRecord {
        let proto = switch e.proto {
        case 6: "tcp"
        case 17: "udp"
        case 1: "icmp"
        default: "\(e.proto)"
        }
        let ports = e.proto == 6 || e.proto == 17
        return TraceRecord(time: formatter.string(from: e.time), droplet: name, source: e.source.rawValue, hook: e.hook?.rawValue,
                           plugin: e.plugin, verdict: e.verdict, reason: e.reason.isEmpty ? nil : e.reason, vni: e.vni, proto: proto,
                           src: e.source4.description, dst: e.destination4.description, sport: ports ? e.sourcePort : nil,
                           dport: ports ? e.destinationPort : nil,
                           endpoint: e.ifindex == 0 ? nil : droplet.localEndpoint(ifindex: e.ifindex).map { "\($0.ip)" }, length: e.length)
    }
}

extension Daemon {
    /// Turns tracing on for `query` and hands back the session that reads it; one trace at
    /// a time per droplet (409 while another runs). `closeTrace` turns it off.
    public func openTrace(_ query: TraceQuery) throws -> TraceSession {
        guard !tracing else { throw APIError(.conflict, "a trace is already running on droplet \(localName): one at a time") }
        let reader = try dataplane.traceReader()
        _ = try reader.next(timeoutMilliseconds: 0)  // what an earlier trace left unread
        try dataplane.setTracing(TraceFilter(vni: query.vni, ip: query.ip, dropsOnly: query.drops, sample: query.sample))
        tracing = true
        logger.info("trace started", metadata: ["query": "\(query.queryString)"])
        return try TraceSession(query: query, reader: reader, droplet: dataplane, name: localName)
    }

    /// Turns tracing off (the programs go back to one read of the filter per packet).
    public func closeTrace() {
        do { try dataplane.setTracing(nil) } catch { logger.error("tracing could not be turned off", metadata: ["error": "\(error)"]) }
        tracing = false
        logger.info("trace ended")
    }
}
