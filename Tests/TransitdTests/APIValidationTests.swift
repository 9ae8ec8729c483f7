import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// Every route with good and bad input, against a real transitd: a refused request gets the
/// right status and the error shape, and changes nothing in the store or in the kernel.
@Suite("transitd API: validation, error shape, nothing changed", .serialized)
struct APIValidationTests {
    /// A raw request with curl (a real HTTP client over the socket): status and decoded error.
    func raw(_ lab: DaemonLab, _ method: String, _ path: String, body: String? = nil) throws -> (Int, APIError?, String) {
        let bodyFile = lab.root + "/body-\(UUID().uuidString)"
        var args = ["curl", "-s", "-o", bodyFile, "-w", "%{http_code}", "--unix-socket", lab.host("hosta").socket, "-X", method,
                    "-H", "Content-Type: application/json"]
        if let body {
            try body.write(toFile: bodyFile + ".in", atomically: true, encoding: .utf8)
            args += ["--data-binary", "@" + bodyFile + ".in"]
        }
        let result = try runCommand(args + ["http://transitd" + path])
        let text = (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? ""
        return (Int(result.output) ?? -1, try? JSONDecoder().decode(APIError.self, from: Data(text.utf8)), text)
    }

    /// Everything observable: every resource as stored, the kernel tables, the droplet's links.
    struct Snapshot: Equatable {
        var store: [String]
        var kernel: KernelTables
        var links: [String]
    }

    func snapshot(_ lab: DaemonLab) async throws -> Snapshot {
        let client = lab.host("hosta").client
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var store: [String] = []
        for kind in Kind.allCases { store.append(String(decoding: try encoder.encode(try await client.list(kind)), as: UTF8.self)) }
        return Snapshot(store: store, kernel: try KernelTables(lab.host("hosta").netns),
                        links: try RouteSocket(in: lab.host("hosta").netns).links().map(\.name).sorted())
    }

    @Test func badRequestsGetErrorsAndChangeNothing() async throws {
        let lab = try DaemonLab.running(["hosta"])
        defer { lab.teardown() }
        let ns = try lab.endpointNamespace("e1")
        let client = lab.host("hosta").client
        _ = try await client.apply(ApplyRequest(apply: [
            .vpc(VPC(name: "v1", spec: VPCSpec(vni: 100))),
            .network(Network(name: "n1", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.1.0.0/24")!))),
            .endpoint(Endpoint(name: "e1", spec: EndpointSpec(network: "n1", ip: IPv4Address("10.1.0.5"), netns: ns.path))),
        ]))
        let before = try await snapshot(lab)
        #expect(before.kernel.count("endpoints") == 1)

        let endpoint = { (name: String, network: String, ip: String) in
            #"{"metadata":{"name":"\#(name)"},"spec":{"network":"\#(network)","ip":"\#(ip)","netns":"\#(ns.path)"}}"#
        }
        let big = #"{"metadata":{"name":"big"},"spec":{"vni":7},"pad":""# + String(repeating: "x", count: 1_100_000) + #""}"#
        let fifo = lab.root + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        // Someone else's interfaces: a veth made here by hand, and the droplet's own.
        let hostSocket = try RouteSocket(in: lab.host("hosta").netns)
        let other = try lab.endpointNamespace("other")
        try hostSocket.createVethPair(name: "theirs0", peerName: "eth0", peerNetns: other)
        let prefixes = (0..<4097).map { #""10.\#($0 / 256).\#($0 % 256).0/24""# }.joined(separator: ",")
        let natBody = #"{"metadata":{"name":"nat"},"spec":{"externalIP":"172.30.0.1","ports":[20000,30000],"masquerade":[{"vpc":100,"destinations":[\#(prefixes)],"except":[]}],"forwards":[]}}"#
        let cases: [(String, String, String, String?, Int, String)] = [
            ("bad JSON", "PUT", "/v1/vpcs/v2", #"{"metadata":{"name":"v2""#, 400, "badRequest"),
            ("unknown kind", "POST", "/v1/apply", #"{"apply":[{"kind":"Pod","metadata":{"name":"p"},"spec":{}}],"delete":[]}"#, 400, "badRequest"),
            ("VNI out of range", "PUT", "/v1/vpcs/v2", #"{"metadata":{"name":"v2"},"spec":{"vni":16777216}}"#, 400, "badRequest"),
            ("VNI taken", "PUT", "/v1/vpcs/v2", #"{"metadata":{"name":"v2"},"spec":{"vni":100}}"#, 409, "conflict"),
            ("bad CIDR", "PUT", "/v1/networks/n2", #"{"metadata":{"name":"n2"},"spec":{"vpc":"v1","cidr":"10.1.0.0/33"}}"#, 400, "badRequest"),
            ("host bits", "PUT", "/v1/networks/n2", #"{"metadata":{"name":"n2"},"spec":{"vpc":"v1","cidr":"10.2.0.1/24"}}"#, 422, "invalid"),
            ("CIDR overlap in a VPC", "PUT", "/v1/networks/n2", #"{"metadata":{"name":"n2"},"spec":{"vpc":"v1","cidr":"10.1.0.128/25"}}"#, 409, "conflict"),
            ("network of no VPC", "PUT", "/v1/networks/n2", #"{"metadata":{"name":"n2"},"spec":{"vpc":"nope","cidr":"10.9.0.0/24"}}"#, 422, "invalid"),
            ("unknown bouncer", "PUT", "/v1/networks/n2", #"{"metadata":{"name":"n2"},"spec":{"vpc":"v1","cidr":"10.9.0.0/24","bouncers":["ghost"]}}"#, 422, "invalid"),
            ("endpoint outside its network", "PUT", "/v1/endpoints/e2", endpoint("e2", "n1", "10.7.0.5"), 422, "invalid"),
            ("endpoint on the gateway", "PUT", "/v1/endpoints/e2", endpoint("e2", "n1", "10.1.0.1"), 422, "invalid"),
            ("duplicate IP", "PUT", "/v1/endpoints/e2", endpoint("e2", "n1", "10.1.0.5"), 409, "conflict"),
            ("endpoint of no network", "PUT", "/v1/endpoints/e2", endpoint("e2", "nope", "10.1.0.6"), 422, "invalid"),
            ("missing netns", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","netns":"/run/netns/no-such-ns-\#(lab.underlay.prefix)"}}"#, 422, "invalid"),
            ("netns is a FIFO", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","netns":"\#(fifo)"}}"#, 422, "invalid"),
            ("netns is a plain file", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","netns":"/etc/hostname"}}"#, 422, "invalid"),
            ("someone else's veth", "PUT", "/v1/endpoints/e2",
             #"{"metadata":{"name":"e2"},"spec":{"network":"n1","netns":"\#(ns.path)","interface":"eth9","hostInterface":"theirs0"}}"#, 409, "conflict"),
            ("the substrate", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","hostInterface":"eth0"}}"#, 422, "invalid"),
            ("loopback", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","hostInterface":"lo"}}"#, 422, "invalid"),
            ("no such veth", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","hostInterface":"nope0"}}"#, 422, "invalid"),
            ("loopback droplet", "PUT", "/v1/droplets/lo", #"{"metadata":{"name":"lo"},"spec":{"ip":"127.0.0.1","mac":"02:00:00:00:00:99"}}"#, 422, "invalid"),
            ("zero MAC droplet", "PUT", "/v1/droplets/z", #"{"metadata":{"name":"z"},"spec":{"ip":"172.30.0.99","mac":"00:00:00:00:00:00"}}"#, 422, "invalid"),
            ("multicast network", "PUT", "/v1/networks/n2", #"{"metadata":{"name":"n2"},"spec":{"vpc":"v1","cidr":"224.0.0.0/24"}}"#, 422, "invalid"),
            ("shaper burst beyond any rate", "PUT", "/v1/pluginconfigs/shaper",
             #"{"metadata":{"name":"shaper"},"spec":{"limits":[{"vpc":1,"endpoint":"10.20.0.2","direction":"egress","bitsPerSecond":8000,"burstBytes":100000000000000}]}}"#,
             422, "invalid"),
            ("more NAT prefixes than the map holds", "PUT", "/v1/pluginconfigs/nat", natBody, 422, "invalid"),
            ("bad MAC", "PUT", "/v1/endpoints/e2", #"{"metadata":{"name":"e2"},"spec":{"network":"n1","mac":"zz:00:00:00:00:01","netns":"\#(ns.path)"}}"#, 400, "badRequest"),
            ("bad name", "PUT", "/v1/vpcs/Bad_Name!", #"{"metadata":{"name":"Bad_Name!"},"spec":{"vni":9}}"#, 422, "invalid"),
            ("name differs from path", "PUT", "/v1/vpcs/v3", #"{"metadata":{"name":"v4"},"spec":{"vni":9}}"#, 400, "badRequest"),
            ("kind differs from path", "PUT", "/v1/vpcs/v3", #"{"kind":"Network","metadata":{"name":"v3"},"spec":{"vpc":"v1","cidr":"10.3.0.0/24"}}"#, 400, "badRequest"),
            ("unknown plugin", "PUT", "/v1/chains/ingress", #"{"metadata":{"name":"ingress"},"spec":{"plugins":["acl","nope"]}}"#, 422, "invalid"),
            ("plugin twice", "PUT", "/v1/chains/egress", #"{"metadata":{"name":"egress"},"spec":{"plugins":["acl","acl"]}}"#, 422, "invalid"),
            ("unknown hook", "PUT", "/v1/chains/sideways", #"{"metadata":{"name":"sideways"},"spec":{"plugins":["acl"]}}"#, 422, "invalid"),
            ("bad plugin config", "PUT", "/v1/pluginconfigs/shaper", #"{"metadata":{"name":"shaper"},"spec":{"limits":"fast"}}"#, 422, "invalid"),
            ("config of no plugin", "PUT", "/v1/pluginconfigs/nope", #"{"metadata":{"name":"nope"},"spec":{}}"#, 422, "invalid"),
            ("VPC with networks", "DELETE", "/v1/vpcs/v1", nil, 409, "conflict"),
            ("network with endpoints", "DELETE", "/v1/networks/n1", nil, 409, "conflict"),
            ("this droplet", "DELETE", "/v1/droplets/hosta", nil, 409, "conflict"),
            ("unknown resource", "GET", "/v1/vpcs/nope", nil, 404, "notFound"),
            ("body over 1 MiB", "PUT", "/v1/vpcs/big", big, 413, "tooLarge"),
            ("all or nothing", "POST", "/v1/apply",
             #"{"apply":[{"kind":"VPC","metadata":{"name":"ok"},"spec":{"vni":55}},{"kind":"Network","metadata":{"name":"bad"},"spec":{"vpc":"ok","cidr":"10.0.0.0/8","bouncers":["ghost"]}}],"delete":[]}"#,
             422, "invalid"),
        ]
        for (what, method, path, body, status, code) in cases {
            let (got, error, text) = try raw(lab, method, path, body: body)
            #expect(got == status, "\(what): HTTP \(got), body \(text.prefix(300))")
            #expect(error?.code == code && error?.message.isEmpty == false, "\(what): \(text.prefix(300))")
        }
        let (notFound, _, _) = try raw(lab, "GET", "/v1/nothing")
        #expect(notFound == 404)
        #expect(try hostSocket.link(named: "theirs0").alias == nil, "a refused request marked someone else's veth")
        _ = try hostSocket.deleteLink(named: "theirs0")
        let after = try await snapshot(lab)
        #expect(after.store == before.store, "a refused request changed the store")
        #expect(after.kernel == before.kernel, "a refused request changed the kernel tables: \(before) -> \(after.kernel)")
        #expect(after.links == before.links, "a refused request changed the droplet's links")
        #expect(lab.host("hosta").process?.isRunning == true)
    }

    @Test func goodRequestsAreIdempotent() async throws {
        let lab = try DaemonLab.running(["hosta"])
        defer { lab.teardown() }
        let ns = try lab.endpointNamespace("e1")
        let client = lab.host("hosta").client
        // Out of the box: vpc0 and net0 with this droplet dividing and bouncing.
        #expect(try await client.list(.vpc).map(\.name) == ["vpc0"])
        guard case .network(let net0) = try await client.get(.network, "net0") else { Issue.record("net0 is not a network"); return }
        #expect(net0.spec.cidr == IPv4Interface("10.20.0.0/16")! && net0.spec.bouncers == ["hosta"] && net0.status?.gateway == IPv4Address("10.20.0.1"))

        let request = Endpoint(name: "c1", spec: EndpointSpec(network: "net0", netns: ns.path))
        let first = try await client.put(.endpoint(request))
        let second = try await client.put(.endpoint(request))
        #expect(first == second, "the same PUT twice is one endpoint with the same address")
        guard case .endpoint(let c1) = first else { Issue.record("not an endpoint"); return }
        #expect(c1.spec.ip == IPv4Address("10.20.0.2") && c1.spec.interface == "eth0" && c1.status?.attachment == "tc")
        let inside = try RouteSocket(in: ns)
        #expect(try inside.addresses(of: inside.link(named: "eth0").index).contains(IPv4Interface("10.20.0.2/16")!))
        #expect(try inside.link(named: "eth0").mtu == 1434)
        #expect(try KernelTables(lab.host("hosta").netns).count("endpoints") == 1)

        #expect(try await client.delete(.endpoint, "c1").items.first?.action == "deleted")
        #expect(try await client.delete(.endpoint, "c1").items.first?.action == "unchanged")
        #expect(try KernelTables(lab.host("hosta").netns).count("endpoints") == 0)
        #expect(throws: (any Error).self) { try inside.link(named: "eth0") }

        // A plugin chain and configuration through the API.
        let shaper = try Manifests.value("limits: [{vpc: 1, endpoint: 10.20.0.2, direction: egress, bitsPerSecond: 10000000, burstBytes: 262144}]", source: "test")
        _ = try await client.put(.pluginConfig(PluginConfig(name: "shaper", spec: PluginConfigSpec(config: shaper))))
        _ = try await client.put(.pluginChain(PluginChain(name: "egress", spec: PluginChainSpec(plugins: ["shaper"]))))
        #expect(try await client.status().chains["egress"] == ["shaper"])
        #expect(try await client.plugin("shaper").activeIn == ["egress"])
        _ = try await client.delete(.pluginChain, "egress")
        #expect(try await client.status().chains["egress"] == [])
        #expect(try await client.health().healthy)

        // One transitd per state directory, and a state directory belongs to one droplet.
        let host = lab.host("hosta")
        let another = try runCommand([Binaries.transitd, "--interface", "eth0", "--name", "hosta", "--socket", lab.root + "/second.sock",
                                     "--state-dir", host.stateDir, "--bpf-dir", TestPaths.bpfDir, "--config", "/dev/null"], in: host.netns, timeout: 20)
        #expect(another.status != 0 && another.error.contains("another transitd"), "\(another.error)")
        lab.stop("hosta")
        let renamed = try runCommand([Binaries.transitd, "--interface", "eth0", "--name", "other", "--socket", host.socket,
                                      "--state-dir", host.stateDir, "--bpf-dir", TestPaths.bpfDir, "--config", "/dev/null"], in: host.netns, timeout: 20)
        #expect(renamed.status != 0 && renamed.error.contains("--name hosta"), "\(renamed.error)")
    }
}
