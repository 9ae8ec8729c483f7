import Foundation
import Hummingbird
import MizarAPI
import MizarBPF
import MizarDataplane
import MizarPlugins
import Prometheus

/// transitd's own metrics, kept for its life (docs/observability.md): API requests by route,
/// method and status code, and their latency; in cluster mode, etcd requests and pushes to bouncers.
public final class APIMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private static let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500),
                                              .seconds(2), .seconds(10)]
    /// Finer at the low end: a healthy etcd answers in about a millisecond.
    private static let storeBuckets: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                   .milliseconds(25), .milliseconds(100), .seconds(1), .seconds(5)]

    public init() {}

    /// One request to etcd: `operation` is its API call (`kv_txn`, `kv_range`, `lease_keepalive`, ...).
    func recordStore(operation: String, answered: Bool, duration: Duration) {
        registry.makeCounter(name: "mizar_store_requests_total", labels: [("operation", operation), ("outcome", answered ? "answered" : "unreachable")],
                             help: "Requests to the cluster store (etcd), by operation and whether a member answered").increment()
        registry.makeDurationHistogram(name: "mizar_store_request_duration_seconds", labels: [("operation", operation)], buckets: Self.storeBuckets,
                                       help: "Cluster store (etcd) request latency, failovers included, by operation").record(duration)
    }

    /// One push of a change to a bouncer: `outcome` is `held`, `not_held` (behind), `refused` or `failed` (unanswered).
    func recordPush(outcome: String, duration: Duration) {
        registry.makeCounter(name: "mizar_peer_pushes_total", labels: [("outcome", outcome)],
                             help: "Pushes to bouncers (a change too large for one datagram is several), by outcome: held, not_held (behind), refused, failed (unanswered)").increment()
        registry.makeDurationHistogram(name: "mizar_peer_push_duration_seconds", labels: [], buckets: Self.storeBuckets,
                                       help: "Latency of a push to a bouncer until it answered, or until it was given up (1 s)").record(duration)
    }

    func recordPushTaken(outcome: String) {
        registry.makeCounter(name: "mizar_peer_pushes_taken_total", labels: [("outcome", outcome)],
                             help: "Pushes from other droplets, by outcome (held, not_held, refused: not addressed here or not a push); dropped: pushes not signed with the cluster's secret or sent more than 30 s ago, and answers to this droplet's pushes that fail the signature or name check").increment()
    }

    func record(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(name: "mizar_api_requests_total", labels: [("route", route), ("method", method), ("code", "\(status)")],
                             help: "API requests answered, by route template, method and HTTP status").increment()
        registry.makeDurationHistogram(name: "mizar_api_request_duration_seconds", labels: [("route", route), ("method", method)],
                                       buckets: Self.buckets, help: "API request latency, by route template and method").record(duration)
    }
}

/// Counts every request the router answers (outside the error middleware, so errors are
/// counted with the status they got). Routes are the matched templates: labels stay bounded.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock(), start = clock.now
        do {
            let response = try await next(request, context)
            metrics.record(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code,
                           duration: clock.now - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.record(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status, duration: clock.now - start)
            throw error
        }
    }
}

extension Daemon {
    /// What a scrape needs of the daemon's own state, taken in one short visit to the actor.
    func metricsSnapshot() -> (endpointNames: [EndpointID: String], writes: Int, failures: Int, tracing: Bool) {
        var names: [EndpointID: String] = [:]
        for id in dataplane.localEndpoints.map(\.id) { names[id] = desired.endpointName(vni: id.vni.rawValue, ip: id.ip) }
        return (names, reconciler.writes, failures.count, tracing)
    }

