import Foundation
import MizarAPI
import MizarClient
import MizarNet
import MizarTopology

/// The demo's steps over a running `DaemonLab`: commands shown as a user types them.
struct Demo {
    let lab: DaemonLab
    let mizarctl: String

    func netns(_ endpoint: String) throws -> Netns { try Netns("\(lab.underlay.prefix)-\(endpoint)") }

    /// Runs mizarctl against `droplet`'s transitd, printing the command and (with `show`) its output.
    func mizarctl(_ droplet: String, _ arguments: [String], show: Bool = true) throws {
        let result = try runCommand([mizarctl] + arguments + ["--socket", lab.host(droplet).socket])
        if show {
            print("\n$ mizarctl \(arguments.joined(separator: " "))   (on \(droplet))")
            print(result.output, terminator: "")
        }
        guard result.status == 0 else { throw DemoError("mizarctl \(arguments.joined(separator: " ")) on \(droplet) failed: \(result.error)") }
    }

    func counter(_ droplet: String, _ slot: String) async throws -> UInt64 {
        try await lab.host(droplet).client.counters().transit[slot]?.packets ?? 0
    }

    func ping(_ title: String, to address: String) async throws {
        print("\n\(title)\n$ ping -c 5 -i 0.2 \(address)   (in a1)")
        let bounced = try await counter("bouncer", "bounced"), divided = try await counter("divider", "divided")
        let result = try runCommand(["ping", "-c", "5", "-i", "0.2", address], in: netns("a1"))
        print(result.output.split(separator: "\n").filter { $0.contains("bytes from") || $0.contains("packets transmitted") }.joined(separator: "\n"))
        print("  -> bouncer bounced \(try await counter("bouncer", "bounced") - bounced), divider divided \(try await counter("divider", "divided") - divided)")
    }

    /// Every non-zero counter of every droplet, as `mizarctl counters` reports them.
    func countersTable() async throws {
        print("\ncounters (packets; transit XDP on each droplet's eth0, the agent on its endpoints' veths):")
        var all: [String: Counters] = [:]
        for name in MizarDemo.droplets { all[name] = try await lab.host(name).client.counters() }
        print("  " + "".padding(toLength: 30, withPad: " ", startingAt: 0) + MizarDemo.droplets.map { $0.leftPad(10) }.joined())
        for (kind, pick) in [("transit", { (c: Counters) in c.transit }), ("agent", { (c: Counters) in c.agent })] {
            let slots = Set(all.values.flatMap { pick($0).keys }).sorted()
            for slot in slots {
                print("  " + "\(kind) \(slot)".padding(toLength: 30, withPad: " ", startingAt: 0)
                      + MizarDemo.droplets.map { "\(pick(all[$0]!)[slot]?.packets ?? 0)".leftPad(10) }.joined())
            }
        }
    }

    /// The plugin chain through the API: an ACL on hostb's ingress that admits only pings,
    /// then a shaper switched into hosta's egress chain.
    func pluginSteps(examples: String) async throws {
        print("\nplugins: acl on hostb's ingress chain; b1 admits ICMP echo from 10.0.1.0/24 only")
        try mizarctl("hostb", ["chain", "config", "acl", "-f", examples + "/plugins/acl.yaml"])
        try mizarctl("hostb", ["chain", "set", "ingress", "acl"])
        let pings = pingReplies(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.1.3"], in: netns("a1")).output)
        let tcp = try runCommand(["iperf3", "-c", "10.0.1.3", "-t", "1", "--connect-timeout", "1000"], in: netns("a1"), timeout: 10)
        print("  ping a1 -> b1: \(pings)/3 replies; iperf3 a1 -> b1: \(tcp.status == 0 ? "connected" : "blocked by the ACL (its SYNs dropped)")")
        try mizarctl("hostb", ["counters"])

        print("\nplugins: shaper on hosta's egress chain, a1 limited to 20 Mbit/s; chain switched live")
        try mizarctl("hostb", ["chain", "set", "ingress", ""])
        try mizarctl("hosta", ["chain", "config", "shaper", "-f", examples + "/plugins/shaper.yaml"])
        try mizarctl("hosta", ["chain", "set", "egress", "shaper"])
        let end = try iperf3(from: netns("a1"), to: netns("b1"), server: IPv4Address(10, 0, 1, 3), seconds: 2, extra: ["-u", "-b", "60M", "-l", "1400"])
        let bps = ((end["sum"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        let lost = ((end["sum"] as? [String: Any])?["lost_percent"] as? Double) ?? 0
        print(String(format: "  UDP offered at 60 Mbit/s: %.1f Mbit/s sent, %.0f%% dropped by the shaper", bps / 1e6, lost))
        try mizarctl("hosta", ["chain", "show"])
    }
}

struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
