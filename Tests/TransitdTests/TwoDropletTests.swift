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

    /// Tells hosta and hostb, each through its API, of VPC 100, network n1 and endpoints a1
    /// (on hosta) and b1 (on hostb): where most daemon tests start. Returns their namespaces.
    static func applyManifests(_ lab: DaemonLab) async throws -> (a1: Netns, b1: Netns) {
        let a1 = try lab.endpointNamespace("a1"), b1 = try lab.endpointNamespace("b1")
        for host in ["hosta", "hostb"] {
            _ = try await lab.host(host).client.applyInChunks(try Manifests.parse(manifest(lab, for: host, a1: a1, b1: b1), source: host))
        }
        return (a1, b1)
    }

    /// An acl chain at `hook` on `host` that lets `endpoint` (VPC 100) send or take (`hook`)
    /// only `allowed`; everything else in that direction is denied by default.
    static func applyACL(_ lab: DaemonLab, on host: String, hook: String, endpoint: String, allowed: String) async throws {
        let defaults = hook == "egress" ? "defaultEgress: deny, defaultIngress: allow" : "defaultEgress: allow, defaultIngress: deny"
        let acl = """
            apiVersion: mizar.com/v1
            kind: PluginConfig
            metadata: {name: acl}
            spec:
              rules: [{priority: 10, vpc: 100, direction: \(hook), source: 0.0.0.0/0, destination: 0.0.0.0/0, protocol: \(allowed), action: allow}]
              endpoints: [{vpc: 100, ip: \(endpoint), \(defaults)}]
            ---
            apiVersion: mizar.com/v1
            kind: PluginChain
            metadata: {name: \(hook)}
            spec: {plugins: [acl]}
            """
        _ = try await lab.host(host).client.applyInChunks(try Manifests.parse(acl, source: "acl"))
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

    /// The id of the XDP program on `eth0` in `netns`.
    static func xdpProgramID(_ netns: Netns) throws -> Int {
        let net = try runCommand(["bpftool", "-j", "net", "show", "dev", "eth0"], in: netns)
        let list = try JSONSerialization.jsonObject(with: Data(net.output.utf8)) as? [[String: Any]]
        return ((list?.first?["xdp"] as? [[String: Any]])?.first?["id"] as? Int) ?? -1
    }

    /// The entries of a pinned map, read with bpftool.
    static func pinnedEntries(_ path: String) throws -> Int {
        let dump = try runCommand(["bpftool", "-j", "map", "dump", "pinned", path])
        return ((try JSONSerialization.jsonObject(with: Data(dump.output.utf8))) as? [Any])?.count ?? -1
    }

    @Test func killAndRestartLoseNoPacketAndKeepPluginState() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        let (a1, b1) = try await TwoDropletTests.applyManifests(lab)
        let configs = """
            apiVersion: mizar.com/v1
            kind: PluginConfig
            metadata: {name: acl}
            spec:
              rules: [{priority: 10, vpc: 100, direction: egress, source: 0.0.0.0/0, destination: 0.0.0.0/0, protocol: icmp, action: allow}]
              endpoints: [{vpc: 100, ip: 10.1.0.2, defaultEgress: deny, defaultIngress: allow}]
              conntrackTimeoutSeconds: 300
            ---
            apiVersion: mizar.com/v1
            kind: PluginConfig
            metadata: {name: shaper}
            spec:
              limits: [{vpc: 100, endpoint: 10.1.0.2, direction: egress, bitsPerSecond: 100000000, burstBytes: 262144}]
            ---
            apiVersion: mizar.com/v1
            kind: PluginChain
            metadata: {name: egress}
            spec: {plugins: [acl, shaper]}
            """
        _ = try await lab.host("hosta").client.applyInChunks(try Manifests.parse(configs, source: "configs"))
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("3 received"))
        let conntrack = lab.pins("hosta") + "/plugins/acl/acl_conntrack", buckets = lab.pins("hosta") + "/plugins/shaper/shaper_buckets"
        let state = (try TwoDropletTests.pinnedEntries(conntrack), try TwoDropletTests.pinnedEntries(buckets))
        #expect(state.0 > 0 && state.1 > 0, "conntrack \(state.0), buckets \(state.1)")
        let tables = try KernelTables(lab.host("hostb").netns)

        let programs = try TwoDropletTests.xdpProgramID(lab.host("hosta").netns)
        // A ping every 10 ms across kill -9 and restart of both daemons, one after the other.
        let ping = try RunningCommand(["ping", "-i", "0.01", "-c", "500", "-W", "1", "10.1.0.3"], in: a1)
        usleep(500_000)
        for host in ["hosta", "hostb"] {
            lab.stop(host, signal: SIGKILL)
            usleep(300_000)
            try lab.start(host)
        }
        let result = ping.wait(timeout: 30)
        #expect(result.output.contains("500 packets transmitted, 500 received"), "\(result.output.split(separator: "\n").suffix(3))")

        #expect(try await lab.host("hosta").client.status().chains["egress"] == ["acl", "shaper"])
        #expect(try TwoDropletTests.pinnedEntries(conntrack) >= state.0, "the ACL's conntrack was lost")
        #expect(try TwoDropletTests.pinnedEntries(buckets) == state.1, "the shaper's buckets were lost")
        #expect(try KernelTables(lab.host("hostb").netns) == tables)
        #expect(lab.host("hosta").log.contains("adopted=true") && lab.host("hosta").log.contains("programs=adopted"), "\(lab.host("hosta").log)")
        #expect(try TwoDropletTests.xdpProgramID(lab.host("hosta").netns) == programs, "the same objects were loaded again instead of adopted")

        // An upgrade: other objects (the same programs, one byte appended to the file) are
        // loaded over the pinned maps and swapped in, under the same 10 ms ping.
        let upgraded = lab.root + "/bpf-upgraded"
        try FileManager.default.copyItem(atPath: TestPaths.bpfDir, toPath: upgraded)
        let object = FileHandle(forWritingAtPath: upgraded + "/transit_xdp.bpf.o")!
        object.seekToEndOfFile()
        object.write(Data([0]))
        try object.close()
        let upgradePing = try RunningCommand(["ping", "-i", "0.01", "-c", "300", "-W", "1", "10.1.0.3"], in: a1)
        usleep(500_000)
        lab.stop("hosta")
        lab.bpfDir = upgraded
        try lab.start("hosta")
        lab.bpfDir = TestPaths.bpfDir
        let upgradeResult = upgradePing.wait(timeout: 30)
        #expect(upgradeResult.output.contains("300 packets transmitted, 300 received"), "\(upgradeResult.output.split(separator: "\n").suffix(3))")
        #expect(lab.host("hosta").log.contains("programs=loaded") && lab.host("hosta").log.contains("adopted=true"), "\(lab.host("hosta").log)")
        #expect(try TwoDropletTests.xdpProgramID(lab.host("hosta").netns) != programs, "the upgraded program is not the one attached")
        #expect(try TwoDropletTests.pinnedEntries(conntrack) >= state.0, "the ACL's conntrack was lost in the upgrade")

        // --cleanup on exit takes everything away; the store keeps the desired state.
        lab.stop("hosta")
        lab.extraArguments = ["--cleanup"]
        try lab.start("hosta")
        lab.stop("hosta")
        #expect(!FileManager.default.fileExists(atPath: lab.pins("hosta")), "pins left after --cleanup")
        #expect(throws: (any Error).self) { try RouteSocket(in: a1).link(named: "eth0") }
        #expect(try runCommand(["bpftool", "-j", "net", "show", "dev", "eth0"], in: lab.host("hosta").netns).output.contains("\"xdp\":[]"))
        lab.extraArguments = []
        try lab.start("hosta")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("3 received"), "\(lab.host("hosta").log)")

        // Deleting a plugin's configuration switches the plugin to an empty generation: no
        // bucket is left, and the count goes on (a flush would set it back to 0).
        let generation = lab.pins("hosta") + "/plugins/shaper/shaper_generation"
        let live = try TwoDropletTests.pinnedWord(generation)
        #expect(try TwoDropletTests.pinnedEntries(buckets) == 1)
        _ = try await lab.host("hosta").client.delete(.pluginConfig, "shaper")
        #expect(try TwoDropletTests.pinnedEntries(buckets) == 0, "the shaper's buckets after its configuration was deleted")
        #expect(try TwoDropletTests.pinnedWord(generation) == live + 1)
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.1.0.3"], in: a1).output.contains("3 received"))
    }

    /// The first 4 bytes of a pinned array's entry 0, little-endian.
    static func pinnedWord(_ path: String) throws -> UInt32 {
        let dump = try runCommand(["bpftool", "-j", "map", "lookup", "pinned", path, "key", "0", "0", "0", "0"])
        let value = ((try JSONSerialization.jsonObject(with: Data(dump.output.utf8))) as? [String: Any])?["value"] as? [String] ?? []
        let bytes = value.prefix(4).compactMap { UInt32($0.dropFirst(2), radix: 16) }
        return bytes.count == 4 ? bytes.enumerated().reduce(0) { $0 | $1.element << (8 * UInt32($1.offset)) } : .max
    }
}
