import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTopology

extension MizarBench {
    /// What observability costs (issue 12): the release programs against copies of themselves
    /// built without trace hooks (`*_notrace.bpf.o`) or without per-endpoint counters
    /// (`*_nocounters.bpf.o`), loaded over the same tables, alternating for 31 rounds,
    /// medians (a ratio is the baseline plus the median difference: robust to load that moves
    /// between rounds). Paths whose frame the program leaves as it was, so every repetition is alike:
    /// - trace off: transit XDP dropping Geneve for an address in no network (the whole parse,
    ///   then the filter read), and the TC agent dropping a spoofed frame;
    /// - endpoint counters: the TC agent delivering b1's frame to b2 on the same droplet (the
    ///   sender's and the receiver's counters: the most a frame pays) and the spoofed drop;
    /// - trace on: transit XDP's drop with tracing on and a reader draining the ring, events
    ///   read per second (and lost), against the packet rate of the same drop with tracing off.
    func observabilityMetrics(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        let lab = try benchLab(locator)
        defer { lab.teardown() }
        let hostA = lab.host("hosta"), hostB = lab.host("hostb"), a1 = lab.guest("a1"), b1 = lab.guest("b1"), b2 = lab.guest("b2")
        let gatewayA = try lab.hostSideLink("a1"), gatewayB = try lab.hostSideLink("b1")
        let rounds = 31, repetitions = min(repeatCount, 300_000)
        var metrics: [BenchMetric] = []

        // The frames, and the path each takes (checked once, by counters, before timing).
        let inner = udp64(srcMAC: a1.mac, dstMAC: gatewayA.mac!, src: a1.ip, dst: IPv4Address(10, 9, 9, 9))
        let geneve = PacketBuilder.geneveFrame(outerSrcMAC: hostA.address.mac, outerDstMAC: hostB.address.mac, outerSrc: hostA.address.ip,
                                               outerDst: hostB.address.ip, vni: 100,
                                               options: [.returnToSender(dropletIP: hostA.address.ip, dropletMAC: hostA.address.mac)], inner: inner)
        let spoofed = udp64(srcMAC: a1.mac, dstMAC: gatewayA.mac!, src: IPv4Address(10, 0, 1, 99), dst: b1.ip)
        let local = udp64(srcMAC: b1.mac, dstMAC: gatewayB.mac!, src: b1.ip, dst: b2.ip)
        let transitBefore = try hostB.dataplane.transitCounters()
        _ = try hostB.dataplane.transitProgram.testRun(packet: geneve)
        guard try hostB.dataplane.transitCounters().delta(since: transitBefore)[.noNetwork].packets == 1 else {
            throw BenchError("observability: the Geneve frame did not take the no-network path")
        }

        func copies(_ droplet: Droplet, _ object: String, _ variant: String, _ program: String) throws -> (BPFObject, BPFProgram, BPFObject, BPFProgram) {
            let full = try droplet.loadCopy(of: object), bare = try droplet.loadCopy(of: object, variant: variant)
            return (full, try full.program(named: program), bare, try bare.program(named: program))
        }
        func transitNs(_ program: BPFProgram) throws -> Double {
            Double(try hostB.netns.perform { try program.testRun(packet: geneve, repeat: repetitions) }.nanosecondsPerRun)
        }
        func agentNs(_ host: OverlayLab.Host, _ program: BPFProgram, _ frame: [UInt8], on veth: Link) throws -> Double {
            Double(try host.netns.perform { try program.testRunSKB(packet: frame, repeat: repetitions, ifindex: UInt32(veth.index)) }.nanosecondsPerRun)
        }
        func compare(_ name: String, _ what: String, _ full: () throws -> Double, _ bare: () throws -> Double, ratio: Bool) throws {
            print("observability: \(name), \(repetitions) repetitions, \(rounds) alternating rounds")
            let m = try alternatingMedians(rounds: rounds, full, bare)
            metrics.append(BenchMetric(name: name, value: ratio ? m.b + m.difference : m.difference, unit: "ns", baselineName: what, baselineValue: m.b))
        }

        // Trace off: target ≤ 1.05 × the same path without trace hooks.
        let transit = try copies(hostB.dataplane, MZ_TRANSIT_XDP_OBJECT, "notrace", MZ_TRANSIT_XDP_PROG)
        try compare("trace_off_ns_per_packet", "transit_xdp_without_trace_hooks_ns_per_packet", { try transitNs(transit.1) }, { try transitNs(transit.3) },
                    ratio: true)
        let agentTrace = try copies(hostA.dataplane, MZ_TRANSIT_AGENT_OBJECT, "notrace", MZ_TRANSIT_AGENT_TC_PROG)
        guard try hostA.netns.perform({ try agentTrace.1.testRunSKB(packet: spoofed, ifindex: UInt32(gatewayA.index)) }).tcAction == .shot else {
            throw BenchError("observability: the spoofed frame was not dropped")
        }
        try compare("trace_off_agent_drop_ns_per_packet", "agent_without_trace_hooks_ns_per_packet",
                    { try agentNs(hostA, agentTrace.1, spoofed, on: gatewayA) }, { try agentNs(hostA, agentTrace.3, spoofed, on: gatewayA) }, ratio: true)

        // Per-endpoint counters: the extra ns of a frame with both ends counted.
        let agentCounters = try copies(hostB.dataplane, MZ_TRANSIT_AGENT_OBJECT, "nocounters", MZ_TRANSIT_AGENT_TC_PROG)
        guard try hostB.netns.perform({ try agentCounters.1.testRunSKB(packet: local, ifindex: UInt32(gatewayB.index)) }).tcAction == .redirect else {
            throw BenchError("observability: b1's frame to b2 was not delivered on the droplet")
        }
        try compare("endpoint_counters_ns", "agent_local_delivery_without_endpoint_counters_ns_per_packet",
                    { try agentNs(hostB, agentCounters.1, local, on: gatewayB) }, { try agentNs(hostB, agentCounters.3, local, on: gatewayB) }, ratio: false)
        let agentDrop = try copies(hostA.dataplane, MZ_TRANSIT_AGENT_OBJECT, "nocounters", MZ_TRANSIT_AGENT_TC_PROG)
        try compare("endpoint_counters_drop_ns", "agent_drop_without_endpoint_counters_ns_per_packet",
                    { try agentNs(hostA, agentDrop.1, spoofed, on: gatewayA) }, { try agentNs(hostA, agentDrop.3, spoofed, on: gatewayA) }, ratio: false)

        // Trace on: events per second through the ring to a reader, against the drop's packet rate untraced.
        metrics += try traceOnMetrics(hostB.dataplane, geneve, untraced: { try transitNs(hostB.dataplane.transitProgram) })
        withExtendedLifetime((transit, agentTrace, agentCounters, agentDrop)) {}
        return metrics
    }

