import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// mizar-controller on a cluster of four droplets: roles placed over the live droplets, a
/// lost bouncer's droplet replaced while traffic flows, and a killed leader replaced.
@Suite("mizar-controller: placement, droplet loss, leader failover", .serialized)
struct ClusterControllerTests {
    static let manifest = """
        apiVersion: mizar.com/v1
        kind: VPC
        metadata: {name: v1}
        spec: {vni: 100}
        ---
        apiVersion: mizar.com/v1
        kind: Network
        metadata: {name: n1}
        spec: {vpc: v1, cidr: 10.1.0.0/24}
        """

    static func bouncers(_ lab: ClusterLab, via host: String, network: String = "n1") async throws -> (named: Set<String>, pending: Set<String>) {
        let roles = try await lab.host(host).client.bouncers().filter { $0.network == network }
        return (Set(roles.filter { $0.pending != true }.map(\.droplet)), Set(roles.filter { $0.pending == true }.map(\.droplet)))
    }

    static func leader(_ lab: ClusterLab) throws -> String {
        let lines = try lab.etcd.etcdctl(["get", "/mizar/v1/controller/leader"]).output.split(separator: "\n")
        return lines.count == 2 ? String(lines[1]) : ""
    }

    @Test func lostBouncerIsReplacedWhileTrafficFlows() async throws {
        let droplets = ["hosta", "hostb", "hostc", "hostd"]
        let lab = try await ClusterDaemonTests.lab(droplets)
        defer { lab.teardown() }
        try lab.startController("ctl1", on: "hosta", binary: Binaries.controller)
        try lab.startController("ctl2", on: "hostb", binary: Binaries.controller)
        let applied = try lab.daemons.mizarctl("hostc", ["apply", "-f", "-"], stdin: Self.manifest)
        #expect(applied.status == 0, "\(applied.output)\(applied.error)")

        // Placed: two live bouncers, two dividers, the same seen from every droplet.
        let placed = try await Self.bouncers(lab, via: "hosta").named
        #expect(placed.count == 2)
        for host in droplets { #expect(await ClusterDaemonTests.eventually { try await Self.bouncers(lab, via: host).named == placed }) }
        let table = try lab.daemons.mizarctl("hostd", ["get", "bouncers"])
        #expect(table.status == 0 && table.output.contains("bouncing") && table.output.contains("LIVE"), "\(table.output)\(table.error)")
        let dividers = try await lab.host("hosta").client.dividers()
        #expect(dividers.count == 2 && dividers.allSatisfy { $0.live == true }, "\(dividers)")

        // Endpoints on the two droplets that do not bounce; a ping runs throughout.
        let others = Set(droplets).subtracting(placed).sorted()
        let (x, _) = try await ClusterDaemonTests.plug(lab, "x1", on: others[0])
        let (_, yip) = try await ClusterDaemonTests.plug(lab, "y1", on: others[1])
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(yip)"], in: x).output.contains("3 received"))
        let ping = try RunningCommand(["ping", "-c", "200", "-i", "0.05", "-W", "1", "\(yip)"], in: x)

        // A bouncer's droplet dies whole: transitd killed, its link to the underlay down.
        let victim = placed.sorted()[0]
        lab.daemons.stop(victim, signal: SIGKILL)
        try runCommand(["ip", "link", "set", "eth0", "down"], in: lab.host(victim).netns)
        #expect(await ClusterDaemonTests.eventually(15) {
            let now = try await Self.bouncers(lab, via: others[0])
            return now.named.count == 2 && !now.named.contains(victim) && now.pending.isEmpty
        }, "re-placed")
        let after = try await Self.bouncers(lab, via: others[0]).named
        #expect(after.subtracting(placed).count == 1, "one role moved: \(placed) -> \(after)")
        // The new bouncer holds the network's table.
        let newcomer = try #require(after.subtracting(placed).first, "no role moved (a trap here would leave the lab behind)")
        #expect(await ClusterDaemonTests.eventually { try KernelTables(lab.host(newcomer).netns).count("endpoints") == 2 })
        let result = ping.wait(timeout: 30)
        let received = pingReplies(result.output)
        print("droplet loss: \(200 - received) of 200 pings lost while \(victim) died and its role moved to \(newcomer)")
        #expect(received >= 150, "pings kept flowing: \(received)/200")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(yip)"], in: x).output.contains("3 received"), "after the move")
    }

    @Test func killedLeaderIsReplacedAndItsSuccessorWorks() async throws {
        let lab = try await ClusterDaemonTests.lab(["hosta", "hostb", "hostc", "hostd"])
        defer { lab.teardown() }
        try lab.startController("ctl1", on: "hosta", binary: Binaries.controller)
        #expect(await ClusterDaemonTests.eventually { try Self.leader(lab).hasPrefix("ctl1/") }, "ctl1 leads")
        try lab.startController("ctl2", on: "hostb", binary: Binaries.controller)
        _ = try lab.daemons.mizarctl("hostc", ["apply", "-f", "-"], stdin: Self.manifest)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try Self.leader(lab).hasPrefix("ctl1/"), "one leader: the standby waits")

        lab.stopController("ctl1")
        let killed = Date()
        #expect(await ClusterDaemonTests.eventually(10) { try Self.leader(lab).hasPrefix("ctl2/") }, "ctl2 took over")
        let took = Date().timeIntervalSince(killed)
        #expect(took < 3 + 1, "replaced within the lease TTL (3 s): \(took) s")

        // The successor places: n1 asks for three bouncers now.
        let more = try lab.daemons.mizarctl("hostc", ["apply", "-f", "-"], stdin: """
            apiVersion: mizar.com/v1
            kind: Network
            metadata: {name: n1}
            spec: {vpc: v1, cidr: 10.1.0.0/24, bouncerCount: 3}
            """)
        #expect(more.status == 0, "\(more.output)\(more.error)")
        #expect(await ClusterDaemonTests.eventually(10) { try await Self.bouncers(lab, via: "hostd").named.count == 3 }, "three bouncers")
    }
}
