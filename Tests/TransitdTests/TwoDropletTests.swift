import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// Two droplets, each run by its own transitd and programmed only through its API (with
/// mizarctl and manifests): endpoints on both reach each other through the overlay.
@Suite("transitd: two droplets through the product", .serialized)
struct TwoDropletTests {
    /// What each droplet is told: both droplets, VPC v1 divided by hostb, network n1 bounced
    /// by hostb, a1 on hosta and b1 on hostb (the MACs given, so each side can name the other's).
    static func manifest(_ lab: DaemonLab, for host: String, a1: Netns, b1: Netns) -> String {
        let other = host == "hosta" ? "hostb" : "hosta"
        var text = """
            apiVersion: mizar.com/v1
            kind: Droplet
            metadata: {name: \(other)}
            spec: {ip: \(lab.host(other).ip), mac: "\(try! RouteSocket(in: lab.host(other).netns).link(named: "eth0").mac!)"}
            ---
            apiVersion: mizar.com/v1
            kind: VPC
            metadata: {name: v1}
            spec: {vni: 100, dividers: [hostb]}
            ---
            apiVersion: mizar.com/v1
            kind: Network
            metadata: {name: n1}
            spec: {vpc: v1, cidr: 10.1.0.0/24, bouncers: [hostb]}
            ---
            apiVersion: mizar.com/v1
            kind: Endpoint
            metadata: {name: a1}
            spec: {network: n1, ip: 10.1.0.2, mac: "02:00:0a:01:00:02", droplet: hosta
            """
        text += host == "hosta" ? ", netns: \(a1.path)}\n" : "}\n"
        text += """
            ---
            apiVersion: mizar.com/v1
            kind: Endpoint
            metadata: {name: b1}
            spec: {network: n1, ip: 10.1.0.3, mac: "02:00:0a:01:00:03", droplet: hostb
            """
        text += host == "hostb" ? ", netns: \(b1.path)}\n" : "}\n"
        return text
    }

    @Test func endpointsOnTwoDropletsTalkAfterApply() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        let a1 = try lab.endpointNamespace("a1"), b1 = try lab.endpointNamespace("b1")
        for host in ["hosta", "hostb"] {
            let file = lab.root + "/\(host).yaml"
            try TwoDropletTests.manifest(lab, for: host, a1: a1, b1: b1).write(toFile: file, atomically: true, encoding: .utf8)
            let applied = try lab.mizarctl(host, ["apply", "-f", file])
            #expect(applied.status == 0 && applied.output.contains("endpoint/a1 created"), "\(applied.output)\(applied.error)\n\(lab.host(host).log)")
        }
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("3 received"), "a1 -> b1")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.2"], in: b1).output.contains("3 received"), "b1 -> a1")

        // hostb bounces n1: it holds a1 (remote) and b1 (local); hosta holds only a1.
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 2)
        #expect(try KernelTables(lab.host("hosta").netns).count("endpoints") == 1)
        let counters = try lab.mizarctl("hosta", ["counters", "-o", "json"])
        #expect(counters.status == 0 && counters.output.contains("\"agent\""), "\(counters.output)")
        let roles = try await lab.host("hostb").client.bouncers()
        #expect(roles.contains(BouncerRole(network: "n1", droplet: "hostb", local: true)))

        // get -o yaml prints what apply takes: applying it again changes nothing.
        let yaml = try lab.mizarctl("hosta", ["get", "endpoints", "-o", "yaml"])
        #expect(yaml.status == 0 && yaml.output.contains("kind: Endpoint"), "\(yaml.output)")
        let again = try lab.mizarctl("hosta", ["apply", "-f", "-"], stdin: yaml.output)
        #expect(again.status == 0 && !again.output.contains("created") && !again.output.contains("configured") && again.output.contains("unchanged"),
                "\(again.output)\(again.error)")

        // delete -f takes the endpoint away: its veth goes, traffic stops.
        let only = lab.root + "/a1.yaml"
        try "apiVersion: mizar.com/v1\nkind: Endpoint\nmetadata: {name: a1}\nspec: {network: n1}\n".write(toFile: only, atomically: true, encoding: .utf8)
        let deleted = try lab.mizarctl("hosta", ["delete", "-f", only])
        #expect(deleted.status == 0 && deleted.output.contains("endpoint/a1 deleted"), "\(deleted.output)\(deleted.error)")
        #expect(throws: (any Error).self) { try RouteSocket(in: a1).link(named: "eth0") }
        #expect(try runCommand(["ping", "-c", "1", "-W", "1", "10.1.0.2"], in: b1).status != 0)
    }

    @Test func restartKeepsTheDesiredStateAndTraffic() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        let a1 = try lab.endpointNamespace("a1"), b1 = try lab.endpointNamespace("b1")
        for host in ["hosta", "hostb"] {
            let resources = try Manifests.parse(TwoDropletTests.manifest(lab, for: host, a1: a1, b1: b1), source: host)
            _ = try await lab.host(host).client.applyInChunks(resources)
        }
        // 100 more endpoints on hosta, which hostb bounces: a table to compare across restarts.
        let more = (10..<110).map { i in
            AnyResource.endpoint(Endpoint(name: "r\(i)", spec: EndpointSpec(network: "n1", ip: IPv4Address(10, 1, 0, UInt8(i)),
                                                                            mac: MACAddress(value: 0x0200_0000_0000 + UInt64(i)), droplet: "hosta")))
        }
        _ = try await lab.host("hostb").client.applyInChunks(more)
        let before = try KernelTables(lab.host("hostb").netns)
        #expect(before.count("endpoints") == 102)

        for signal in [SIGTERM, SIGKILL] {
            for host in ["hosta", "hostb"] {
                lab.stop(host, signal: signal)
                try lab.start(host)
            }
            #expect(try KernelTables(lab.host("hostb").netns) == before, "signal \(signal): the bouncer table changed")
            #expect(try await lab.host("hosta").client.health().healthy, "\(lab.host("hosta").log)")
            #expect(try await lab.host("hostb").client.list(.endpoint).count == 102)
            #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("3 received"),
                    "signal \(signal): a1 -> b1 after restart")
        }
    }
}
