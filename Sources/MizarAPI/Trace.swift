#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MizarAddresses

/// `GET /v1/trace`: which frames to trace (docs/observability.md), as its query says them.
public struct TraceQuery: Sendable, Hashable {
    /// Only frames from or to this (inner) address.
    public var ip: IPv4Address?
    /// Only this VPC.
    public var vni: UInt32?
    /// Drops only (true, the default), or every decision.
    public var drops: Bool
    /// One matching frame in `sample`.
    public var sample: UInt32
    /// Stop after this many events (nil: until the client goes).
    public var count: Int?
    /// Stop after this many seconds (nil: until the client goes).
    public var seconds: Double?

    public init(ip: IPv4Address? = nil, vni: UInt32? = nil, drops: Bool = true, sample: UInt32 = 1, count: Int? = nil, seconds: Double? = nil) {
        self.ip = ip
        self.vni = vni
        self.drops = drops
        self.sample = sample
        self.count = count
        self.seconds = seconds
    }

    /// The query string (without `?`).
    public var queryString: String {
        var items = ["drops=\(drops)", "sample=\(sample)"]
        if let ip { items.append("ip=\(ip)") }
        if let vni { items.append("vni=\(vni)") }
        if let count { items.append("count=\(count)") }
        if let seconds { items.append("seconds=\(seconds)") }
        return items.joined(separator: "&")
    }

    /// Parses query parameters; a bad value is the client's error, said by name.
    public init(parameters: [String: String]) throws {
        func value<T>(_ name: String, _ parse: (String) -> T?, _ valid: (T) -> Bool = { _ in true }) throws -> T? {
            guard let text = parameters[name] else { return nil }
            guard let parsed = parse(text), valid(parsed) else { throw APIError(.badRequest, "query parameter \(name)=\(text) is not valid") }
            return parsed
        }
        if let unknown = parameters.keys.sorted().first(where: { !["ip", "vni", "drops", "sample", "count", "seconds"].contains($0) }) {
            throw APIError(.badRequest, "unknown query parameter \(unknown) (ip, vni, drops, sample, count, seconds)")
        }
        self.init(ip: try value("ip", IPv4Address.init), vni: try value("vni", UInt32.init, { $0 >= 1 && $0 < 1 << 24 }),
                  drops: try value("drops", Bool.init) ?? true, sample: try value("sample", UInt32.init, { $0 >= 1 }) ?? 1,
                  count: try value("count", Int.init, { $0 >= 1 }), seconds: try value("seconds", Double.init, { $0 > 0 && $0 <= 86400 }))
    }
}

/// One line of `GET /v1/trace`'s NDJSON stream: a decision on a frame, or (with `lost` set
/// and nothing else) how many events the ring buffer had no room for so far.
public struct TraceRecord: Codable, Sendable, Hashable {
    /// RFC 3339 with milliseconds.
    public var time: String?
    public var droplet: String?
    /// `transit` (transit XDP), `agent` (the transit agent) or `plugin`.
    public var source: String?
    /// The plugin's hook.
    public var hook: String?
    public var plugin: String?
    /// `drop`, `pass`, `tx`, `redirect`; a plugin's `continue`, `drop`, `pass`, `aborted`.
    public var verdict: String?
    /// The core's counter slot or the plugin's named drop reason.
    public var reason: String?
    public var vni: UInt32?
    /// `tcp`, `udp`, `icmp` or the protocol number.
    public var proto: String?
    public var src: String?
    public var dst: String?
    public var sport: UInt16?
    public var dport: UInt16?
    /// The local endpoint whose veth the program saw, when it knew it.
    public var endpoint: String?
    public var length: UInt32?
    /// Events lost since the trace began (a `lost` line).
    public var lost: UInt64?

    public init(time: String? = nil, droplet: String? = nil, source: String? = nil, hook: String? = nil, plugin: String? = nil,
                verdict: String? = nil, reason: String? = nil, vni: UInt32? = nil, proto: String? = nil, src: String? = nil,
                dst: String? = nil, sport: UInt16? = nil, dport: UInt16? = nil, endpoint: String? = nil, length: UInt32? = nil,
                lost: UInt64? = nil) {
        self.time = time
        self.droplet = droplet
        self.source = source
        self.hook = hook
        self.plugin = plugin
        self.verdict = verdict
        self.reason = reason
        self.vni = vni
        self.proto = proto
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.endpoint = endpoint
        self.length = length
        self.lost = lost
    }

    /// One line for a person: `12:00:01.234 hostb ingress acl DROP default-deny tcp 10.0.1.2:41234 -> 10.0.1.3:5201 vni 100`.
    public var line: String {
        if let lost, verdict == nil { return "lost \(lost) events (the ring buffer was full)" }
        let clock = time.map { String($0.dropFirst(11).prefix(12)) } ?? "-"
        let place = source == "plugin" ? "\(hook ?? "-") \(plugin ?? "-")" : "\(source ?? "-") core"
        func at(_ ip: String?, _ port: UInt16?) -> String { (ip ?? "-") + ((port ?? 0) > 0 ? ":\(port!)" : "") }
        var text = "\(clock) \(droplet ?? "-") \(place) \((verdict ?? "-").uppercased()) \(reason ?? "-") \(proto ?? "-") "
        text += "\(at(src, sport)) -> \(at(dst, dport)) vni \(vni ?? 0)"
        if let endpoint { text += " endpoint \(endpoint)" }
        return text
    }
}

/// `DELETE /v1/trace`: whether a trace was running (it is ended either way).
public struct StopTraceResult: Codable, Sendable, Hashable {
    public var stopped: Bool
    public init(stopped: Bool) { self.stopped = stopped }
}
