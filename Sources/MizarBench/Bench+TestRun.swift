import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTopology

extension MizarBench {
    /// ns/packet of each packet path, each against XDP_PASS on the same packet.
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
        /// Runs `program` on `packet` in `host`'s namespace after checking it takes the path `expect` names.
        func measure(_ name: String, _ program: BPFProgram, _ host: OverlayLab.Host, _ packet: [UInt8], ingress: Int32 = 0,
                     expect: () throws -> Bool) throws {
            print("test-run: \(name) (\(packet.count) bytes), \(repeatCount) repetitions x 5")
            guard try expect() else { throw BenchError("\(name): the packet did not take the intended path") }
            let run = { (p: BPFProgram) in
                try median(5) { Double(try host.netns.perform { try p.testRun(packet: packet, repeat: repeatCount, ingressIfindex: UInt32(ingress)) }.nanosecondsPerRun) }
            }
            metrics.append(BenchMetric(name: "\(name)_ns_per_packet", value: try run(program), unit: "ns",
                                       baselineName: "xdp_pass_ns_per_packet", baselineValue: try run(pass)))
        }
        func takes<S>(_ counters: () throws -> SlotCounters<S>, _ slot: S, _ run: () throws -> Void) throws -> Bool {
            let before = try counters()
            try run()
            return try counters().delta(since: before)[slot].packets == 1
        }

        let agent = hostA.dataplane.agentProgram
        let agentRun = { _ = try hostA.netns.perform { try agent.testRun(packet: toB1, ingressIfindex: UInt32(gateway.index)) } }
        try measure("agent_to_bouncer", agent, hostA, toB1, ingress: gateway.index) {
            try takes(hostA.dataplane.agentCounters, .toBouncer, agentRun)
        }
        // A real ping teaches host A where b1 lives: the direct path.
        guard try lab.ping(from: "a1", to: b1.ip, count: 2) == 2 else { throw BenchError("ping a1 -> b1 failed") }
        try measure("agent_direct", agent, hostA, toB1, ingress: gateway.index) {
            try takes(hostA.dataplane.agentCounters, .direct, agentRun)
        }
        // The TC entry on the same frame and path, against the XDP entry: the price of the hook.
        print("test-run: agent_tc_direct (\(toB1.count) bytes), \(repeatCount) repetitions x 5")
        let tc = hostA.dataplane.agentTCProgram
        let direct0 = try hostA.dataplane.agentCounters()
        _ = try hostA.netns.perform { try tc.testRunSKB(packet: toB1, ifindex: UInt32(gateway.index)) }
        guard try hostA.dataplane.agentCounters().delta(since: direct0)[.direct].packets == 1 else { throw BenchError("agent_tc_direct: not the direct path") }
        let tcNs = try median(5) { Double(try hostA.netns.perform { try tc.testRunSKB(packet: toB1, repeat: repeatCount, ifindex: UInt32(gateway.index)) }.nanosecondsPerRun) }
        metrics.append(BenchMetric(name: "agent_tc_direct_ns_per_packet", value: tcNs, unit: "ns",
                                   baselineName: "agent_direct_ns_per_packet", baselineValue: metrics.last!.value))
        try measure("agent_to_divider", agent, hostA, toB2, ingress: gateway.index) {
            try takes(hostA.dataplane.agentCounters, .toDivider) { _ = try hostA.netns.perform { try agent.testRun(packet: toB2, ingressIfindex: UInt32(gateway.index)) } }
        }
        for (name, droplet, packet, slot) in [
            ("bouncer_bounce", lab.host("bouncer"), geneve(from: hostA, to: lab.host("bouncer"), inner: toB1), TransitStat.bounced),
            ("divider_divide", lab.host("divider"), geneve(from: hostA, to: lab.host("divider"), inner: toB2), .divided),
            ("local_delivery", hostB, geneve(from: hostA, to: hostB, inner: toB1), .delivered),
            ("transit_pass_host_traffic", hostB, udp64(srcMAC: hostA.address.mac, dstMAC: hostB.address.mac, src: hostA.address.ip, dst: hostB.address.ip), .nonGeneve),
        ] {
            try measure(name, droplet.dataplane.transitProgram, droplet, packet) {
                try takes(droplet.dataplane.transitCounters, slot) { _ = try droplet.dataplane.transitProgram.testRun(packet: packet) }
            }
        }
        return metrics
    }
}
