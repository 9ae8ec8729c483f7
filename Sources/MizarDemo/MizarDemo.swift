import ArgumentParser
import Foundation
import MizarAPI
import MizarClient
import MizarNet
import MizarTopology

/// `make demo`: a small Mizar overlay run by the product — one transitd per namespaced
/// droplet (two hosts, a bouncer, a divider), programmed only with `mizarctl apply` of the
/// manifests in docs/examples/demo, crossed by real ping and iperf3, with the counters that
/// show each packet path and a plugin chain changed with `mizarctl chain`. Everything is
/// removed at the end.
@main
struct MizarDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-demo",
        abstract: "Run transitd on 4 namespaced droplets, build an overlay with mizarctl apply, send ping and iperf3 across, show the counters.",
        discussion: "Needs root, transitd, mizarctl and mizar (the CNI plugin) beside this binary. Namespaces are named mzdemo-*; all are removed on exit."
    )

    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects.")
    var bpfDir = "build/bpf"

    @Option(help: "Directory of the demo's manifests.")
    var examples = "docs/examples/demo"

    @Option(help: "Seconds of the iperf3 run.")
    var seconds = 3

    @Option(help: "Where the agent runs on endpoint veths: tc (keeps GSO, default) or xdp.")
    var agentHook: AgentHook = .tc

    @Flag(inversion: .prefixedNo, help: "Also show the plugin chain: an ACL, then a shaper switched in live.")
    var plugins = true

    @Flag(help: "Run the cluster demo instead (make demo-cluster): a 3-member etcd, 4 droplets, the controller, a droplet lost.")
    var cluster = false

    static let droplets = ["hosta", "hostb", "bouncer", "divider"]

    func run() async throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        if cluster { return try await ClusterDemo(bin: bin, bpfDir: bpfDir, examples: "docs/examples").run() }
        // Names are fixed (the manifests name the namespaces): clear what an interrupted run left.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: Netns.namedDirectory)) ?? [] where name.hasPrefix("mzdemo-") {
            _ = try? Netns.delete(named: name)
        }
        let lab = try DaemonLab(prefix: "mzdemo", droplets: MizarDemo.droplets, transitd: bin + "/transitd", bpfDir: bpfDir)
        defer {
            lab.teardown()
            print("\nstopped every transitd; removed every namespace of mzdemo (and with them veths, bridge, programs and pins)")
        }
        lab.extraArguments = ["--agent-hook", agentHook.rawValue]
        let demo = Demo(lab: lab, mizarctl: bin + "/mizarctl")
        print("fabric bridge mzdemobr; one transitd per droplet:")
        for name in MizarDemo.droplets {
            try lab.start(name)
            let me = try await lab.host(name).client.status().droplet
            print("  \(name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(me.spec.ip) \(me.spec.mac)  transit XDP \(me.status?.xdpMode ?? "?"), agents at \(agentHook.rawValue), API \(lab.host(name).socket)")
        }
        for name in ["a1", "b1", "b2"] { _ = try lab.endpointNamespace(name) }

        print("\nthe same manifests go to every droplet; each keeps what its roles need")
        for name in MizarDemo.droplets { try demo.mizarctl(name, ["apply", "-f", examples], show: name == "hosta") }
        try demo.mizarctl("bouncer", ["get", "endpoints"])
        try demo.mizarctl("hosta", ["get", "networks"])

        try await demo.ping("ping a1 -> b1 (same network): the first packet passes the bouncer, the rest go host to host", to: "10.0.1.3")
        try await demo.ping("ping a1 -> b2 (other network): every packet passes the divider", to: "10.0.2.3")
        print("\n$ iperf3 -c 10.0.1.3 -t \(seconds)   (in a1)")
        let end = try iperf3(from: demo.netns("a1"), to: demo.netns("b1"), server: IPv4Address(10, 0, 1, 3), seconds: seconds)
        let bps = ((end["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        print(String(format: "TCP a1 -> b1 across the overlay: %.2f Gbit/s", bps / 1e9))

        try await demo.countersTable()
        guard try await demo.counter("bouncer", "bounced") > 0, try await demo.counter("divider", "divided") >= 5 else {
            print("the bouncer or the divider saw nothing: the overlay is not working")
            throw ExitCode.failure
        }
        try demo.cniStep(mizar: bin + "/mizar")
        if plugins { try await demo.pluginSteps(examples: examples) }
    }
}

extension AgentHook: ExpressibleByArgument {}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
