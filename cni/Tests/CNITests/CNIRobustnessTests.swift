import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// What a runtime (or an attacker) may send that a first design got wrong: repeated ADDs,
/// the host's own namespace, a second network, leftovers of a killed transitd, a config edited
/// between ADD and DEL.
@Suite("CNI under repeated, odd and hostile calls", .serialized)
struct CNIRobustnessTests {
    /// A repeated ADD answers for the live attachment (no second address), re-plugs one the
    /// kernel lost, and an ADD of the same attachment into another namespace is refused
    /// without touching the live one.
    @Test func repeatedAdds() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config("1.1.0", CNILifecycleTests.hostLocal(bed))
        let a = try bed.container("a"), b = try bed.container("b")
        let first = try bed.cni("ADD", container: "c1", netns: a.path, config: config)
        #expect(first.status == 0, "\(first)")
        let ip = try #require(CNIBed.address(first.json))
        let ifindex = try RouteSocket(in: a).link(named: "eth0").index
        _ = try runCommand(["ip", "addr", "add", "192.0.2.9/32", "dev", "eth0"], in: a)  // what a chained plugin might add

        let again = try bed.cni("ADD", container: "c1", netns: a.path, config: config)
        #expect(again.status == 0 && CNIBed.address(again.json) == ip, "\(again)")
        #expect(CNILifecycleTests.hostLocalAddresses(bed) == [ip], "a repeated ADD took another address")

        let elsewhere = try bed.cni("ADD", container: "c1", netns: b.path, config: config)
        #expect(elsewhere.status != 0 && elsewhere.code == 7, "\(elsewhere)")
        #expect(try RouteSocket(in: a).link(named: "eth0").index == ifindex, "the live interface was rebuilt")
        #expect(try runCommand(["ip", "addr", "show", "eth0"], in: a).output.contains("192.0.2.9"))
        #expect(try runCommand(["ip", "link", "show", "eth0"], in: b).status != 0)
        #expect(CNILifecycleTests.hostLocalAddresses(bed) == [ip])

