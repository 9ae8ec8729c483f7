import ArgumentParser
import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTopology

/// `make bench`: every figure beside a baseline measured in the same run.
@main
struct MizarBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-bench",
        abstract: "Measure the data plane and write results.json: every figure beside a baseline from the same run.",
        discussion: """
            Needs root. Sections:
              testrun   ns/packet of each packet path via BPF_PROG_TEST_RUN, against an XDP_PASS program
              overlay   pod-to-pod TCP, RTT and 64-byte UDP packet rate across two hosts, against a kernel VXLAN + bridge overlay
              scale     batch insert of 1M/10M endpoints (time, kernel memory) and lookup ns at 1k/1M/10M entries
              plugins   plugin chains of 0-8 stages, each built-in plugin's own ns, the ACL at 10,000 rules, and the ACL
                        against an equivalent nftables ruleset on the same path
              hardening what failing closed costs per packet: the known-droplet check on Geneve and the underlay check
                        on SNAT, against copies of the programs that trust the underlay
              observability what tracing and per-endpoint counters cost: trace off against the programs built
                        without trace hooks, endpoint counters against them built without, trace-on events/s
              daemon    transitd: API endpoint adds with 10,000 present (p50/p99) and a 10,000-endpoint apply against the
                        library, restart with 100,000 endpoints pinned and its RSS against an empty start
              cni       the CNI plugin: ADD/DEL latency and parallel ADDs against ptp + host-local, CRI pod start
            A section that fails is run once more; a second failure is reported (in the table and in
            results.json's "failures") and the other sections go on.
            """
    )

    enum Section: String, ExpressibleByArgument, CaseIterable {
        case testrun, overlay, scale, plugins, hardening, observability, daemon, cni, cluster
        case clusterScale = "cluster-scale", clusterLoss = "cluster-loss"
    }

    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects.")
    var bpfDir: String?

    @Option(help: "Where to write the JSON report.")
    var output = "build/bench/results.json"

    @Option(name: .customLong("section"), help: "Sections to run (repeatable): \(Section.allCases.map(\.rawValue).joined(separator: ", ")).")
    var sections: [Section] = Section.allCases

    @Option(help: "Test-run repetitions per measurement (at least 1,000,000 for stable figures).")
    var repeatCount: UInt32 = 1_000_000

    @Option(help: "Seconds of each iperf3 run (three rounds per overlay).")
    var iperfSeconds = 3

    @Option(help: "Frames the packet-rate generator sends per run.")
    var frames: UInt32 = 2_000_000

    @Option(help: "Endpoint-table sizes to insert and look up in (the first is the lookup baseline).")
    var tableSizes: [Int] = [1_000, 1_000_000, 10_000_000]

    func run() async throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let locator = BPFObjectLocator(explicit: bpfDir)
        var report = BenchReport()
        let objects = bpfDir ?? "build/bpf"
        for section in Section.allCases where sections.contains(section) {
            // One failed measurement must not cost the rest: retry the section once, then report it and go on.
            for attempt in 1...2 {
                do {
                    switch section {
                    case .testrun: report.metrics += try testRunMetrics(locator)
                    case .overlay: report.metrics += try overlayMetrics(locator)
                    case .plugins: report.metrics += try pluginMetrics(locator)
                    case .hardening: report.metrics += try hardeningMetrics(locator)
                    case .observability: report.metrics += try observabilityMetrics(locator)
                    case .scale: report.metrics += try scaleMetrics(locator, bpfDir: objects)
                    case .daemon: report.metrics += try await daemonMetrics(locator, bpfDir: objects)
                    case .cni: report.metrics += try cniMetrics(bpfDir: objects)
                    case .cluster: report.metrics += try await provisionMetrics(bpfDir: objects)
                    case .clusterScale: report.metrics += try await scaleOutMetrics(bpfDir: objects)
                    case .clusterLoss: report.metrics += try await lossRecoveryMetrics(bpfDir: objects)
                    }
                    break
                } catch {
                    print("bench: section \(section.rawValue) failed (attempt \(attempt) of 2): \(error)")
                    if attempt == 2 { report.failures.append(BenchFailure(section: section.rawValue, error: "\(error)")) }
                }
            }
        }
        print("")
        report.printTable()
        try report.write(to: output)
        print("\nwrote \(output)")
    }
}

/// The overlay of the benchmarks: DESIGN §7 without VPC 2 (a1 on host A; b1, b2 on host B).
func benchLab(_ locator: BPFObjectLocator, underlayMTU: UInt32 = 1500, agentHook: AgentHook = .tc) throws -> OverlayLab {
    try OverlayLab.design(prefix: "mzb\(getpid() % 100000)", underlayMTU: underlayMTU, agentHook: agentHook, vpc2: false, locator: locator)
}

/// Runs `a` and `b` alternately for `rounds` rounds (the order flips every round) and
/// returns the medians of each and of their difference: on a noisy VM neighbours move alike.
func alternatingMedians(rounds: Int, _ a: () throws -> Double, _ b: () throws -> Double) rethrows -> (a: Double, b: Double, difference: Double, differenceIQM: Double) {
    var first: [Double] = [], second: [Double] = [], differences: [Double] = []
    for round in 0..<rounds {
        var x = 0.0, y = 0.0
        if round % 2 == 0 {
            x = try a()
            y = try b()
        } else {
            y = try b()
            x = try a()
        }
        first.append(x)
        second.append(y)
        differences.append(x - y)
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    // The mean of the middle half: as robust as the median, but finer than the whole
    // nanoseconds the kernel reports per repetition.
    let middle = differences.sorted().dropFirst(rounds / 4).dropLast(rounds / 4)
    return (median(first), median(second), median(differences), middle.reduce(0, +) / Double(max(middle.count, 1)))
}

/// A 64-byte UDP frame (60 on the wire before the FCS).
func udp64(srcMAC: MACAddress, dstMAC: MACAddress, src: IPv4Address, dst: IPv4Address) -> [UInt8] {
    PacketBuilder.ethernet(src: srcMAC, dst: dstMAC, etherType: PacketBuilder.etherTypeIPv4,
                           payload: PacketBuilder.ipv4(src: src, dst: dst, protocol: PacketBuilder.protocolUDP,
                                                       payload: PacketBuilder.udp(src: src, dst: dst, sourcePort: 1000, destinationPort: 9, payload: Array(repeating: 0, count: 18))))
}

/// An XDP_PASS program: the baseline of every test-run figure.
func passProgram(_ locator: BPFObjectLocator) throws -> BPFProgram {
    let object = try locator.open(MZ_PROBE_OBJECT)
    try object.load()
    return try object.program(named: MZ_PROBE_VERDICT_PROG)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
