import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTopology

extension MizarBench {
    /// ns/packet of each packet path, each against XDP_PASS on the same packet; every run of a
    /// path is checked to have taken it (its counter moves once per run).
    func testRunMetrics(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        let lab = try benchLab(locator)
        defer { lab.teardown() }
        let pass = try passProgram(locator)
        let a1 = lab.guest("a1"), b1 = lab.guest("b1"), b2 = lab.guest("b2")
        let hostA = lab.host("hosta"), hostB = lab.host("hostb")
        let gateway = try lab.hostSideLink("a1")
        let toB1 = udp64(srcMAC: a1.mac, dstMAC: gateway.mac!, src: a1.ip, dst: b1.ip)

        func geneve(from: OverlayLab.Host, to: OverlayLab.Host, inner: [UInt8]) -> [UInt8] {
            PacketBuilder.geneveFrame(outerSrcMAC: from.address.mac, outerDstMAC: to.address.mac, outerSrc: from.address.ip, outerDst: to.address.ip,
                                      vni: 100, options: [.returnToSender(dropletIP: from.address.ip, dropletMAC: from.address.mac)], inner: inner)
        }
        let toB2 = udp64(srcMAC: a1.mac, dstMAC: gateway.mac!, src: a1.ip, dst: b2.ip)

        var metrics: [BenchMetric] = []
        let rounds = 5, runs = 2_000
        /// ns per run: the median of `rounds` medians of `runs` separate single runs, all in
        /// `host`'s namespace. Every run sees the frame as given: repetitions inside one
        /// test-run reuse the buffer, so after a run that decapsulates, encapsulates or
        /// re-addresses the frame the rest would measure another path (the kernel times each
        /// run itself, so the syscall is not in the figure; its timer read is, in both).
        func perRun(_ host: OverlayLab.Host, _ run: () throws -> XDPTestRunResult) throws -> Double {
            try host.netns.perform {
                // Medians, not means: an interrupt inside one run would move a mean by microseconds.
                try median(rounds) { try (0..<runs).map { _ in Double(try run().nanosecondsPerRun) }.sorted()[runs / 2] }
            }
        }
        /// Times `run` after checking that every run of it took the path `slot` counts; the
        /// baseline is XDP_PASS on the same frame timed the same way (single runs: both hold
        /// the kernel's timer reads and the caches a syscall leaves, so compare the two).
        func measure<S: CounterSlot>(_ name: String, _ host: OverlayLab.Host, _ packet: [UInt8], baseline: String = "xdp_pass_ns_per_packet",
                                     counters: () throws -> SlotCounters<S>, slot: S, _ run: () throws -> XDPTestRunResult) throws {
            print("test-run: \(name) (\(packet.count) bytes), \(rounds) x \(runs) single runs")
            let before = try counters()
            let ns = try perRun(host, run)
            let took = try counters().delta(since: before)[slot].packets
            guard took == UInt64(rounds * runs) else { throw BenchError("\(name): \(took) of \(rounds * runs) runs took the path \(slot)") }
            let base = baseline == "xdp_pass_ns_per_packet" ? try perRun(host) { try pass.testRun(packet: packet) } : metrics.last!.value
            metrics.append(BenchMetric(name: "\(name)_ns_per_packet", value: ns, unit: "ns", baselineName: baseline, baselineValue: base))
        }

        let agent = hostA.dataplane.agentProgram, ingress = UInt32(gateway.index)
        try measure("agent_to_bouncer", hostA, toB1, counters: hostA.dataplane.agentCounters, slot: .toBouncer) {
            try agent.testRun(packet: toB1, ingressIfindex: ingress)
        }
        // A real ping teaches host A where b1 lives: the direct path.
        guard try lab.ping(from: "a1", to: b1.ip, count: 2) == 2 else { throw BenchError("ping a1 -> b1 failed") }
        try measure("agent_direct", hostA, toB1, counters: hostA.dataplane.agentCounters, slot: .direct) {
            try agent.testRun(packet: toB1, ingressIfindex: ingress)
        }
        // The TC entry on the same frame and path, against the XDP entry: the price of the hook.
        let tc = hostA.dataplane.agentTCProgram
        try measure("agent_tc_direct", hostA, toB1, baseline: "agent_direct_ns_per_packet", counters: hostA.dataplane.agentCounters, slot: .direct) {
            try tc.testRunSKB(packet: toB1, ifindex: ingress)
        }
        try measure("agent_to_divider", hostA, toB2, counters: hostA.dataplane.agentCounters, slot: .toDivider) {
            try agent.testRun(packet: toB2, ingressIfindex: ingress)
        }
        for (name, droplet, packet, slot) in [
            ("bouncer_bounce", lab.host("bouncer"), geneve(from: hostA, to: lab.host("bouncer"), inner: toB1), TransitStat.bounced),
            ("divider_divide", lab.host("divider"), geneve(from: hostA, to: lab.host("divider"), inner: toB2), .divided),
            ("local_delivery", hostB, geneve(from: hostA, to: hostB, inner: toB1), .delivered),
            ("transit_pass_host_traffic", hostB, udp64(srcMAC: hostA.address.mac, dstMAC: hostB.address.mac, src: hostA.address.ip, dst: hostB.address.ip), .nonGeneve),
        ] {
            let program = droplet.dataplane.transitProgram
            try measure(name, droplet, packet, counters: droplet.dataplane.transitCounters, slot: slot) { try program.testRun(packet: packet) }
        }
        return metrics
    }
}
