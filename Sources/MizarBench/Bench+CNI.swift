import Foundation
import MizarCNI
import MizarNet
import MizarTopology

/// The CNI section: `mizar` (release, static) plugging containers through a running transitd,
/// against Debian's `ptp` + `host-local` driven the same way in the same run: each plugin
/// spawned by this process with the CNI variables and its configuration, from spawn to exit.
extension MizarBench {
    func cniMetrics(bpfDir: String) throws -> [BenchMetric] {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let lab = try DaemonLab(prefix: "mzc\(getpid() % 100000)", droplets: ["hosta"], transitd: bin + "/transitd", bpfDir: bpfDir)
        defer { lab.teardown() }
        try lab.start("hosta")
        let count = 200, parallel = 50
        let containers = try (0..<count).map { try lab.endpointNamespace("c\($0)") }
        // ptp puts its host side where it runs: a namespace of the bench's own, not the host's.
        let runtime = try lab.endpointNamespace("runtime")
        let mizar = Plugin(path: bin + "/mizar", config: #"{"cniVersion":"1.1.0","name":"bench","type":"mizar","socket":"\#(lab.host("hosta").socket)"}"#)
        let ptp = Plugin(path: "/usr/lib/cni/ptp", config: #"{"cniVersion":"1.0.0","name":"benchptp","type":"ptp","ipam":{"type":"host-local","subnet":"10.99.0.0/16","dataDir":"\#(lab.root)/ipam"}}"#)

        var figures: [String: (add: [Double], del: [Double], parallelAddPerS: Double)] = [:]
        for (name, plugin) in [("mizar", mizar), ("ptp", ptp)] {
            let add = try containers.enumerated().map { try plugin.time("ADD", container: "c\($0.offset)", netns: $0.element, in: runtime) }
            let del = try containers.enumerated().map { try plugin.time("DEL", container: "c\($0.offset)", netns: $0.element, in: runtime) }
            // Each phase starts with the kernel quiet: transitd deletes retired veths in the
            // background, and those deletions hold the RTNL lock every netlink change needs.
            try lab.awaitRetiredVeths("hosta")
            // 50 ADDs at once (then their DELs, untimed).
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try MizarTopology.parallel(parallel) { i in try plugin.time("ADD", container: "p\(i)", netns: containers[i], in: runtime) }
            let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            _ = try MizarTopology.parallel(parallel) { i in try plugin.time("DEL", container: "p\(i)", netns: containers[i], in: runtime) }
            try lab.awaitRetiredVeths("hosta")
            figures[name] = (add, del, Double(parallel) / wall)
            print(String(format: "cni: %@ ADD p50 %.2f ms p99 %.2f ms, DEL p50 %.2f ms, %d parallel ADDs %.0f/s", name, percentile(add, 50),
                         percentile(add, 99), percentile(del, 50), parallel, Double(parallel) / wall))
        }
        let (criMizar, criPTP) = try criPodStarts(lab, mizarBinary: bin + "/mizar")
        let m = figures["mizar"]!, p = figures["ptp"]!
        return [
            BenchMetric(name: "cri_pod_start_p50_ms", value: percentile(criMizar, 50), unit: "ms", baselineName: "cri_pod_start_ptp_p50_ms",
                        baselineValue: percentile(criPTP, 50)),
            BenchMetric(name: "cni_add_p50_ms", value: percentile(m.add, 50), unit: "ms", baselineName: "ptp_add_p50_ms", baselineValue: percentile(p.add, 50)),
            BenchMetric(name: "cni_add_p99_ms", value: percentile(m.add, 99), unit: "ms", baselineName: "ptp_add_p99_ms", baselineValue: percentile(p.add, 99)),
            BenchMetric(name: "cni_del_p50_ms", value: percentile(m.del, 50), unit: "ms", baselineName: "ptp_del_p50_ms", baselineValue: percentile(p.del, 50)),
            BenchMetric(name: "cni_parallel_add_per_s", value: m.parallelAddPerS, unit: "1/s", baselineName: "ptp_parallel_add_per_s",
                        baselineValue: p.parallelAddPerS),
        ]
    }

    /// Pod starts through containerd's CRI service (RunPodSandbox, which returns once the
    /// sandbox runs with its network): `mizar` against `ptp` + `host-local`, each with a
    /// containerd of its own in a namespace of the bench's. Milliseconds per pod.
    private func criPodStarts(_ lab: DaemonLab, mizarBinary: String, pods: Int = 20) throws -> (mizar: [Double], ptp: [Double]) {
        let client = FileManager.default.currentDirectoryPath + "/cni/cri/cri.py"
        guard FileManager.default.fileExists(atPath: client) else { throw BenchError("no \(client): run the bench from the source tree") }
        let runtime = try lab.endpointNamespace("cri-runtime")
        let plugins = [
            "mizar": #"{"type":"mizar","socket":"\#(lab.host("hosta").socket)"}"#,
            "ptp": #"{"type":"ptp","ipMasq":false,"ipam":{"type":"host-local","subnet":"10.98.0.0/16","dataDir":"\#(lab.root)/cri-ipam"}}"#,
        ]
        var times: [String: [Double]] = [:]
        for name in ["mizar", "ptp"] {
            let conf = lab.root + "/cri-\(name)-net.d", bin = lab.root + "/cri-\(name)-bin"
            for dir in [conf, bin] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            for plugin in ["loopback", "ptp", "host-local"] {
                try FileManager.default.createSymbolicLink(atPath: bin + "/" + plugin, withDestinationPath: "/usr/lib/cni/" + plugin)
            }
            try FileManager.default.createSymbolicLink(atPath: bin + "/mizar", withDestinationPath: mizarBinary)
            try #"{"cniVersion":"1.0.0","name":"bench","plugins":[\#(plugins[name]!)]}"#.write(toFile: conf + "/10-bench.conflist", atomically: true, encoding: .utf8)
            let containerd = try Containerd(dir: lab.root + "/cri-\(name)", cri: Containerd.criSection(confDir: conf, binDir: bin), criClient: client, in: runtime)
            defer { containerd.stop() }
            // One pod first: the sandbox image's snapshot is made on the first start.
            try containerd.removePod(try containerd.runPod("warmup", namespace: "bench"))
            let run = try containerd.cri(["run", "pod", "bench", "\(pods)"], timeout: 600)
            let lines = run.output.split(separator: "\n").map { $0.split(separator: " ") }.filter { $0.count == 2 }
            guard run.status == 0, lines.count == pods else { throw BenchError("CRI pod starts with \(name): \(run.output)\(run.error)") }
            times[name] = lines.compactMap { Double($0[1]).map { $0 * 1000 } }
            for line in lines { _ = try? containerd.cri(["stop", String(line[0])]); _ = try? containerd.cri(["remove", String(line[0])]) }
            print(String(format: "cni: CRI pod start with %@: p50 %.1f ms over %d pods", name, percentile(times[name]!, 50), pods))
        }
        return (times["mizar"]!, times["ptp"]!)
    }

    /// A CNI plugin and its configuration, run as a runtime runs it.
    private struct Plugin {
        let path: String
        let config: String

        /// Milliseconds from spawn to exit of one call, made from inside `runtime`.
        func time(_ command: String, container: String, netns: Netns, in runtime: Netns) throws -> Double {
            let env = ["CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns.path, "CNI_IFNAME": "eth0",
                       "CNI_PATH": "/usr/lib/cni", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            let (ms, status, output) = try runtime.perform { () throws -> (Double, Int32, [UInt8]) in
                let start = DispatchTime.now().uptimeNanoseconds
                let (status, output) = try Subprocess.run(path, environment: env, input: Array(config.utf8))
                return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6, status, output)
            }
            guard status == 0 else { throw BenchError("\(path) \(command) \(container) failed: \(String(decoding: output, as: UTF8.self))") }
            return ms
        }
    }
}
