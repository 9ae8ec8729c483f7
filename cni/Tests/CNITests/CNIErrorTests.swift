import Foundation
import MizarAPI
import MizarCNI
import MizarTestSupport
import Testing

/// Every error code `mizar` produces, each from a real failing call, and nothing left behind.
@Suite("CNI error codes", .serialized)
struct CNIErrorTests {
    @Test func eachCodeFromARealFailure() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let ns = try bed.container("a")
        let good = bed.config()
        func expectCode(_ code: Int, _ call: CNIBed.Call, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(call.status != 0 && call.code == code, "\(what): \(call)", sourceLocation: sourceLocation)
            #expect(call.json?["msg"] is String, "\(what): no msg", sourceLocation: sourceLocation)
        }
        // 1: versions and commands a version lacks.
        expectCode(1, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("0.2.0")), "cniVersion 0.2.0")
        expectCode(1, try bed.cni("CHECK", container: "c1", netns: ns.path, config: bed.config("0.3.1")), "CHECK in 0.3.1")
        expectCode(1, try bed.cni("GC", config: bed.config("1.0.0", ["cni.dev/valid-attachments": []])), "GC in 1.0.0")
        expectCode(1, try bed.cni("STATUS", config: bed.config("0.4.0")), "STATUS in 0.4.0")
        expectCode(1, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.0.0", ["prevResult": ["cniVersion": "0.4.0", "ips": []]])),
                   "prevResult of another version")
        // 2: a key mizar does not know.
        let typo = try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["netwrok": "net0"]))
        expectCode(2, typo, "misspelt key")
        #expect((typo.json?["details"] as? String)?.contains("netwrok") == true)
        // 3: CHECK of a container transitd never saw.
        expectCode(3, try bed.cni("CHECK", container: "never", netns: ns.path, config: good), "CHECK of an unknown container")
        // 4: the environment.
        expectCode(4, try bed.cni("", config: good, environment: [:]), "no CNI_COMMAND")
        expectCode(4, try bed.cni("", config: good, environment: ["CNI_COMMAND": "FROB"]), "unknown command")
        expectCode(4, try bed.cni("ADD", container: "", netns: ns.path, config: good), "no CNI_CONTAINERID")
        expectCode(4, try bed.cni("ADD", container: "c/1", netns: ns.path, config: good), "bad CNI_CONTAINERID")
        expectCode(4, try bed.cni("ADD", container: "c1", netns: "", config: good), "no CNI_NETNS")
        expectCode(4, try bed.cni("ADD", container: "c1", netns: "run/netns/x", config: good), "relative CNI_NETNS")
        expectCode(4, try bed.cni("ADD", container: "c1", netns: ns.path, ifName: "an-interface-name-too-long", config: good), "long CNI_IFNAME")
        expectCode(4, try bed.cni("ADD", container: "c1", netns: ns.path, args: "K8S_POD_NAME", config: good), "CNI_ARGS without =")
        expectCode(4, try bed.cni("ADD", container: "c1", netns: ns.path, ifName: "eth%d", config: good), "an interface name template")
        // 5: a delegated IPAM plugin that is not in CNI_PATH.
        expectCode(5, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["ipam": ["type": "no-such-ipam"]])), "missing ipam plugin")
        // 6: stdin that is not the configuration.
        expectCode(6, try bed.cni("ADD", container: "c1", netns: ns.path, config: "{not json"), "bad JSON")
        expectCode(6, try bed.cni("ADD", container: "c1", netns: ns.path, config: #"["cniVersion"]"#), "not an object")
        expectCode(6, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["network": 7])), "network not a string")
        // 7: well formed but wrong.
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["network": "nope"])), "no such network")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["socket": "run/transitd.sock"])), "a relative socket")
        expectCode(6, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["runtimeConfig": ["mizar": "net0"]])),
                   "runtimeConfig.mizar not an object")
        expectCode(2, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["runtimeConfig": ["mizar": ["netwrok": "net0"]]])),
                   "a misspelt key in runtimeConfig.mizar")
        // Names the runtime passes go into request paths: only resource names pass.
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["network": "../health"])), "a path as network")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, args: "MIZAR_NETWORK=net0 HTTP/1.1\r\nX-Injected: 1", config: good),
                   "a request line in CNI_ARGS")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["vpc": "other", "network": "net0"])), "VPC mismatch")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["agentHook": "ebpf"])), "bad agentHook")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["runtimeConfig": ["ips": ["192.168.1.5/24"]]])),
                   "address outside the network")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: "/run/netns/\(bed.lab.underlay.prefix)-gone", config: good), "namespace that does not exist")
        // 6 and 7: capabilities of the wrong shape, or that the plugins refuse.
        expectCode(6, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["runtimeConfig": ["portMappings": [["hostPort": "x"]]]])),
                   "portMappings of the wrong shape")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path,
                                  config: bed.config("1.1.0", ["runtimeConfig": ["portMappings": [["hostPort": 8080, "containerPort": 80, "protocol": "sctp"]]]])),
                   "portMappings with sctp")
        expectCode(7, try bed.cni("ADD", container: "c1", netns: ns.path, config: bed.config("1.1.0", ["runtimeConfig": ["bandwidth": ["egressRate": 10, "egressBurst": 10]]])),
                   "a rate below the shaper's 1 kbit/s")
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)

        // 11: the network has no free address (a /30 holds one endpoint after its gateway).
        _ = try await bed.client.put(.network(Network(name: "tiny", spec: NetworkSpec(vpc: "vpc0", cidr: IPv4Interface("10.30.0.0/30")!))))
        let tiny = bed.config("1.1.0", ["network": "tiny"])
        let b = try bed.container("b")
        #expect(try bed.cni("ADD", container: "first", netns: ns.path, config: tiny).status == 0)
        expectCode(11, try bed.cni("ADD", container: "second", netns: b.path, config: tiny), "pool exhausted")
        #expect(try bed.cni("DEL", container: "second", netns: b.path, config: tiny).status == 0, "DEL after the failed ADD")
        #expect(try await bed.endpoints().map(\.name) == [MizarCNI.Attachment(containerID: "first", ifName: "eth0").endpointName(network: "mizarnet")])
        #expect(try bed.endpointVeths().count == 1)
        #expect(try bed.cni("DEL", container: "first", netns: ns.path, config: tiny).status == 0)

        // 51: transitd answers but transit XDP is gone; 50 and 11: transitd is stopped.
        #expect(try bed.cni("STATUS", config: good).status == 0)
        let links = try runCommand(["bpftool", "-j", "-f", "link", "show"])
        let xdpLink = try #require(((try JSONSerialization.jsonObject(with: Data(links.output.utf8)) as? [[String: Any]]) ?? [])
            .first { ($0["type"] as? String) == "xdp" && ($0["pinned"] as? [String])?.contains { $0.hasPrefix(bed.lab.pins(bed.host)) } == true }?["id"] as? Int,
            "the pinned transit XDP link")
        _ = try runCommand(["bpftool", "link", "detach", "id", "\(xdpLink)"])
        expectCode(51, try bed.cni("STATUS", config: good), "transit XDP detached")
        bed.lab.stop(bed.host)
        expectCode(50, try bed.cni("STATUS", config: good), "transitd stopped")
        expectCode(11, try bed.cni("ADD", container: "c1", netns: ns.path, config: good), "ADD with transitd stopped")
        expectCode(11, try bed.cni("DEL", container: "c1", netns: ns.path, config: good), "DEL with transitd stopped")
    }

    /// DEL succeeds for a container transitd never saw, an empty CNI_NETNS, a namespace or an
    /// interface already gone, and twice.
    @Test func delIsIdempotent() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config()
        #expect(try bed.cni("DEL", container: "never-seen", netns: "", config: config).status == 0)
        let a = try bed.container("a"), b = try bed.container("b"), c = try bed.container("c")
        for (id, ns) in [("a", a), ("b", b), ("c", c)] { #expect(try bed.cni("ADD", container: id, netns: ns.path, config: config).status == 0) }
        // a: the runtime lost the namespace path; b: the namespace is deleted; c: the interface is.
        #expect(try bed.cni("DEL", container: "a", netns: "", config: config).status == 0)
        _ = try Netns.delete(named: "\(bed.lab.underlay.prefix)-b")
        #expect(try bed.cni("DEL", container: "b", netns: b.path, config: config).status == 0)
        _ = try runCommand(["ip", "link", "del", "eth0"], in: c)
        #expect(try bed.cni("DEL", container: "c", netns: c.path, config: config).status == 0)
        for (id, ns) in [("a", a), ("b", b), ("c", c)] { #expect(try bed.cni("DEL", container: id, netns: ns.path, config: config).status == 0) }
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
        #expect(try bed.kernelEndpointEntries() == 0)
    }
}
