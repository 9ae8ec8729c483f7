import CMizarABI
import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// The owner of an egress ACL chain killed: the denied flow stays denied — while the chain's
/// pins hold it, and after they are gone too (the roots emptied, the core fails closed) —
/// and a restarted transitd builds the chain again (issue 13, item 3).
@Suite("transitd: a denied flow stays denied when the chain's owner dies", .serialized)
struct FailClosedDaemonTests {
    @Test func killingTheOwnerOfAnACLChainNeverOpensIt() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        let (a1, b1) = try await TwoDropletTests.applyManifests(lab)
        func pings() throws -> String { try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output }
        #expect(try pings().contains("3 received"), "a1 -> b1 before any ACL")
        // a1 may send TCP only: ICMP is the denied flow.
        try await TwoDropletTests.applyACL(lab, on: "hosta", hook: "egress", endpoint: "10.1.0.2", allowed: "tcp")
        #expect(try pings().contains(" 0 received"), "the ACL denies ICMP")
        // Drops are counted under the reason's name the plugin's descriptor gives, in the API and in mizarctl.
        #expect(try await lab.host("hosta").client.counters().plugins["egress"]?["acl"]?["default-deny"]?.packets == 3)
        let shown = try lab.mizarctl("hosta", ["counters"]).output
        #expect(shown.split(separator: "\n").contains { $0.hasPrefix("egress/acl") && $0.contains("default-deny") && $0.contains(" 3 ") }, "\(shown)")
        #expect(try lab.mizarctl("hosta", ["plugin", "describe", "acl"]).output.contains("default-deny"))

        lab.stop("hosta", signal: SIGKILL)
        #expect(try pings().contains(" 0 received"), "owner killed, chain pinned: still denied")

        // The pins go too: nothing holds the chain arrays now, the kernel empties them, and
        // the agent (still attached by its TC filter) finds the chain marked active but empty.
        // The agent's counters live on in its program after the pins go: note the map's id now.
        let pinnedStats = try Self.mapID(pinned: lab.pins("hosta") + "/maps/agent_stats")
        let stats = try #require(pinnedStats)
        let unavailable = try Self.agentSlot(stats, MZ_AGENT_CHAIN_UNAVAILABLE.rawValue)
        try FileManager.default.removeItem(atPath: lab.pins("hosta"))
        let filters = try runCommand(["bpftool", "net", "show"], in: lab.host("hosta").netns).output
        #expect(filters.contains("transit_agent_t"), "the agent stays attached without its owner: \(filters)")
        let echoes = try icmpEchoesReceived(in: b1)
        #expect(try pings().contains(" 0 received"), "owner and pins gone: still denied, never routed around the chain")
        #expect(try icmpEchoesReceived(in: b1) == echoes, "nothing reached b1")
        #expect(try Self.agentSlot(stats, MZ_AGENT_CHAIN_UNAVAILABLE.rawValue) >= unavailable + 3, "dropped as chain_unavailable")

        try lab.start("hosta")
        #expect(try await lab.host("hosta").client.status().chains["egress"] == ["acl"])
        #expect(try pings().contains(" 0 received"), "restarted: the chain is built again")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.2"], in: b1).output.contains(" 0 received"),
                "b1's pings reach a1 but its replies are denied")
    }

    /// The id of the map pinned at `path` (bpftool observes; the product reads through libbpf).
    static func mapID(pinned path: String) throws -> Int? {
        let shown = try runCommand(["bpftool", "-j", "map", "show", "pinned", path]).output
        return (try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any])?["id"] as? Int
    }

    /// Packets of one slot of the agent's per-CPU counters, summed over CPUs.
    static func agentSlot(_ id: Int, _ slot: UInt32) throws -> Int {
        let dump = try runCommand(["bpftool", "-j", "map", "dump", "id", "\(id)"]).output
        let entries = try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [[String: Any]] ?? []
        let perCPU = entries.first?["formatted"].flatMap { ($0 as? [String: Any])?["values"] as? [[String: Any]] } ?? []
        return perCPU.reduce(0) { sum, cpu in
            let slots = ((cpu["value"] as? [String: Any])?["slot"] as? [[String: Any]]) ?? []
            return sum + (slots.count > Int(slot) ? (slots[Int(slot)]["packets"] as? Int ?? 0) : 0)
        }
    }
}
