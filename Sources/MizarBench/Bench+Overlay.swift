import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarTopology

extension MizarBench {
    /// Pod to pod across two hosts: the Mizar overlay against a kernel VXLAN + bridge overlay
    /// (flannel-style), same underlay MTU, same run.
    func overlayMetrics(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        let vxlan = try VXLANLab(prefix: "mzv\(getpid() % 100000)")
        defer { vxlan.teardown() }
        guard try pingRTT(from: vxlan.pods[0], to: vxlan.podAddresses[1], count: 3) != nil else { throw BenchError("VXLAN warm-up ping failed") }
        let generator = try liveFramesGenerator(locator)

        print("VXLAN + bridge: iperf3 \(iperfSeconds) s TCP, 1000 pings 2 ms apart, \(frames) 64-byte frames")
        let vxlanTCP = try gbps(try iperf3(from: vxlan.pods[0], to: vxlan.pods[1], server: vxlan.podAddresses[1], seconds: iperfSeconds))
        guard let vxlanRTT = try pingRTT(from: vxlan.pods[0], to: vxlan.podAddresses[1], count: 1000, interval: 0.002) else { throw BenchError("VXLAN RTT pings failed") }
        let p1MAC = try RouteSocket(in: vxlan.pods[0]).link(named: "eth0").mac!
        let p2MAC = try RouteSocket(in: vxlan.pods[1]).link(named: "eth0").mac!
        let vxlanPPS = try deliveredRate(generator, from: vxlan.pods[0], to: vxlan.pods[1],
                                         frame: udp64(srcMAC: p1MAC, dstMAC: p2MAC, src: vxlan.podAddresses[0], dst: vxlan.podAddresses[1]))

        var metrics: [BenchMetric] = []
        for hook in AgentHook.allCases {
            let lab = try benchLab(locator, agentHook: hook)
            defer { lab.teardown() }
            let a1 = lab.guest("a1"), b1 = lab.guest("b1")
            // Warm up: ARP and the direct path both ways.
            guard try lab.ping(from: "a1", to: b1.ip, count: 3) == 3 else { throw BenchError("warm-up ping a1 -> b1 failed") }
            print("Mizar overlay, agent at \(hook.rawValue): iperf3 \(iperfSeconds) s TCP, 1000 pings 2 ms apart, \(frames) 64-byte frames")
            let tcp = try gbps(try lab.iperf(from: "a1", to: "b1", seconds: iperfSeconds))
            guard let rtt = try pingRTT(from: a1.netns, to: b1.ip, count: 1000, interval: 0.002) else { throw BenchError("RTT pings failed") }
            let gateway = try lab.hostSideLink("a1").mac!
            let pps = try deliveredRate(generator, from: a1.netns, to: b1.netns, frame: udp64(srcMAC: a1.mac, dstMAC: gateway, src: a1.ip, dst: b1.ip))
            let tag = hook == .tc ? "overlay" : "overlay_xdp_agent"
            metrics += [
                BenchMetric(name: "\(tag)_tcp_gbps", value: tcp, unit: "Gbit/s", baselineName: "vxlan_bridge_tcp_gbps", baselineValue: vxlanTCP),
                BenchMetric(name: "\(tag)_rtt_us", value: rtt * 1000, unit: "us", baselineName: "vxlan_bridge_rtt_us", baselineValue: vxlanRTT * 1000),
                BenchMetric(name: "\(tag)_udp64_mpps", value: pps / 1e6, unit: "Mpps", baselineName: "vxlan_bridge_udp64_mpps", baselineValue: vxlanPPS / 1e6),
            ]
        }

        print("VXLAN whose veth underlay passes 64 KB superpackets: iperf3 \(iperfSeconds) s TCP (for transparency)")
        vxlan.teardown()
        let superpackets = try VXLANLab(prefix: "mzs\(getpid() % 100000)", wireUnderlay: false)
        defer { superpackets.teardown() }
        let superTCP = try gbps(try iperf3(from: superpackets.pods[0], to: superpackets.pods[1], server: superpackets.podAddresses[1], seconds: iperfSeconds))
        metrics.insert(BenchMetric(name: "overlay_tcp_gbps", value: metrics[0].value, unit: "Gbit/s",
                                   baselineName: "vxlan_bridge_superpacket_underlay_tcp_gbps", baselineValue: superTCP), at: 1)
        return metrics
    }

    private func gbps(_ end: [String: Any]) throws -> Double {
        guard let bps = (end["sum_received"] as? [String: Any])?["bits_per_second"] as? Double else { throw BenchError("no iperf3 result") }
        return bps / 1e9
    }

    /// A program that sends every live frame back out of the device it "arrived" on (XDP_TX):
    /// run in the sending pod on its eth0, it transmits towards the pod's host.
    private func liveFramesGenerator(_ locator: BPFObjectLocator) throws -> BPFProgram {
        let object = try locator.open(MZ_PROBE_OBJECT)
        try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: XDPAction.tx.rawValue)
        try object.load()
        return try object.program(named: MZ_PROBE_VERDICT_PROG)
    }

    /// Frames per second that reach the receiving pod's eth0 while the generator sends `frames`.
    private func deliveredRate(_ generator: BPFProgram, from: Netns, to: Netns, frame: [UInt8]) throws -> Double {
        let eth0 = try RouteSocket(in: from).link(named: "eth0").index
        let before = try rxPackets(in: to)
        let start = Date()
        try from.perform { _ = try generator.runLiveFrames(frame: frame, count: frames, ingressIfindex: UInt32(eth0)) }
        let elapsed = Date().timeIntervalSince(start)
        usleep(300_000)  // let queued frames land
        let delivered = try rxPackets(in: to) - before
        print(String(format: "  %llu of %u frames delivered in %.2f s", delivered, frames, elapsed))
        return Double(delivered) / elapsed
    }

    private func rxPackets(in netns: Netns) throws -> UInt64 {
        let dev = try runCommand(["cat", "/proc/net/dev"], in: netns).output
        guard let line = dev.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("eth0:") }) else { return 0 }
        return UInt64(line.split(separator: ":")[1].split(separator: " ")[1]) ?? 0
    }
}
