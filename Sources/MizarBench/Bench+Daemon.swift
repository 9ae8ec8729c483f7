import Foundation
import MizarAPI
import MizarBPF
import MizarClient
import MizarDataplane
import MizarNet
import MizarTopology

/// The daemon section: transitd as users run it (its release binary, in a namespaced
/// droplet, over its Unix socket) against the library it drives, measured in the same run.
extension MizarBench {
    func daemonMetrics(_ locator: BPFObjectLocator, bpfDir: String) async throws -> [BenchMetric] {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let lab = try DaemonLab(prefix: "mzd\(getpid() % 100000)", droplets: ["hosta"], transitd: bin + "/transitd", bpfDir: bpfDir)
        defer { lab.teardown() }
        try lab.start("hosta")
        let client = lab.host("hosta").client
        var metrics: [BenchMetric] = []

        // A network this droplet bounces, its endpoints on another droplet: every add is a bouncer-table write.
        _ = try await client.apply(ApplyRequest(apply: [
            .droplet(Droplet(name: "remote", spec: DropletSpec(ip: IPv4Address(172, 30, 0, 200), mac: MACAddress("02:00:00:00:00:c8")!))),
            .vpc(VPC(name: "bench", spec: VPCSpec(vni: 100))),
            .network(Network(name: "wide", spec: NetworkSpec(vpc: "bench", cidr: IPv4Interface("10.0.0.0/8")!))),
        ]))
        func endpoint(_ i: Int) -> AnyResource {
            .endpoint(Endpoint(name: "ep\(i)", spec: EndpointSpec(network: "wide", ip: IPv4Address(value: 0x0a00_0000 + 2 + UInt32(i)),
                                                                  mac: MACAddress(value: 0x0200_0000_0000 + UInt64(i)), droplet: "remote")))
        }

        // 10,000 endpoints in one manifest, applied with mizarctl.
        let manifest = lab.root + "/endpoints-10k.yaml"
        try Manifests.yaml((0..<10_000).map(endpoint)).write(toFile: manifest, atomically: true, encoding: .utf8)
        let applyStart = Date()
        let applied = try runCommand([bin + "/mizarctl", "apply", "-f", manifest, "-o", "json", "--socket", lab.host("hosta").socket], timeout: 300)
        let applySeconds = Date().timeIntervalSince(applyStart)
        guard applied.status == 0 else { throw BenchError("mizarctl apply failed: \(applied.error)") }
        print(String(format: "daemon: mizarctl apply of 10,000 endpoints took %.2f s", applySeconds))

        // Single adds over the API with 10,000 present, against the library's own add.
        let adds = 500
        var api: [Double] = []
        for i in 10_000..<(10_000 + adds) {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await client.put(endpoint(i))
            api.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        let (library, librarySeconds) = try libraryAdds(locator, present: 10_000, adds: adds)
        print(String(format: "daemon: add p50 %.3f ms (library %.3f ms), p99 %.3f ms (library %.3f ms)",
                     percentile(api, 50), percentile(library, 50), percentile(api, 99), percentile(library, 99)))
        metrics += [
            BenchMetric(name: "api_endpoint_add_p50_ms", value: percentile(api, 50), unit: "ms", baselineName: "library_endpoint_add_p50_ms",
                        baselineValue: percentile(library, 50)),
            BenchMetric(name: "api_endpoint_add_p99_ms", value: percentile(api, 99), unit: "ms", baselineName: "library_endpoint_add_p99_ms",
                        baselineValue: percentile(library, 99)),
            BenchMetric(name: "apply_10000_endpoints_s", value: applySeconds, unit: "s", baselineName: "library_insert_10000_s",
                        baselineValue: librarySeconds),
        ]

        // A cold start with nothing stored: the baseline of the restart and of the memory figure.
        let cold = try restartSeconds(lab, emptyState: true)
        let coldRSS = try rssMiB(lab)

        // 100,000 endpoints, then kill -9 and a start that takes over the pins.
        print("daemon: applying 100,000 endpoints")
        _ = try await client.apply(ApplyRequest(apply: [
            .droplet(Droplet(name: "remote", spec: DropletSpec(ip: IPv4Address(172, 30, 0, 200), mac: MACAddress("02:00:00:00:00:c8")!))),
            .vpc(VPC(name: "bench", spec: VPCSpec(vni: 100))),
            .network(Network(name: "wide", spec: NetworkSpec(vpc: "bench", cidr: IPv4Interface("10.0.0.0/8")!))),
        ]))
        _ = try await client.applyInChunks((0..<100_000).map(endpoint))
        let warm = try restartSeconds(lab, emptyState: false)
        let rss = try rssMiB(lab)
        for line in lab.host("hosta").log.split(separator: "\n") where line.contains("transitd ready") { print("daemon: \(line)") }
        guard try await client.list(.endpoint).count == 100_000 else { throw BenchError("endpoints lost across the restart") }
        print(String(format: "daemon: restart with 100,000 endpoints %.2f s (empty %.2f s), RSS %.1f MiB (empty %.1f MiB)", warm, cold, rss, coldRSS))
        metrics += [
            BenchMetric(name: "transitd_restart_adopt_100k_s", value: warm, unit: "s", baselineName: "transitd_start_empty_s", baselineValue: cold),
            BenchMetric(name: "transitd_rss_mib", value: rss, unit: "MiB", baselineName: "transitd_rss_empty_mib", baselineValue: coldRSS),
        ]
        return metrics
    }

    /// Kills transitd and starts it again; seconds from the start to a healthy answer.
    /// With `emptyState`, its store and pins go first (a first start).
    private func restartSeconds(_ lab: DaemonLab, emptyState: Bool) throws -> Double {
        lab.stop("hosta", signal: SIGKILL)
        if emptyState {
            try? FileManager.default.removeItem(atPath: lab.host("hosta").stateDir)
            try? BPFPinDirectory(path: lab.pinRoot + "/hosta").removeAll()
        }
        let start = Date()
        try lab.start("hosta", timeout: 120)
        return Date().timeIntervalSince(start)
    }

    private func rssMiB(_ lab: DaemonLab) throws -> Double {
        guard let pid = lab.host("hosta").process?.processID else { throw BenchError("transitd is not running") }
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { throw BenchError("no VmRSS for \(pid)") }
        return kb / 1024
    }

    /// The same adds through `MizarDataplane` directly: per-add milliseconds, and the seconds
    /// of one batch insert of `present` endpoints.
    private func libraryAdds(_ locator: BPFObjectLocator, present: Int, adds: Int) throws -> ([Double], Double) {
        let me = DropletAddress(ip: IPv4Address(192, 168, 51, 1), mac: MACAddress("02:00:00:00:01:01")!)
        let host = DropletAddress(ip: IPv4Address(192, 168, 51, 2), mac: MACAddress("02:00:00:00:01:02")!)
        let droplet = try MizarDataplane.Droplet(address: me, interface: "lo", ifindex: 1, mtu: 1500, locator: locator)
        try droplet.setVPC(MizarDataplane.VPC(vni: 100, dividers: []))
        try droplet.setNetwork(MizarDataplane.Network(vni: 100, cidr: IPv4Interface("10.0.0.0/8")!, bouncers: [me]))
        func endpoint(_ i: Int) -> MizarDataplane.Endpoint {
            MizarDataplane.Endpoint(vni: 100, ip: IPv4Address(value: 0x0a00_0000 + 2 + UInt32(i)), mac: MACAddress(value: 0x0200_0000_0000 + UInt64(i)), droplet: host)
        }
        let start = Date()
        try droplet.setEndpoints((0..<present).map(endpoint))
        let seconds = Date().timeIntervalSince(start)
        var times: [Double] = []
        for i in present..<(present + adds) {
            let t = DispatchTime.now().uptimeNanoseconds
            try droplet.setEndpoint(endpoint(i))
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
        }
        return (times, seconds)
    }
}

/// The `p`th percentile (nearest rank) of `values`.
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
}
