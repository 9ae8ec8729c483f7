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
        // The same switch as the Mizar labs: fabric ports with an XDP_PASS program.
        let vxlan = try VXLANLab(prefix: "mzv\(getpid() % 100000)", switchPortProgram: try passProgram(locator))
        defer { vxlan.teardown() }
        let labs = try AgentHook.allCases.map { hook in
            (hook, try OverlayLab.design(prefix: "mz\(hook.rawValue)\(getpid() % 100000)", agentHook: hook, vpc2: false, locator: locator))
        }
        defer { for (_, lab) in labs { lab.teardown() } }
        let generator = try liveFramesGenerator(locator)

        // Every contender as (name, sender, receiver, receiver IP, generator frame).
        let p1MAC = try RouteSocket(in: vxlan.pods[0]).link(named: "eth0").mac!
        let p2MAC = try RouteSocket(in: vxlan.pods[1]).link(named: "eth0").mac!
        var contenders = [("vxlan_bridge", vxlan.pods[0], vxlan.pods[1], vxlan.podAddresses[1],
                           udp64(srcMAC: p1MAC, dstMAC: p2MAC, src: vxlan.podAddresses[0], dst: vxlan.podAddresses[1]))]
        for (hook, lab) in labs {
            let a1 = lab.guest("a1"), b1 = lab.guest("b1")
            let frame = udp64(srcMAC: a1.mac, dstMAC: try lab.hostSideLink("a1").mac!, src: a1.ip, dst: b1.ip)
            contenders.append((hook == .tc ? "overlay" : "overlay_xdp_agent", a1.netns, b1.netns, b1.ip, frame))
        }
        // Warm up: ARP, bridge FDBs, and the direct path both ways.
        for (name, from, _, target, _) in contenders {
            guard try pingRTT(from: from, to: target, count: 3) != nil else { throw BenchError("\(name): warm-up ping failed") }
        }

        // Rounds interleave the contenders, so that a slow moment of the VM hits all of them; medians of the rounds.
        let rounds = 3
        var tcp: [String: [Double]] = [:], rtt: [String: [Double]] = [:], pps: [String: [Double]] = [:], trafgenPPS: [String: [Double]] = [:]
        for round in 1...rounds {
            print("round \(round)/\(rounds): per overlay iperf3 \(iperfSeconds) s TCP, 1000 pings 2 ms apart, \(frames) 64-byte frames")
            for (name, from, to, target, frame) in contenders {
                tcp[name, default: []].append(try gbps(try iperf3(from: from, to: to, server: target, seconds: iperfSeconds)))
                guard let r = try pingRTT(from: from, to: target, count: 1000, interval: 0.002) else { throw BenchError("\(name): RTT pings failed") }
                rtt[name, default: []].append(r * 1000)
                pps[name, default: []].append(try deliveredRate(generator, from: from, to: to, frame: frame) / 1e6)
                trafgenPPS[name, default: []].append(try trafgenRate(from: from, to: to, frame: frame) / 1e6)
            }
        }
        func med(_ values: [Double]?) -> Double { let v = (values ?? []).sorted(); return v.isEmpty ? 0 : v[v.count / 2] }

        var metrics: [BenchMetric] = []
        for name in ["overlay", "overlay_xdp_agent"] {
            metrics += [
                BenchMetric(name: "\(name)_tcp_gbps", value: med(tcp[name]), unit: "Gbit/s", baselineName: "vxlan_bridge_tcp_gbps", baselineValue: med(tcp["vxlan_bridge"])),
                BenchMetric(name: "\(name)_rtt_us", value: med(rtt[name]), unit: "us", baselineName: "vxlan_bridge_rtt_us", baselineValue: med(rtt["vxlan_bridge"])),
                BenchMetric(name: "\(name)_udp64_mpps", value: med(pps[name]), unit: "Mpps", baselineName: "vxlan_bridge_udp64_mpps", baselineValue: med(pps["vxlan_bridge"])),
                BenchMetric(name: "\(name)_udp64_trafgen_mpps", value: med(trafgenPPS[name]), unit: "Mpps",
                            baselineName: "vxlan_bridge_udp64_trafgen_mpps", baselineValue: med(trafgenPPS["vxlan_bridge"])),
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
    func liveFramesGenerator(_ locator: BPFObjectLocator) throws -> BPFProgram {
        let object = try locator.open(MZ_PROBE_OBJECT)
        try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: XDPAction.tx.rawValue)
        try object.load()
        return try object.program(named: MZ_PROBE_VERDICT_PROG)
    }

    /// Frames per second that reach the receiving pod's eth0 while the generator sends `frames`.
    private func deliveredRate(_ generator: BPFProgram, from: Netns, to: Netns, frame: [UInt8]) throws -> Double {
        let eth0 = try RouteSocket(in: from).link(named: "eth0").index
        let before = try receivedPackets(of: "eth0", in: to)
        let start = Date()
        try from.perform { _ = try generator.runLiveFrames(frame: frame, count: frames, ingressIfindex: UInt32(eth0)) }
        let elapsed = Date().timeIntervalSince(start)
        usleep(300_000)  // let queued frames land
        let delivered = try receivedPackets(of: "eth0", in: to) - before
        print(String(format: "  %llu of %u frames delivered in %.2f s", delivered, frames, elapsed))
        return Double(delivered) / elapsed
    }

    /// Frames per second reaching the receiving pod while trafgen sends `frames` from the
    /// sending pod's socket (skbs, as a pod's own traffic is), one CPU.
    private func trafgenRate(from: Netns, to: Netns, frame: [UInt8]) throws -> Double {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-trafgen-\(getpid()).cfg")
        defer { try? FileManager.default.removeItem(at: config) }
        try ("{ " + frame.map { String(format: "0x%02x", $0) }.joined(separator: ", ") + " }\n").write(to: config, atomically: true, encoding: .utf8)
        let before = try receivedPackets(of: "eth0", in: to)
        let start = Date()
        let result = try runCommand(["trafgen", "-o", "eth0", "-i", config.path, "-n", "\(frames)", "-P", "1", "-C"], in: from, timeout: 120)
        let elapsed = Date().timeIntervalSince(start)
        guard result.status == 0 else { throw BenchError("trafgen failed: \(result.error.suffix(300))") }
        usleep(300_000)
        let delivered = try receivedPackets(of: "eth0", in: to) - before
        print(String(format: "  trafgen: %llu of %u frames delivered in %.2f s", delivered, frames, elapsed))
        return Double(delivered) / elapsed
    }

}
