import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// `mizarctl trace` against real transitd processes (docs/observability.md): why a packet was
/// dropped, by plugin and reason or by the core's counter slot.
@Suite("mizarctl trace: drops named by plugin and reason, streamed from transitd", .serialized)
struct TraceDaemonTests {
    /// Starts `mizarctl trace` on `host` in the background (it stops after `count` events or 20 s).
    func trace(_ lab: DaemonLab, _ host: String, _ arguments: [String]) throws -> RunningCommand {
        let command = try RunningCommand([Binaries.mizarctl, "trace"] + arguments + ["--socket", lab.host(host).socket])
        Thread.sleep(forTimeInterval: 0.5)  // the filter is written before the first frame
        return command
    }

    @Test func aDeniedSYNAndASpoofedFrameAppearWithTheirReasons() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        let (a1, _) = try await TwoDropletTests.applyManifests(lab)
        // b1 takes nothing but ICMP: a TCP SYN to it is dropped by the acl at hostb's ingress.
        try await TwoDropletTests.applyACL(lab, on: "hostb", hook: "ingress", endpoint: "10.1.0.3", allowed: "icmp")
        #expect(try runCommand(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("2 received"))

        let syn = try trace(lab, "hostb", ["--drops", "--ip", "10.1.0.3", "--count", "1", "--seconds", "20"])
        let second = try lab.mizarctl("hostb", ["trace", "--seconds", "1"])
        #expect(second.status == 1 && second.error.contains("already running"), "one trace at a time: \(second.output)\(second.error)")
        _ = try runCommand(["timeout", "2", "bash", "-c", "echo > /dev/tcp/10.1.0.3/5201"], in: a1)
        let seen = syn.wait(timeout: 30)
        #expect(seen.status == 0, "\(seen.output)\(seen.error)")
        let line = seen.output.split(separator: "\n").first { $0.contains("DROP") }.map(String.init) ?? ""
        #expect(line.contains("hostb ingress acl DROP default-deny tcp 10.1.0.2:") && line.contains(" -> 10.1.0.3:5201 vni 100"), "\(seen.output)")

        // The agent's own drops: a1 sends from an address that is not its own (filtered by it:
        // a1's IPv6 chatter is dropped by the agent too, as unsupported-protocol).
        let spoof = try trace(lab, "hosta", ["--drops", "--ip", "10.1.0.99", "--count", "1", "--seconds", "20", "-o", "json"])
        try runCommand(["ip", "addr", "add", "10.1.0.99/32", "dev", "eth0"], in: a1)
        _ = try runCommand(["ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", "10.1.0.99", "10.1.0.3"], in: a1)
        let spoofed = spoof.wait(timeout: 30)
        let records = spoofed.output.split(separator: "\n").compactMap { try? JSONDecoder().decode(TraceRecord.self, from: Data($0.utf8)) }
        let drop = try #require(records.first { $0.verdict == "drop" }, "\(spoofed.output)\(spoofed.error)")
        #expect(drop.source == "agent" && drop.reason == "spoofed-ip" && drop.src == "10.1.0.99" && drop.dst == "10.1.0.3" && drop.endpoint == "10.1.0.2",
                "\(drop)")
        #expect(records.last?.lost == 0, "the stream ends with its lost count")

        // Every trace ended with its command: tracing is off, another can start.
        let quiet = try lab.mizarctl("hosta", ["trace", "--drops", "--ip", "10.1.0.77", "--seconds", "1", "-o", "json"])
        #expect(quiet.status == 0 && !quiet.output.contains("\"verdict\""), "nothing dropped now: \(quiet.output)\(quiet.error)")
        let bad = try lab.mizarctl("hosta", ["trace", "--ip", "10.1.0.300"])
        #expect(bad.status == 2, "\(bad.error)")
        #expect(try lab.mizarctl("hosta", ["trace", "--seconds", "1e309"]).status == 2, "no crash on a huge --seconds")
    }

    @Test func aClientThatLeavesEndsItsTrace() throws {
        let lab = try DaemonLab.running(["hosta"])
        defer { lab.teardown() }
        func active() throws -> Bool {
            let text = try runCommand(["curl", "-sf", "--unix-socket", lab.host("hosta").socket, "http://transitd/metrics"]).output
            let sample = text.split(separator: "\n").first { $0.hasPrefix("mizar_trace_active ") }
            return sample.flatMap { Double($0.split(separator: " ")[1]) } == 1
        }
        // Gone at once, before its stream could start, and gone without a word: tracing ends either way.
        for wait in ["0.05", "0.6"] {
            _ = try runCommand(["curl", "-s", "--max-time", wait, "--unix-socket", lab.host("hosta").socket, "http://transitd/v1/trace?seconds=600"])
            var off = false
            for _ in 0..<30 where !off {
                off = try !active()
                if !off { Thread.sleep(forTimeInterval: 0.5) }
            }
            #expect(off, "a trace whose client left (after \(wait) s) is ended: \(lab.host("hosta").log.suffix(1500))")
        }
        let running = try trace(lab, "hosta", ["--seconds", "60"])
        #expect(try active())
        let stopped = try runCommand(["curl", "-s", "-X", "DELETE", "--unix-socket", lab.host("hosta").socket, "http://transitd/v1/trace"])
        #expect(stopped.output.contains("\"stopped\":true"), "\(stopped.output)")
        #expect(running.wait(timeout: 10).status == 0, "its stream ends")
        #expect(try !active())
    }
}
