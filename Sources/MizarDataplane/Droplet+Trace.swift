import CMizarABI
import Foundation
import MizarBPF
import MizarNet
import MizarPlugins

/// Which frames tracing records (docs/observability.md): their drops, or every decision.
public struct TraceFilter: Sendable, Equatable, Codable {
    /// Only this VPC; nil for any.
    public var vni: UInt32?
    /// Only frames from or to this (inner) address; nil for any.
    public var ip: IPv4Address?
    /// Drops only (the default), or every decision: forwards, deliveries, plugin verdicts.
    public var dropsOnly: Bool
    /// One matching frame in `sample` (1: all).
    public var sample: UInt32

    public init(vni: UInt32? = nil, ip: IPv4Address? = nil, dropsOnly: Bool = true, sample: UInt32 = 1) {
        self.vni = vni
        self.ip = ip
        self.dropsOnly = dropsOnly
        self.sample = max(sample, 1)
    }

    var c: mz_trace_filter {
        mz_trace_filter(flags: UInt32(MZ_TRACE_ON) | (dropsOnly ? 0 : UInt32(MZ_TRACE_ALL)), vni: vni ?? 0, ip: ip?.networkOrder ?? 0, sample: sample)
    }
}

/// One decision a program of the data plane took on a frame, named.
public struct TraceEvent: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable { case transit, agent, plugin }

    public var time: Date
    public var source: Source
    /// The hook of a plugin's decision.
    public var hook: PluginHook?
    /// The plugin that decided (nil for the core programs).
    public var plugin: String?
    /// `drop`, `pass`, `tx`, `redirect` (core programs); `drop`, `continue`, `pass`, `aborted` (plugins).
    public var verdict: String
    /// The core's counter slot (`spoofed-ip`, `unknown-endpoint`...) or the plugin's reason name.
    public var reason: String
    public var reasonCode: UInt16
    public var vni: UInt32
    public var proto: UInt8
    public var source4: IPv4Address
    public var destination4: IPv4Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The endpoint's host-side veth, when the program knew it (0 otherwise).
    public var ifindex: UInt32
    public var length: UInt32

    public var dropped: Bool { verdict == "drop" }
}

/// Reads a droplet's trace ring: events as the programs emitted them, named.
public final class TraceReader: @unchecked Sendable {
    private let ring: RingBuffer
    private let plugins: PluginChains
    /// CLOCK_MONOTONIC (the programs' clock) to wall time, measured once.
    private let bootTime: Date

    init(ring: RingBuffer, plugins: PluginChains) {
        self.ring = ring
        self.plugins = plugins
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        bootTime = Date().addingTimeInterval(-(Double(now.tv_sec) + Double(now.tv_nsec) / 1e9))
    }

    /// The events that came within `timeoutMilliseconds` (0: those already there), at most `limit`.
    public func next(timeoutMilliseconds: Int32, limit: Int = .max) throws -> [TraceEvent] {
        var owners: [UInt16: (hook: PluginHook, plugin: String, reasons: [Int: String])?] = [:]  // one lookup per plugin per batch
        return try ring.poll(mz_trace_event.self, timeoutMilliseconds: timeoutMilliseconds, limit: limit).map { e in
            event(e) { slot in
                if let known = owners[slot] { return known }
                let owner = plugins.owner(ofSlot: UInt32(slot))
                owners[slot] = owner
                return owner
            }
        }
    }

    private func event(_ e: mz_trace_event, owner: (UInt16) -> (hook: PluginHook, plugin: String, reasons: [Int: String])?) -> TraceEvent {
        let source: TraceEvent.Source, verdict: String, reason: String
        var hook: PluginHook?, plugin: String?
        switch UInt32(e.source) {
        case MZ_TRACE_PLUGIN.rawValue:
            source = .plugin
            let owner = owner(e.slot)
            hook = owner?.hook
            plugin = owner?.plugin ?? "slot\(e.slot)"
            verdict = PluginVerdict(rawValue: UInt32(e.verdict))?.description ?? "verdict\(e.verdict)"
            reason = verdict == "drop" ? owner?.reasons[Int(e.reason)] ?? "reason\(e.reason)" : ""
        case MZ_TRACE_AGENT.rawValue:
            source = .agent
            verdict = Self.kind(e.verdict)
            reason = Int(e.reason) < Self.agentReasons.count ? Self.agentReasons[Int(e.reason)] : "slot\(e.reason)"
        default:
            source = .transit
            verdict = Self.kind(e.verdict)
            reason = Int(e.reason) < Self.transitReasons.count ? Self.transitReasons[Int(e.reason)] : "slot\(e.reason)"
        }
        return TraceEvent(time: bootTime.addingTimeInterval(Double(e.ts_ns) / 1e9), source: source, hook: hook, plugin: plugin,
                          verdict: verdict, reason: reason, reasonCode: e.reason, vni: e.vni,
                          proto: e.proto, source4: IPv4Address(networkOrder: e.saddr), destination4: IPv4Address(networkOrder: e.daddr),
                          sourcePort: UInt16(bigEndian: e.sport), destinationPort: UInt16(bigEndian: e.dport), ifindex: e.ifindex, length: e.len)
    }

    /// The core's counter slots as trace reasons: their names with `-` (`spoofed-ip`).
    static let transitReasons = TransitStat.allCases.map { $0.description.replacingOccurrences(of: "_", with: "-") }
    static let agentReasons = AgentStat.allCases.map { $0.description.replacingOccurrences(of: "_", with: "-") }

    /// `enum mz_stat_kind` as a verdict word.
    static func kind(_ kind: UInt8) -> String {
        switch UInt32(kind) {
        case MZ_STAT_DROP.rawValue: "drop"
        case MZ_STAT_TX.rawValue: "tx"
        case MZ_STAT_REDIRECT.rawValue: "redirect"
        default: "pass"
        }
    }
}

extension Droplet {
    /// Turns tracing on with `filter`, or off with nil. Off, each program reads the filter
    /// once per packet and does nothing more.
    public func setTracing(_ filter: TraceFilter?) throws {
        try BPFMap<UInt32, mz_trace_filter>(objects.map(MZ_TRACE_MAP)).update(0, filter?.c ?? mz_trace_filter())
    }

    /// Whether tracing is on.
    public func isTracing() throws -> Bool {
        (try BPFMap<UInt32, mz_trace_filter>(objects.map(MZ_TRACE_MAP)).lookup(0)?.flags ?? 0) != 0
    }

    /// Events the ring had no room for since the droplet's maps were made, summed over CPUs.
    public func traceLost() throws -> UInt64 {
        try PerCPUMap<UInt32, UInt64>(objects.map(MZ_TRACE_LOST_MAP)).lookup(0)?.reduce(0, +) ?? 0
    }

    /// A reader of the trace ring. One at a time: events go to whichever reader polls first.
    public func traceReader() throws -> TraceReader {
        TraceReader(ring: try RingBuffer(objects.map(MZ_TRACE_EVENTS_MAP)), plugins: plugins)
    }
}

extension Droplet {
    /// The local endpoints by the ifindex of their host-side veth (what trace events name).
    public func localEndpointsByIfindex() -> [UInt32: EndpointID] {
        lock.withLock { Dictionary(state.locals.map { (UInt32($0.value.ifindex), $0.key) }, uniquingKeysWith: { a, _ in a }) }
    }
}
