import ArgumentParser
import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarTopology

/// `make fuzz`: random and mutated frames through transit XDP and the transit agent.
@main
struct MizarFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-fuzz",
        abstract: "Send random and mutated frames through transit XDP and the transit agent (BPF_PROG_TEST_RUN) and check the data plane's invariants.",
        discussion: """
            Needs root. Builds the DESIGN §7 lab (four droplets, VPC 100 and VPC 200 reusing 10.0.1.0/24) in
            namespaces of its own and sends each frame to one of: transit XDP of hostb (endpoints of both VPCs),
            of the bouncer, of the divider, and the XDP agent of a1. Frames are well-formed Geneve (any VNI,
            RTS naming droplets or strangers, unknown and critical options, from droplets and from a stranger),
            host traffic, endpoint traffic (ICMP, UDP, TCP, ARP, any protocol, spoofed sources) and random bytes;
            two thirds are then mutated (bytes overwritten, bits flipped, cut short, padded). After every frame:
            exactly one outcome counted, the verdict its slot names, nothing across VNIs, no checksum broken.
            A run is replayed exactly by its seed. Exit status 1 when an invariant broke.
            """
    )

    @Option(help: "Seed of the frame generator.")
    var seed: UInt64 = 13

    @Option(help: "Frames to send.")
    var frames = 1_000_000

    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects.")
    var bpfDir: String?

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let lab = try OverlayLab.design(prefix: "mzf\(getpid() % 100000)", agentHook: .xdp, vpc2: true, locator: BPFObjectLocator(explicit: bpfDir))
        defer { lab.teardown() }
        // The programs are attached for real: IPv6 chatter (router solicitations, MLD) would
        // reach them between a frame's counter reads. The lab's namespaces speak IPv4 only.
        for name in try FileManager.default.contentsOfDirectory(atPath: "/run/netns") where name.hasPrefix(lab.prefix) {
            _ = try runCommand(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"], in: try Netns(name))
        }
        sleep(1)  // what the namespaces sent while setting up has arrived
        var gateways: [MACAddress: (vni: UInt32, ip: IPv4Address)] = [:]
        for name in ["a1", "b1", "b2", "v2"] {
            gateways[try lab.hostSideLink(name).mac!] = (lab.guest(name).vni.rawValue, lab.guest(name).ip)
        }
        let transit = ["hostb", "bouncer", "divider"].map { name in
            FuzzTarget(name: "transit@\(name)", netns: lab.host(name).netns, program: lab.host(name).dataplane.transitProgram,
                       ingressIfindex: 0, isAgent: false, droplet: lab.host(name).dataplane)
        }
        let hosta = lab.host("hosta")
        let agent = FuzzTarget(name: "agent@a1", netns: hosta.netns, program: hosta.dataplane.agentProgram,
                               ingressIfindex: UInt32(try lab.hostSideLink("a1").index), isAgent: true, droplet: hosta.dataplane)
        let droplets = ["hosta", "hostb", "bouncer", "divider"].map { lab.host($0).address }
        let targets = ["a1", "b1", "b2", "v2"].map { lab.guest($0).ip } + [IPv4Address(10, 0, 1, 77), IPv4Address(10, 0, 2, 77), IPv4Address(10, 9, 9, 9)]
        var fuzzer = Fuzzer(targets: transit + [agent], endpointsByGateway: gateways, agentVNI: lab.guest("a1").vni.rawValue,
                            generator: FrameGenerator(seed: seed, droplets: droplets, innerTargets: targets))
        var report = FuzzReport()
        let start = Date()
        print("fuzz: seed \(seed), \(frames) frames over \(fuzzer.targets.map(\.name).joined(separator: ", "))")
        let chunk = max(frames / 10, 1)
        while report.frames < frames {
            try fuzzer.run(frames: min(chunk, frames - report.frames), report: &report)
            print("fuzz: \(report.frames) frames, \(report.violations.count) violations, \(Int(Date().timeIntervalSince(start))) s")
        }
        print("\nOUTCOME                                          FRAMES")
        for (outcome, count) in report.outcomes.sorted(by: { $0.key < $1.key }) {
            print(outcome.padding(toLength: 48, withPad: " ", startingAt: 0) + " \(count)")
        }
        for line in report.violations.prefix(20) { print("VIOLATION " + line) }
        print("\nfuzz: \(report.frames) frames, \(report.outcomes.count) distinct outcomes, \(report.violations.count) violations, seed \(seed)")
        if !report.violations.isEmpty { throw ExitCode(1) }
    }
}
