import Foundation
import MizarAPI
import MizarClient
import MizarNet
import MizarTopology

/// The cluster section: transitd's (release) in cluster mode on a real etcd, in namespaced
/// droplets. etcd keeps its data on tmpfs (/dev/shm): its fsync is then what a fast SSD
/// gives, not this machine's shared disk.
/// Three sections, each retried on its own: `cluster`, `cluster-scale`, `cluster-loss`.
extension MizarBench {
    /// Where the release binaries are: beside this one.
    private var bin: String { URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path }

    /// An endpoint created through its droplet's transitd, timed until the call returns — when
    /// every bouncer of its network holds it — for networks of 1, 2, 4 and 8 bouncers, in
    /// alternating rounds; the baseline is the same call on a transitd of one host (no etcd).
    func provisionMetrics(bpfDir: String) async throws -> [BenchMetric] {
        let bouncers = (1...8).map { "b\($0)" }
        let lab = try ClusterLab(droplets: ["h0"] + bouncers, leaseTTL: 10, transitd: bin + "/transitd", bpfDir: bpfDir, etcdDataRoot: "/dev/shm")
        defer { lab.teardown() }
        try lab.start()
        let client = lab.host("h0").client
        try await awaitLive(client, count: 9)
        let counts = [1, 2, 4, 8]
        var request = ApplyRequest(apply: [.vpc(VPC(name: "v1", spec: VPCSpec(vni: 100, dividers: ["h0"])))])
        for k in counts {
            request.apply.append(.network(Network(name: "n\(k)", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.\(k).0.0/16")!,
                                                                                    bouncers: Array(bouncers.prefix(k))))))
        }
        _ = try await client.apply(request)
        try await awaitBouncers(lab, networks: counts.count)

        let solo = try DaemonLab(prefix: "mzs\(getpid() % 100000)", droplets: ["solo"], transitd: bin + "/transitd", bpfDir: bpfDir)
        defer { solo.teardown() }
        try solo.start("solo")

