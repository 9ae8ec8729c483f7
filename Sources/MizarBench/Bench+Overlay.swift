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
        let lab = try benchLab(locator)
        defer { lab.teardown() }
        let vxlan = try VXLANLab(prefix: "mzv\(getpid() % 100000)")
        defer { vxlan.teardown() }
        let superpackets = try VXLANLab(prefix: "mzs\(getpid() % 100000)", wireUnderlay: false)
        defer { superpackets.teardown() }
        let a1 = lab.guest("a1"), b1 = lab.guest("b1")
        // Warm up: ARP, bridge FDB, and the direct path both ways.
        guard try lab.ping(from: "a1", to: b1.ip, count: 3) == 3,
              try pingRTT(from: vxlan.pods[0], to: vxlan.podAddresses[1], count: 3) != nil else {
            throw BenchError("warm-up pings failed")
        }

        print("iperf3: \(iperfSeconds) s TCP a1 -> b1 over the Mizar overlay, then p1 -> p2 over VXLAN")
        let mizarTCP = try gbps(try lab.iperf(from: "a1", to: "b1", seconds: iperfSeconds))
        let vxlanTCP = try gbps(try iperf3(from: vxlan.pods[0], to: vxlan.pods[1], server: vxlan.podAddresses[1], seconds: iperfSeconds))
        print("iperf3: \(iperfSeconds) s TCP over VXLAN whose veth underlay passes 64 KB superpackets (no wire emulation)")
        let superTCP = try gbps(try iperf3(from: superpackets.pods[0], to: superpackets.pods[1], server: superpackets.podAddresses[1], seconds: iperfSeconds))

        print("ping: 200 x 20 ms RTT, both overlays")
        guard let mizarRTT = try pingRTT(from: a1.netns, to: b1.ip, count: 200),
              let vxlanRTT = try pingRTT(from: vxlan.pods[0], to: vxlan.podAddresses[1], count: 200) else { throw BenchError("RTT pings failed") }

        print("packet rate: \(frames) 64-byte UDP frames from an XDP live-frames generator in the sending pod, both overlays")
        let generator = try liveFramesGenerator(locator)
        let gateway = try lab.hostSideLink("a1").mac!
        let mizarPPS = try deliveredRate(generator, from: a1.netns, to: b1.netns,
                                         frame: udp64(srcMAC: a1.mac, dstMAC: gateway, src: a1.ip, dst: b1.ip))
        let p2MAC = try RouteSocket(in: vxlan.pods[1]).link(named: "eth0").mac!
        let p1MAC = try RouteSocket(in: vxlan.pods[0]).link(named: "eth0").mac!
        let vxlanPPS = try deliveredRate(generator, from: vxlan.pods[0], to: vxlan.pods[1],
                                         frame: udp64(srcMAC: p1MAC, dstMAC: p2MAC, src: vxlan.podAddresses[0], dst: vxlan.podAddresses[1]))
        return [
            BenchMetric(name: "overlay_tcp_gbps", value: mizarTCP, unit: "Gbit/s", baselineName: "vxlan_bridge_tcp_gbps", baselineValue: vxlanTCP),
            BenchMetric(name: "overlay_tcp_gbps", value: mizarTCP, unit: "Gbit/s", baselineName: "vxlan_bridge_superpacket_underlay_tcp_gbps", baselineValue: superTCP),
            BenchMetric(name: "overlay_rtt_ms", value: mizarRTT, unit: "ms", baselineName: "vxlan_bridge_rtt_ms", baselineValue: vxlanRTT),
            BenchMetric(name: "overlay_udp64_mpps", value: mizarPPS / 1e6, unit: "Mpps", baselineName: "vxlan_bridge_udp64_mpps", baselineValue: vxlanPPS / 1e6),
        ]
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