    /// Tracing on (drops only) while a reader drains the ring on another thread: events read
    /// per second of test-run; the lost count is reported beside it.
    private func traceOnMetrics(_ droplet: Droplet, _ frame: [UInt8], untraced: () throws -> Double) throws -> [BenchMetric] {
        let reader = try droplet.traceReader()
        let read = Counter64(), stop = Counter64()
        let drainer = Thread {
            while stop.value == 0 { read.add(UInt64((try? reader.next(timeoutMilliseconds: 10).count) ?? 0)) }
        }
        let baseline = 1e9 / (try untraced())
        try droplet.setTracing(TraceFilter())
        defer { try? droplet.setTracing(nil) }
        let lost0 = try droplet.traceLost()
        drainer.start()
        let clock = ContinuousClock(), start = clock.now
        var runs: UInt64 = 0
        while clock.now - start < .seconds(2) {
            _ = try droplet.netns.perform { try droplet.transitProgram.testRun(packet: frame, repeat: 20_000) }
            runs += 20_000
        }
        let elapsed = clock.now - start
        Thread.sleep(forTimeInterval: 0.1)
        stop.add(1)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let lost = try droplet.traceLost() - lost0
        print("observability: trace on: \(runs) drops in \(String(format: "%.2f", seconds)) s, \(read.value) events read, \(lost) lost")
        return [
            BenchMetric(name: "trace_on_drops_events_per_s", value: Double(read.value) / seconds, unit: "events/s",
                        baselineName: "untraced_drops_packets_per_s", baselineValue: baseline),
            BenchMetric(name: "trace_on_lost_events_per_s", value: Double(lost) / seconds, unit: "events/s",
                        baselineName: "trace_on_drops_packets_per_s", baselineValue: Double(runs) / seconds),
        ]
    }
}

/// A counter two threads share.
final class Counter64: @unchecked Sendable {
    private let lock = NSLock()
    private var count: UInt64 = 0
    var value: UInt64 { lock.withLock { count } }
    func add(_ n: UInt64) { lock.withLock { count += n } }
}
