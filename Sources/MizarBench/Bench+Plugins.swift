import CMizarABI
import Foundation
import MizarACL
import MizarBPF
import MizarLB
import MizarNAT
import MizarShaper
import MizarNet
import MizarPacket
import MizarPluginSDK
import MizarTopology

/// The bench's `restore` plugin (Tests/bpf/restore_plugin.bpf.c): writes a frame's first 54
/// bytes back, so test-run repetitions after a rewriting plugin all see the same input.
func restoreDescriptor(_ locator: BPFObjectLocator) -> PluginDescriptor {
    var restore = PluginDescriptor(name: "restore", version: "1.0.0", object: "restore_plugin.bpf.o", entry: "restore", hooks: [.egress],
                                   maps: [PluginMapDescriptor(name: "restore_frame", type: "array", keySize: 4, valueSize: 54, maxEntries: 1)])
    // Absolute: a plugin's directory is where its object is looked for, and `make bench` gives a relative --bpf-dir.
    let directory = locator.directories.first { FileManager.default.fileExists(atPath: $0 + "/tests/restore_plugin.bpf.o") } ?? "build/bpf"
    restore.directory = URL(fileURLWithPath: directory + "/tests").standardizedFileURL.path
    return restore
}

/// The configuration that makes `restore` write `frame`'s headers back.
func restoring(_ frame: [UInt8]) -> RawPluginConfiguration {
    RawPluginConfiguration(["restore_frame": [PluginMapEntry(key: [0, 0, 0, 0], value: Array(frame.prefix(54)))]])
}

