import ArgumentParser
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarTopology

/// `make demo`: a small Mizar overlay in namespaces — two hosts, a bouncer, a divider, two
/// networks — programmed through MizarDataplane, crossed by real ping and iperf3, with the
/// counters that show each packet path. Everything is removed at the end.
@main
struct MizarDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-demo",
        abstract: "Build a small overlay (2 hosts, 1 bouncer, 1 divider, 2 networks) in namespaces, send ping and iperf3 across, show the counters.",
        discussion: "Needs root. Every namespace is named mzdemo<N>-*, and all are removed on exit."
    )

    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects.")
    var bpfDir: String?

    @Option(help: "Seconds of the iperf3 run.")
    var seconds = 3

    @Option(help: "Where the agent runs on endpoint veths: tc (keeps GSO, default) or xdp.")
    var agentHook: AgentHook = .tc

    @Flag(inversion: .prefixedNo, help: "Also show the plugin chain: an ACL, then a shaper switched in live.")
    var plugins = true

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let lab = try OverlayLab.design(prefix: "mzdemo\(getpid() % 10000)", agentHook: agentHook, vpc2: false,
                                        locator: BPFObjectLocator(explicit: bpfDir))
        defer {
            lab.teardown()
            print("\nremoved every namespace of \(lab.prefix) (and with them veths, bridge and programs)")
        }
        print("fabric bridge \(lab.prefix)br; droplets:")
        for name in ["hosta", "hostb", "bouncer", "divider"] {
            let host = lab.host(name)
            print("  \(name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(host.address)  transit XDP \(host.dataplane.attachedMode?.description ?? "?"), agent at \(agentHook.rawValue)")
        }
        print("VPC 100 (divider: divider), networks 10.0.1.0/24 and 10.0.2.0/24 (bouncer: bouncer)")
        print("endpoints a1 10.0.1.2 on hosta, b1 10.0.1.3 and b2 10.0.2.3 on hostb (endpoint MTU \(lab.host("hosta").dataplane.endpointMTU))")

        try step("ping a1 -> b1 (same network): the first packet passes the bouncer, the rest go host to host",
                 ["ping", "-c", "5", "-i", "0.2", "10.0.1.3"], lab)
        try step("ping a1 -> b2 (other network): every packet passes the divider", ["ping", "-c", "5", "-i", "0.2", "10.0.2.3"], lab)
        print("\n$ iperf3 -c 10.0.1.3 -t \(seconds)   (in a1)")
        let end = try lab.iperf(from: "a1", to: "b1", seconds: seconds)
        let bps = ((end["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        print(String(format: "TCP a1 -> b1 across the overlay: %.2f Gbit/s", bps / 1e9))

        print("\ncounters (packets; transit XDP on each droplet's eth0, the agent on its endpoints' veths):")
        let droplets = ["hosta", "hostb", "bouncer", "divider"]
        let transit = try droplets.map { try lab.host($0).dataplane.transitCounters() }
        let agent = try droplets.map { try lab.host($0).dataplane.agentCounters() }
        print("  " + "".padding(toLength: 30, withPad: " ", startingAt: 0) + droplets.map { $0.leftPad(10) }.joined())
        for slot in [TransitStat.delivered, .bounced, .divided, .fallback, .unknownEndpoint, .learned, .nonIPv4, .nonUDP] {
            print("  " + "transit \(slot)".padding(toLength: 30, withPad: " ", startingAt: 0) + transit.map { "\($0[slot].packets)".leftPad(10) }.joined())
        }
        for slot in [AgentStat.arpReplied, .local, .toBouncer, .direct, .toDivider, .spoofedIP, .spoofedMAC] {
            print("  " + "agent \(slot)".padding(toLength: 30, withPad: " ", startingAt: 0) + agent.map { "\($0[slot].packets)".leftPad(10) }.joined())
        }
        print("\ndirect paths learned from RTS options:")
        for name in ["hosta", "hostb"] {
            for (id, droplet) in try lab.host(name).dataplane.learnedPaths() { print("  on \(name): \(id) -> \(droplet)") }
        }
        guard try lab.host("bouncer").dataplane.transitCounters()[.bounced].packets > 0,
              try lab.host("divider").dataplane.transitCounters()[.divided].packets >= 10 else { throw ExitCode.failure }
        if plugins { try pluginSteps(lab) }
    }

    private func step(_ title: String, _ command: [String], _ lab: OverlayLab) throws {
        print("\n\(title)\n$ \(command.joined(separator: " "))   (in a1)")
        let before = try lab.host("bouncer").dataplane.transitCounters()[.bounced].packets
        let dividedBefore = try lab.host("divider").dataplane.transitCounters()[.divided].packets
        let result = try runCommand(command, in: lab.guest("a1").netns)
        print(result.output.split(separator: "\n").filter { $0.contains("bytes from") || $0.contains("packets transmitted") }.joined(separator: "\n"))
        let bounced = try lab.host("bouncer").dataplane.transitCounters()[.bounced].packets - before
        let divided = try lab.host("divider").dataplane.transitCounters()[.divided].packets - dividedBefore
        print("  -> bouncer bounced \(bounced), divider divided \(divided)")
    }
}

extension AgentHook: ExpressibleByArgument {}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