        // The interface deleted by hand: a repeated ADD says the attachment is broken (it does
        // not rebuild it: the runtime DELs and ADDs), and the DEL + ADD that follow work.
        _ = try runCommand(["ip", "link", "del", "eth0"], in: a)
        let broken = try bed.cni("ADD", container: "c1", netns: a.path, config: config)
        #expect(broken.status != 0 && broken.code == 100 && (broken.json?["details"] as? String)?.contains("eth0") == true, "\(broken)")
        #expect(try bed.cni("DEL", container: "c1", netns: a.path, config: config).status == 0)
        let readd = try bed.cni("ADD", container: "c1", netns: a.path, config: config)
        #expect(readd.status == 0, "\(readd)")
        #expect(try bed.cni("CHECK", container: "c1", netns: a.path, config: bed.config("1.1.0", CNILifecycleTests.hostLocal(bed)
            .merging(["prevResult": readd.json ?? [:]]) { $1 })).status == 0)
        // The same namespace by another path is the same attachment.
        let otherPath = try bed.cni("ADD", container: "c1", netns: "/var" + a.path, config: config)
        #expect(otherPath.status == 0 && CNIBed.address(otherPath.json) == CNIBed.address(readd.json), "\(otherPath)")
        #expect(try bed.cni("DEL", container: "c1", netns: a.path, config: config).status == 0)
        #expect(CNILifecycleTests.hostLocalAddresses(bed).isEmpty)
    }

    /// The droplet's own namespace is never a container's, however it is named.
    @Test func hostNamespaceRefused() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        for path in [bed.lab.host(bed.host).netns.path, "/proc/self/ns/net"] {
            let add = try bed.cni("ADD", container: "grab", netns: path, ifName: "x1", config: bed.config())
            #expect(add.status != 0 && add.code == 7, "\(path): \(add)")
        }
        #expect(try !runCommand(["ip", "addr"], in: bed.lab.host(bed.host).netns).output.contains("10.20.0."))
        #expect(try await bed.endpoints().isEmpty)
    }

    /// A second interface on another Mizar network (Multus-style): its address and subnet, the
    /// default route stays the first's; CHECK passes for both.
    @Test func secondInterfaceOnAnotherNetwork() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        _ = try await bed.client.put(.network(Network(name: "net1", spec: NetworkSpec(vpc: "vpc0", cidr: IPv4Interface("10.30.0.0/16")!))))
        let pod = try bed.container("pod")
        let eth0 = try bed.cni("ADD", container: "pod", netns: pod.path, config: bed.config())
        let net1 = try bed.cni("ADD", container: "pod", netns: pod.path, ifName: "net1", config: bed.config("1.1.0", name: "second", ["network": "net1"]))
        #expect(eth0.status == 0 && net1.status == 0, "\(eth0) \(net1)")
        #expect(CNIBed.address(net1.json)?.hasPrefix("10.30.") == true)
        // The result says where the default route is: eth0's, not net1's.
        #expect((eth0.json?["routes"] as? [[String: Any]])?.first?["dst"] as? String == "0.0.0.0/0")
        #expect((net1.json?["routes"] as? [[String: Any]] ?? []).isEmpty, "\(net1)")
        let routes = try runCommand(["ip", "route"], in: pod).output
        #expect(routes.contains("default via 10.20.0.1") && !routes.contains("default via 10.30.0.1"), "\(routes)")
        for (ifName, name, result, extra) in [("eth0", "mizarnet", eth0, [String: Any]()), ("net1", "second", net1, ["network": "net1"])] {
            let check = try bed.cni("CHECK", container: "pod", netns: pod.path, ifName: ifName,
                                    config: bed.config("1.1.0", name: name, extra.merging(["prevResult": result.json ?? [:]]) { $1 }))
            #expect(check.status == 0, "\(ifName): \(check)")
        }
    }

    /// A veth under transitd's scratch name (a process killed between making and marking it)
    /// is pruned at the next start; a veth transitd did not make is left alone.
    @Test func scratchVethPrunedAtStart() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let droplet = bed.lab.host(bed.host).netns
        _ = try runCommand(["ip", "link", "add", "mzt1234567890", "type", "veth", "peer", "name", "mzt-peer0"], in: droplet)
        _ = try runCommand(["ip", "link", "add", "theirs0", "type", "veth", "peer", "name", "theirs1"], in: droplet)
        bed.lab.stop(bed.host, signal: SIGKILL)
        try bed.lab.start(bed.host)
        let names = try RouteSocket(in: droplet).links().map(\.name)
        #expect(!names.contains("mzt1234567890") && names.contains("theirs0"), "\(names)")
    }

    /// STATUS stays ready while one endpoint is broken (CHECK says which); DEL and GC go on
    /// with a configuration that gained an unknown key after ADD; an error is written in the
    /// version the configuration states.
    @Test func statusDelAndErrorsUnderDrift() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let gone = try bed.container("gone")
        #expect(try bed.cni("ADD", container: "gone", netns: gone.path, config: bed.config()).status == 0)
        _ = try Netns.delete(named: "\(bed.lab.underlay.prefix)-gone")
        #expect(try bed.cni("STATUS", config: bed.config()).status == 0)
        #expect(try bed.cni("CHECK", container: "gone", netns: gone.path, config: bed.config()).code == 3)
        let edited = bed.config("1.1.0", ["addedLater": true])
        #expect(try bed.cni("ADD", container: "new", netns: gone.path, config: edited).code == 2)
        #expect(try bed.cni("DEL", container: "gone", netns: gone.path, config: edited).status == 0)
        #expect(try bed.cni("GC", config: bed.config("1.1.0", ["addedLater": true, "cni.dev/valid-attachments": []])).status == 0)
        let old = try bed.cni("CHECK", container: "x", netns: gone.path, config: bed.config("0.3.0"))
        #expect(old.code == 1 && old.json?["cniVersion"] as? String == "0.3.0", "\(old)")
    }
}