    /// The Prometheus text of the data plane as the kernel counts it now, then transitd's own
    /// (`GET /metrics`). Kernel counters are read fresh on every scrape, off the actor: a slow
    /// scrape (a bouncer's large table counted) holds up no API request.
    public nonisolated func metricsText(_ api: APIMetrics) async throws -> String {
        let (endpointNames, writes, failureCount, tracing) = await metricsSnapshot()
        let r = PrometheusCollectorRegistry()
        func count(_ name: String, _ labels: [(String, String)], _ value: UInt64, _ help: String) {
            r.makeCounter(name: name, labels: labels, help: help).increment(by: Int64(clamping: value))
        }
        func gauge(_ name: String, _ labels: [(String, String)], _ value: Double, _ help: String) {
            r.makeGauge(name: name, labels: labels, help: help).set(value)
        }
        /// `drop`, `pass`, `tx`, `redirect`, or `event` for a slot counted beside an outcome.
        func verdict(_ action: XDPAction?) -> String { action.map { String("\($0)".dropFirst(4)).lowercased() } ?? "event" }
        let transit = try dataplane.transitCounters(), agent = try dataplane.agentCounters()
        for slot in TransitStat.allCases {
            let labels = [("slot", slot.description), ("verdict", verdict(slot.action))]
            count("mizar_transit_xdp_packets_total", labels, transit[slot].packets, "Transit XDP's packets by outcome slot (events are counted beside one)")
            count("mizar_transit_xdp_bytes_total", labels, transit[slot].bytes, "Transit XDP's bytes by outcome slot")
        }
        for slot in AgentStat.allCases {
            let labels = [("slot", slot.description), ("verdict", verdict(slot.action))]
            count("mizar_agent_packets_total", labels, agent[slot].packets, "The transit agents' packets by outcome slot")
            count("mizar_agent_bytes_total", labels, agent[slot].bytes, "The transit agents' bytes by outcome slot")
        }
        for hook in PluginHook.allCases {
            for plugin in dataplane.plugins.chain(hook) {
                let c = try dataplane.plugins.counters(plugin, at: hook)
                for verdict in PluginVerdict.allCases {
                    let labels = [("hook", hook.rawValue), ("plugin", plugin), ("verdict", verdict.description)]
                    count("mizar_plugin_packets_total", labels, c[verdict].packets, "Packets each plugin of a chain judged, by verdict")
                    count("mizar_plugin_bytes_total", labels, c[verdict].bytes, "Bytes each plugin of a chain judged, by verdict")
                }
                for (code, counter) in c.dropReasons.enumerated() where counter.packets > 0 || c.reasonNames[code] != nil {
                    count("mizar_plugin_drops_total", [("hook", hook.rawValue), ("plugin", plugin), ("reason", c.reasonName(code))], counter.packets,
                          "Packets each plugin dropped, by its named reason")
                }
            }
        }
        for (id, c) in try dataplane.endpointCounters() {
            let name = endpointNames[id] ?? "\(id.vni.rawValue)/\(id.ip)"
            let labels = [("endpoint", name), ("vni", "\(id.vni.rawValue)"), ("ip", "\(id.ip)")]
            count("mizar_endpoint_sent_packets_total", labels, c.sent.packets, "A local endpoint's frames the agent sent on")
            count("mizar_endpoint_sent_bytes_total", labels, c.sent.bytes, "A local endpoint's bytes the agent sent on")
            count("mizar_endpoint_received_packets_total", labels, c.received.packets, "Frames delivered to a local endpoint")
            count("mizar_endpoint_received_bytes_total", labels, c.received.bytes, "Bytes delivered to a local endpoint")
            count("mizar_endpoint_dropped_packets_total", labels, c.dropped.packets, "A local endpoint's frames the agent dropped")
            // By reason only where there were drops: 20-odd always-zero series per endpoint would be noise.
            for (slot, n) in c.drops where n > 0 {
                count("mizar_endpoint_drops_total", labels + [("reason", slot.description)], n, "A local endpoint's drops by the agent's reason")
            }
        }
        for (map, entries, capacity) in try dataplane.mapFill() {
            gauge("mizar_map_entries", [("map", map)], Double(entries), "Entries in each data-plane table")
            gauge("mizar_map_capacity", [("map", map)], Double(capacity), "Capacity of each data-plane table (its max_entries)")
        }
        gauge("mizar_endpoints_uncounted", [], Double(dataplane.uncountedEndpoints), "Local endpoints without a counter slot (the slots are full)")
        count("mizar_direct_path_learned_total", [], transit[.learned].packets, "Direct paths learned or refreshed from RTS options")
        count("mizar_direct_path_evictions_total", [], try dataplane.directPathEvictions(),
              "Direct paths the full cache evicted to make room for others (since transitd started)")
        count("mizar_trace_lost_events_total", [], try dataplane.traceLost(), "Trace events the ring buffer had no room for")
        count("mizar_reconcile_writes_total", [], UInt64(writes), "Table writes the reconciler made")
        gauge("mizar_reconcile_failures", [], Double(failureCount), "Resources the data plane could not take (retried)")
        gauge("mizar_trace_active", [], tracing ? 1 : 0, "1 while a trace streams")
        return r.emitToString() + api.registry.emitToString()
    }
}