        let rounds = 40
        var times: [Int: [Double]] = [:], single: [Double] = []
        for round in 0..<rounds {
            for k in counts {
                let netns = try lab.daemons.endpointNamespace("p\(k)-\(round)")
                times[k, default: []].append(try await timed { _ = try await client.put(.endpoint(Endpoint(name: "p\(k)-\(round)",
                                                                                                           spec: EndpointSpec(network: "n\(k)", netns: netns.path)))) })
            }
            let netns = try solo.endpointNamespace("s\(round)")
            single.append(try await timed { _ = try await solo.host("solo").client.put(.endpoint(Endpoint(name: "s\(round)",
                                                                                                      spec: EndpointSpec(network: "net0", netns: netns.path)))) })
        }
        for k in counts {
            print(String(format: "cluster: endpoint provision with %d bouncers p50 %.2f ms p99 %.2f ms (one host, no etcd: p50 %.2f ms)",
                         k, percentile(times[k]!, 50), percentile(times[k]!, 99), percentile(single, 50)))
        }
        var metrics: [BenchMetric] = []
        for k in [1, 2, 4] {
            metrics.append(BenchMetric(name: "endpoint_provision_ms_\(k)_bouncers_p50", value: percentile(times[k]!, 50), unit: "ms",
                                       baselineName: "endpoint_provision_ms_single_host_p50", baselineValue: percentile(single, 50)))
        }
        // The scaling claim: the 8-bouncer time against the 1-bouncer time (target ratio at most 1.2).
        metrics.append(BenchMetric(name: "endpoint_provision_ms_8_bouncers_p50", value: percentile(times[8]!, 50), unit: "ms",
                                   baselineName: "endpoint_provision_ms_1_bouncers_p50", baselineValue: percentile(times[1]!, 50)))
        for k in counts {
            metrics.append(BenchMetric(name: "endpoint_provision_ms_\(k)_bouncers_p99", value: percentile(times[k]!, 99), unit: "ms",
                                       baselineName: "endpoint_provision_ms_single_host_p99", baselineValue: percentile(single, 99)))
        }
        return metrics
    }

    /// 10,000 endpoints, 2,500 on each of 4 droplets (their veths made beforehand, untimed),
    /// created through the 4 transitd's at once with mizarctl's chunking; timed until both
    /// bouncers of the network hold all 10,000. Also: etcd revisions (write transactions) per endpoint.
    func scaleOutMetrics(bpfDir: String) async throws -> [BenchMetric] {
        let droplets = (1...4).map { "d\($0)" }, perDroplet = 2_500
        let lab = try ClusterLab(droplets: droplets, leaseTTL: 10, transitd: bin + "/transitd", bpfDir: bpfDir, etcdDataRoot: "/dev/shm")
        defer { lab.teardown() }
        try lab.start()
        let client = lab.host("d1").client
        try await awaitLive(client, count: 4)
        _ = try await client.apply(ApplyRequest(apply: [
            .vpc(VPC(name: "v1", spec: VPCSpec(vni: 100))),
            .network(Network(name: "wide", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.64.0.0/16")!, bouncerCount: 2))),
        ]))
        try await awaitBouncers(lab, networks: 1)
        let placed = try await client.bouncers().map(\.droplet)
        // The veths, made with ip's batch mode inside each droplet (setup, not timed).
        for d in droplets {
            // Below the endpoint MTU already: transitd need not lower it (each MTU change walks the kernel's whole IPv6 route table).
            let script = (0..<perDroplet).map { "link add v\($0) mtu 1400 type veth peer name p\($0) mtu 1400\nlink set v\($0) up\nlink set p\($0) up" }.joined(separator: "\n")
            let made = try runCommand(["ip", "-b", "-"], in: lab.host(d).netns, input: script + "\n", timeout: 600)
            guard made.status == 0 else { throw BenchError("veths on \(d): \(made.error)") }
        }
        let before = try lab.etcd.revision()
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for d in droplets {
                let c = lab.host(d).client
                group.addTask {
                    let endpoints = (0..<perDroplet).map { AnyResource.endpoint(Endpoint(name: "\(d)-\($0)", spec: EndpointSpec(network: "wide", hostInterface: "v\($0)"))) }
                    _ = try await c.applyInChunks(endpoints)
                }
            }
            try await group.waitForAll()
        }
        for b in placed {
            let deadline = Date().addingTimeInterval(120)
            while try await lab.host(b).client.status().resources["Endpoint"] ?? 0 < droplets.count * perDroplet, Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let writes = Double(try lab.etcd.revision() - before) / Double(droplets.count * perDroplet)
        print(String(format: "cluster: 10,000 endpoints across 4 droplets in %.2f s, %.2f etcd writes per endpoint", seconds, writes))
        return [
            BenchMetric(name: "endpoints_10000_across_4_droplets_s", value: seconds, unit: "s", baselineName: "target_s", baselineValue: 20),
            BenchMetric(name: "etcd_writes_per_endpoint", value: writes, unit: "revisions", baselineName: "keys_per_endpoint", baselineValue: 2),
        ]
    }

    /// A network of one bouncer, the direct path off (every frame crosses the bouncer), a ping
    /// every 10 ms between two endpoints on other droplets; the bouncer's droplet dies whole
    /// (transitd killed, its link down). Timed from the kill to the first reply after it;
    /// the baseline is the lease TTL, the least it can take.
    func lossRecoveryMetrics(bpfDir: String) async throws -> [BenchMetric] {
        let droplets = ["d1", "d2", "d3", "d4"], ttl = 3
        let lab = try ClusterLab(droplets: droplets, leaseTTL: ttl, transitd: bin + "/transitd", bpfDir: bpfDir, etcdDataRoot: "/dev/shm")
        defer { lab.teardown() }
        lab.daemons.extraArguments += ["--direct-path-max-age", "0"]
        try lab.start()
        // The controller on a host of its own (the etcd member's): the droplet that dies must not take it along.
        try lab.startController("ctl1", on: nil, binary: bin + "/mizar-controller", leaseTTL: ttl)
        let client = lab.host("d1").client
        try await awaitLive(client, count: 4)
        _ = try await client.apply(ApplyRequest(apply: [
            .vpc(VPC(name: "v1", spec: VPCSpec(vni: 100))),
            .network(Network(name: "n1", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.1.0.0/24")!, bouncerCount: 1))),
        ]))
        let victim = try await client.bouncers().first { $0.network == "n1" }!.droplet
        let others = droplets.filter { $0 != victim }
        let x = try lab.daemons.endpointNamespace("x"), y = try lab.daemons.endpointNamespace("y")
        _ = try await lab.host(others[1]).client.put(.endpoint(Endpoint(name: "x", spec: EndpointSpec(network: "n1", netns: x.path))))
        guard case .endpoint(let ye) = try await lab.host(others[2]).client.put(.endpoint(Endpoint(name: "y", spec: EndpointSpec(network: "n1", netns: y.path)))),
              let yip = ye.spec.ip else { throw BenchError("y has no address") }
        guard try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(yip)"], in: x).status == 0 else { throw BenchError("no ping before the loss") }
        let ping = try RunningCommand(["ping", "-D", "-i", "0.01", "-w", "\(ttl + 8)", "\(yip)"], in: x)
        try await Task.sleep(for: .milliseconds(500))
        let killed = Date().timeIntervalSince1970
        lab.daemons.stop(victim, signal: SIGKILL)
        try runCommand(["ip", "link", "set", "eth0", "down"], in: lab.host(victim).netns)
        let output = ping.wait(timeout: 30).output
        // Lines: "[1764620000.123456] 64 bytes from ...".
        let replies = output.split(separator: "\n").compactMap { line -> Double? in
            guard line.contains("bytes from"), let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { return nil }
            return Double(line[line.index(after: open)..<close])
        }
        guard let first = replies.first(where: { $0 > killed + 0.05 }) else { throw BenchError("pings never came back:\n\(output.suffix(500))") }
        let recovery = first - killed
        print(String(format: "cluster: bouncer droplet lost, pings back after %.2f s (lease TTL %d s)", recovery, ttl))
        return [BenchMetric(name: "droplet_loss_recovery_s", value: recovery, unit: "s", baselineName: "lease_ttl_s", baselineValue: Double(ttl))]
    }

    private func timed(_ body: () async throws -> Void) async throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try await body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    private func awaitLive(_ client: MizarClient, count: Int) async throws {
        let deadline = Date().addingTimeInterval(30)
        while (try await client.status().cluster?.live.count ?? 0) < count {
            guard Date() < deadline else { throw BenchError("fewer than \(count) droplets registered") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until every droplet has the networks (so that the first provision finds its bouncers ready).
    private func awaitBouncers(_ lab: ClusterLab, networks: Int) async throws {
        for host in lab.daemons.hosts.keys {
            let deadline = Date().addingTimeInterval(30)
            while try await lab.host(host).client.list(.network).count < networks {
                guard Date() < deadline else { throw BenchError("\(host) did not get the networks") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
