import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// `GET /metrics` (docs/observability.md): Prometheus text that a real Prometheus parser
/// (prometheus_client's) reads whole, and counters that move by exactly what was sent.
@Suite("transitd /metrics: parsed by prometheus_client, moving by exactly what was sent", .serialized)
struct MetricsTests {
    /// Every sample of a scrape, as `name{label="value",...}` (labels sorted) to value.
    func scrape(_ lab: DaemonLab, _ host: String) throws -> [String: Double] {
        let parse = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    out[s.name + "{" + ",".join('%s="%s"' % kv for kv in sorted(s.labels.items())) + "}"] = s.value
            print(json.dumps(out))
            """
        let script = lab.root + "/parse-metrics.py"
        try parse.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try runCommand(["sh", "-c", "curl -sf --unix-socket \(lab.host(host).socket) http://transitd/metrics | /usr/bin/python3 \(script)"])
        guard result.status == 0, let samples = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Double] else {
            throw BedError("scrape of \(host) did not parse: \(result.output.prefix(300))\(result.error.prefix(2000))")
        }
        return samples
    }

    @Test func countersMoveByExactlyWhatWasSent() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        let (a1, b1) = try await TwoDropletTests.applyManifests(lab)
        #expect(try runCommand(["ping", "-c", "1", "-W", "1", "10.1.0.3"], in: a1).output.contains("1 received"), "warm up")

        let before = try scrape(lab, "hosta")
        #expect(try runCommand(["ping", "-c", "5", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("5 received"))
        for _ in 0..<3 { _ = try await lab.host("hosta").client.status() }
        let after = try scrape(lab, "hosta")
        func moved(_ sample: String) -> Double { (after[sample] ?? -1) - (before[sample] ?? 0) }

        let a1Labels = #"{endpoint="a1",ip="10.1.0.2",vni="100"}"#
        #expect(moved("mizar_endpoint_sent_packets_total" + a1Labels) == 5, "a1's echo requests")
        #expect(moved("mizar_endpoint_received_packets_total" + a1Labels) == 5, "its replies")
        // a1's kernel sends IPv6 (router solicitations), which the agent drops as unsupported; never as spoofed.
        #expect(after[#"mizar_endpoint_drops_total{endpoint="a1",ip="10.1.0.2",reason="spoofed_ip",vni="100"}"#] == nil, "no series without a drop")
        let byReason = after.keys.filter { $0.hasPrefix(#"mizar_endpoint_drops_total{endpoint="a1","#) }.map(moved).reduce(0, +)
        #expect(moved("mizar_endpoint_dropped_packets_total" + a1Labels) == byReason, "every drop under its reason")
        #expect(moved(#"mizar_api_requests_total{code="200",method="GET",route="/v1/status"}"#) == 3, "the three status calls")
        #expect(moved(#"mizar_transit_xdp_packets_total{slot="delivered",verdict="redirect"}"#) >= 5)
        #expect(after[#"mizar_map_entries{map="local_endpoints"}"#] == 1 && after[#"mizar_map_capacity{map="local_endpoints"}"#] == 4096)
        #expect(after[#"mizar_trace_lost_events_total{}"#] == 0 && after[#"mizar_trace_active{}"#] == 0)
        #expect(after.keys.contains { $0.hasPrefix("mizar_api_request_duration_seconds_bucket{") }, "the latency histogram")

        // mizarctl counters shows the same, per endpoint, with rates.
        let counters = try lab.mizarctl("hosta", ["counters", "--rates", "--interval", "0.5"])
        #expect(counters.status == 0 && counters.output.contains("PACKETS/S") && counters.output.contains("endpoint/a1"), "\(counters.output)\(counters.error)")

        // mizarctl top: while a1 pings (20 packets/s through it, requests and replies), a1 leads with about that rate.
        let ping = try RunningCommand(["ping", "-i", "0.1", "-w", "4", "10.1.0.3"], in: a1)
        defer { ping.interrupt() }
        let top = try lab.mizarctl("hosta", ["top", "--count", "2", "--interval", "1", "-o", "json"])
        let views = top.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let busiest = (views.last?["endpoints"] as? [[String: Any]])?.first
        #expect(views.count == 2 && busiest?["name"] as? String == "a1", "\(top.output)\(top.error)")
        #expect((14...26).contains(busiest?["packetsPerSecond"] as? Double ?? 0), "\(top.output)")
        let table = try lab.mizarctl("hosta", ["top", "--count", "1", "--interval", "0.5", "--sort", "drops"])
        #expect(table.status == 0 && table.output.contains("ENDPOINT") && table.output.contains("a1") && table.output.contains("PLUGIN"), "\(table.output)\(table.error)")
    }
}