extension MizarBench {
    /// The plugin chain: ns per stage, per built-in plugin, the ACL at 10,000 rules, and the
    /// ACL against an equivalent nftables ruleset on the same path.
    func pluginMetrics(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        var metrics: [BenchMetric] = []
        let harness = try PluginHarness(locator: locator)
        let a = IPv4Address(10, 0, 1, 2)
        let frame = udp64(srcMAC: PacketBuilder.endpointMAC, dstMAC: PacketBuilder.gatewayMAC, src: a, dst: IPv4Address(10, 1, 19, 136))
        let context = HarnessContext(vni: 100, endpointIP: a)
        /// ns/packet of `frame` through the live egress chain, median of 5.
        func ns(_ frame: [UInt8], expect verdict: HarnessVerdict) throws -> Double {
            guard try harness.run(frame, hook: .egress, context: context).verdict == verdict else {
                throw BenchError("the frame did not get the verdict \(verdict) from chain \(harness.chains.chain(.egress))")
            }
            return try median(5) { Double(try harness.run(frame, hook: .egress, context: context, repeat: repeatCount).nanoseconds) }
        }
        func chain(_ names: [String]) throws { try harness.chains.setChain(.egress, names) }
        print("plugins: chains of 0/1/2/4/8 noop plugins, \(repeatCount) repetitions x 5")
        for i in 1...8 {
            var noop = PluginDescriptor(name: "noop\(i)", version: "1.0.0", object: "noop.bpf.o", entry: "noop", hooks: [.egress, .ingress])
            noop.priority = i
            try harness.chains.register(noop)
        }
        let pass = try passProgram(locator)
        let passNs = try median(5) { Double(try pass.testRun(packet: frame, repeat: repeatCount).nanosecondsPerRun) }
        try chain([])
        let empty = try ns(frame, expect: .forwarded)
        metrics.append(BenchMetric(name: "plugin_chain_0_ns_per_packet", value: empty, unit: "ns", baselineName: "xdp_pass_ns_per_packet", baselineValue: passNs))
        var byLength: [Int: Double] = [0: empty]
        for n in [1, 2, 4, 8] {
            try chain((1...n).map { "noop\($0)" })
            byLength[n] = try ns(frame, expect: .forwarded)
            metrics.append(BenchMetric(name: "plugin_chain_\(n)_ns_per_packet", value: byLength[n]!, unit: "ns",
                                       baselineName: "plugin_chain_0_ns_per_packet", baselineValue: empty))
        }
        // A plugin's own ns: chain [plugin, restore] against [noop, restore], plus noop's own.
        // `restore` writes the original headers back: test-run repetitions reuse the buffer,
        // so a rewriting plugin would otherwise see its own output from the second run on.
        /// ns of chain `test` minus chain `reference` on `frame`: the two alternate for five
        /// rounds (this VM's noise moves both alike) and the median difference is kept.
        func alternate(_ reference: [String], _ test: [String], _ frame: [UInt8], _ verdict: HarnessVerdict) throws -> Double {
            var differences: [Double] = []
            for _ in 0..<5 {
                try chain(reference)
                let base = Double(try harness.run(frame, hook: .egress, context: context, repeat: repeatCount).nanoseconds)
                try chain(test)
                let result = try harness.run(frame, hook: .egress, context: context, repeat: repeatCount)
                guard result.verdict == verdict else { throw BenchError("chain \(test): the frame got \(result.verdict), not \(verdict)") }
                differences.append(Double(result.nanoseconds) - base)
            }
            return differences.sorted()[2]
        }
        let noopOwn = try alternate([], ["noop1"], frame, .forwarded)
        // Seven stages more than one noop: what each stage adds, the noop's own work included.
        let perStage = try alternate(["noop1"], (1...8).map { "noop\($0)" }, frame, .forwarded) / 7
        metrics.append(BenchMetric(name: "plugin_chain_ns_per_stage", value: perStage, unit: "ns",
                                   baselineName: "plugin_chain_0_ns_per_packet", baselineValue: empty))
        try harness.chains.register(restoreDescriptor(locator))

        // Each built-in plugin alone in the chain: its own ns beyond the empty chain, against noop's.
        func own(_ name: String, _ plugin: String, _ frame: [UInt8], _ verdict: HarnessVerdict) throws -> Double {
            try harness.chains.configure("restore", restoring(frame))
            let value = verdict == .forwarded
                ? try alternate(["noop1", "restore"], [plugin, "restore"], frame, verdict) + noopOwn
                : try alternate([], [plugin], frame, verdict)
            metrics.append(BenchMetric(name: "plugin_\(name)_ns", value: value, unit: "ns", baselineName: "plugin_noop_ns", baselineValue: noopOwn))
            return value
        }
        try harness.chains.register(descriptor(locator, "port_guard"))
        _ = try own("port_guard", "port_guard", frame, .forwarded)

        try harness.chains.register(ACL.descriptor)
        var configureSeconds: [Int: Double] = [:]
        var newFlow: [Int: Double] = [:]
        for count in [10, 10_000] {
            let config = aclConfig(rules: count, endpoint: a)
            let start = Date()
            try harness.chains.configure("acl", config)
            configureSeconds[count] = Date().timeIntervalSince(start)
            // A port no rule allows: the LPM lookup and the rule scan on every frame, then the default.
            var denied = frame
            denied[37] = 10 // UDP destination port 9 -> 10
            newFlow[count] = try own("acl_new_flow_\(count)_rules", "acl", denied, .dropped)
        }
        _ = try own("acl_established", "acl", frame, .forwarded)
        metrics.append(BenchMetric(name: "acl_new_flow_10000_rules_ns", value: newFlow[10_000]!, unit: "ns",
                                   baselineName: "acl_new_flow_10_rules_ns", baselineValue: newFlow[10]!))
        metrics.append(BenchMetric(name: "acl_configure_10000_rules_s", value: configureSeconds[10_000]!, unit: "s",
                                   baselineName: "acl_configure_10_rules_s", baselineValue: configureSeconds[10]!))

        try harness.chains.register(NAT.descriptor)
        try harness.chains.configure("nat", NAT.Config(externalIP: "172.30.0.1", masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"])]))
        _ = try own("nat_snat_established", "nat", frame, .forwarded)

        try harness.chains.register(Shaper.descriptor)
        try harness.chains.configure("shaper", Shaper.Config(limits: [Shaper.Limit(vpc: 100, endpoint: a.description, bitsPerSecond: 100_000_000_000, burstBytes: 1 << 40)]))
        _ = try own("shaper", "shaper", frame, .forwarded)

        try harness.chains.register(LB.descriptor)
        let vipFrame = PacketBuilder.tcpFrame(src: a, dst: IPv4Address(10, 0, 9, 9), sourcePort: 40000, destinationPort: 80)
        var lbNs: [Int: Double] = [:], lbConfigure: [Int: Double] = [:]
        for count in [3, 1000] {
            let backends = (0..<count).map { LB.Backend(ip: IPv4Address(10, 2, UInt8($0 / 250), UInt8($0 % 250 + 1)).description, port: 8080) }
            let start = Date()
            try harness.chains.configure("lb", LB.Config(services: [LB.Service(vpc: 100, vip: "10.0.9.9", port: 80, backends: backends)]))
            lbConfigure[count] = Date().timeIntervalSince(start)
            lbNs[count] = try own("lb_\(count)_backends", "lb", vipFrame, .forwarded)
        }
        metrics.append(BenchMetric(name: "lb_1000_backends_ns", value: lbNs[1000]!, unit: "ns", baselineName: "lb_3_backends_ns", baselineValue: lbNs[3]!))
        metrics.append(BenchMetric(name: "lb_configure_1000_backends_s", value: lbConfigure[1000]!, unit: "s",
                                   baselineName: "lb_configure_3_backends_s", baselineValue: lbConfigure[3]!))
        metrics += try aclAgainstNftables(locator)
        return metrics
    }

    /// A plugin's descriptor from its YAML file, objects from the BPF directories.
    private func descriptor(_ locator: BPFObjectLocator, _ name: String) throws -> PluginDescriptor {
        var d = try PluginDescriptor(contentsOf: "plugins/examples/\(name)/\(name).plugin.yaml")
        d.directory = nil
        return d
    }

    /// `rules` allow rules for UDP port 9, one per destination (the first is 10.1.19.136),
    /// for endpoint `endpoint`, whose defaults deny.
    func aclConfig(rules: Int, endpoint: IPv4Address, direction: ACL.Direction = .egress, first: IPv4Address = IPv4Address(10, 1, 19, 136)) -> ACL.Config {
        let others = (0..<rules - 1).map(aclBenchRemote)
        let rules = ([first] + others).map { remote in
            ACL.Rule(vpc: 100, direction: direction, source: direction == .egress ? "0.0.0.0/0" : remote.description,
                     destination: direction == .egress ? remote.description : "0.0.0.0/0", protocol: .udp, ports: 9...9, action: .allow)
        }
        return ACL.Config(rules: rules, endpoints: [ACL.EndpointPolicy(vpc: 100, ip: endpoint.description, defaultEgress: .deny, defaultIngress: .deny)])
    }
}

/// The `i`th remote address of the benchmark's rules (none of them the traffic's).
func aclBenchRemote(_ i: Int) -> IPv4Address { IPv4Address(10, 200, UInt8(i / 250), UInt8(i % 250 + 1)) }
