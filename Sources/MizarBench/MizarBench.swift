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
struct MizarBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-bench",
        abstract: "Measure transit XDP (ns/packet via test-run, TCP throughput across a veth) and write results.json.",
        discussion: "Needs root. Each figure comes with a baseline measured in the same run and their ratio."
    )

    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects.")
    var bpfDir: String?

    @Option(help: "Where to write the JSON report.")
    var output = "build/bench/results.json"

    @Option(help: "Test-run repetitions per measurement (at least 1,000,000 for stable figures).")
    var repeatCount: UInt32 = 1_000_000

    @Option(help: "Seconds of each iperf3 run.")
    var iperfSeconds = 5

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let locator = BPFObjectLocator(explicit: bpfDir)
        var report = BenchReport()
        report.metrics += try testRunMetrics(locator)
        report.metrics += try throughputMetrics(locator)
        print("")
        report.printTable()
        try report.write(to: output)
        print("\nwrote \(output)")
    }

    /// transit_xdp ns/packet against a program that only returns XDP_PASS, on the same packets.
    private func testRunMetrics(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        let transit = try Droplet(address: DropletAddress(ip: BenchPackets.ipB, mac: BenchPackets.macB), interface: "lo", ifindex: 1, mtu: 1500, locator: locator)
        let baselineObject = try locator.open(MZ_PROBE_OBJECT)
        try baselineObject.load()
        let baseline = try baselineObject.program(named: MZ_PROBE_VERDICT_PROG)
        let packets: [(String, [UInt8])] = [("geneve", BenchPackets.geneve), ("plain", BenchPackets.plainTCP)]
        return try packets.map { label, packet in
            print("test-run: transit_xdp on a \(label) packet (\(packet.count) bytes), \(repeatCount) repetitions x 5")
            let value = try median(5) { Double(try transit.transitProgram.testRun(packet: packet, repeat: repeatCount).nanosecondsPerRun) }
            let base = try median(5) { Double(try baseline.testRun(packet: packet, repeat: repeatCount).nanosecondsPerRun) }
            return BenchMetric(name: "transit_xdp_\(label)_ns_per_packet", value: value, unit: "ns",
                               baselineName: "xdp_pass_\(label)_ns_per_packet", baselineValue: base)
        }
    }

    /// TCP across a veth pair: transit XDP attached natively on the receiver, against nothing
    /// attached (the issue's ratio) and against a program that only passes (the cost of the hook itself).
    private func throughputMetrics(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        let bed = try VethPairTopology(prefix: "mzbench\(getpid() % 10000)")
        defer { bed.teardown() }
        print("iperf3: \(iperfSeconds) s TCP \(bed.nameA) -> \(bed.nameB), without XDP")
        let plain = try iperf(bed)

        let passObject = try locator.open(MZ_PROBE_OBJECT)
        try passObject.load()
        let passLink = try bed.nsB.perform { try XDP.attach(passObject.program(named: MZ_PROBE_VERDICT_PROG), ifindex: bed.indexB, mode: .native) }
        print("iperf3: \(iperfSeconds) s TCP, an XDP_PASS-only program attached natively to \(bed.nameB)")
        let passOnly = try iperf(bed)

        let transit = try Droplet(address: DropletAddress(ip: bed.addressB, mac: BenchPackets.macB), interface: bed.nameB, ifindex: bed.indexB, mtu: 1500, locator: locator)
        try passLink.update(to: transit.transitProgram)
        print("iperf3: \(iperfSeconds) s TCP, transit XDP attached natively to \(bed.nameB)")
        let withXDP = try iperf(bed)
        let seen = try transit.transitCounters().totalPackets
        guard seen > 0 else { throw BenchError("transit XDP saw no packets during the iperf3 run") }
        return [
            BenchMetric(name: "tcp_veth_with_transit_xdp_gbps", value: withXDP, unit: "Gbit/s",
                        baselineName: "tcp_veth_without_xdp_gbps", baselineValue: plain),
            BenchMetric(name: "tcp_veth_with_transit_xdp_gbps", value: withXDP, unit: "Gbit/s",
                        baselineName: "tcp_veth_with_xdp_pass_gbps", baselineValue: passOnly),
        ]
    }

    /// One iperf3 run from A to B; Gbit/s received.
    private func iperf(_ bed: VethPairTopology) throws -> Double {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        server.arguments = ["--net=\(bed.nsB.path)", "iperf3", "-s", "-1", "-B", bed.addressB.description]
        server.standardOutput = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit() }
        var result: CommandResult?
        // Until the server listens: a refused connect fails fast, with or without a zero status.
        for _ in 0..<50 where result.map({ $0.status != 0 || $0.output.contains("\"error\"") }) ?? true {
            if result != nil { usleep(100_000) }
            result = try runCommand(["iperf3", "-c", bed.addressB.description, "-t", "\(iperfSeconds)", "-J"], in: bed.nsA, timeout: Double(iperfSeconds + 30))
        }
        guard let result, result.status == 0,
              let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let end = json["end"] as? [String: Any], let received = end["sum_received"] as? [String: Any],
              let bps = received["bits_per_second"] as? Double else {
            throw BenchError("iperf3 failed: \(result?.error ?? "") \(result?.output.prefix(400) ?? "")")
        }
        return bps / 1e9
    }
}

/// The packets the test-run figures use.
enum BenchPackets {
    static let macA = MACAddress("02:00:00:00:00:01")!
    static let macB = MACAddress("02:00:00:00:00:02")!
    static let ipA = IPv4Address(192, 168, 50, 1)
    static let ipB = IPv4Address(192, 168, 50, 2)

    static let inner = PacketBuilder.ethernet(
        src: MACAddress("02:00:0a:00:01:02")!, dst: MACAddress("02:00:0a:00:01:03")!, etherType: PacketBuilder.etherTypeIPv4,
        payload: PacketBuilder.ipv4(src: IPv4Address(10, 0, 1, 2), dst: IPv4Address(10, 0, 1, 3), protocol: PacketBuilder.protocolUDP,
                                    payload: PacketBuilder.udp(src: IPv4Address(10, 0, 1, 2), dst: IPv4Address(10, 0, 1, 3), sourcePort: 1000, destinationPort: 2000, payload: Array(repeating: 0, count: 18))))

    /// Underlay Geneve frame with the RTS option around a 64-byte inner frame.
    static let geneve = PacketBuilder.geneveFrame(outerSrcMAC: macA, outerDstMAC: macB, outerSrc: ipA, outerDst: ipB, vni: 100,
                                                  options: [.returnToSender(dropletIP: ipA, dropletMAC: macA)], inner: inner)

    /// A plain TCP segment to the droplet (the host's own traffic).
    static let plainTCP = PacketBuilder.ethernet(src: macA, dst: macB, etherType: PacketBuilder.etherTypeIPv4,
                                                 payload: PacketBuilder.ipv4(src: ipA, dst: ipB, protocol: PacketBuilder.protocolTCP, payload: Array(repeating: 0, count: 32)))
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
