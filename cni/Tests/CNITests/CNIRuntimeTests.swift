import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// Real runtimes run `mizar`: each test starts its own containerd (private root, state and
/// socket) and removes it.
@Suite("CNI with real runtimes", .serialized)
struct CNIRuntimeTests {
    /// A CNI configuration directory and plugin directory for the runtime: `mizar` (this
    /// build's) and Debian's plugins.
    static func cniDirs(_ bed: CNIBed) throws -> (conf: String, bin: String) {
        let conf = bed.lab.root + "/net.d", bin = bed.lab.root + "/cni-bin"
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Binaries.mizar, toPath: bin + "/mizar")
        for plugin in ["loopback", "host-local", "bandwidth", "portmap", "tuning"] {
            try FileManager.default.createSymbolicLink(atPath: bin + "/" + plugin, withDestinationPath: CNIBed.debianPlugins + "/" + plugin)
        }
        try #"{"cniVersion":"1.0.0","name":"mizar","plugins":[{"type":"mizar","socket":"\#(bed.socket)","capabilities":{"ips":true,"mac":true}}]}"#
            .write(toFile: conf + "/10-mizar.conflist", atomically: true, encoding: .utf8)
        return (conf, bin)
    }

    /// `ctr run --cni`: the container gets its address from `mizar`, reaches a peer across
    /// the overlay, and its endpoint is gone when `--rm` removes it.
    @Test func ctrRunWithCNI() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let dirs = try Self.cniDirs(bed)
        let peer = try bed.container("peer")
        let peerAdd = try bed.cni("ADD", container: "peer", netns: peer.path, config: bed.config())
        let peerIP = try #require(CNIBed.address(peerAdd.json), "\(peerAdd)")
        let containerd = try Containerd(dir: bed.lab.root + "/containerd")
        defer { containerd.stop() }

        let run = try containerd.runWithCNI(confDir: dirs.conf, binDir: dirs.bin,
                                            ["--rm", Containerd.image, "ctr-c1", "sh", "-c", "ip -4 addr show eth0 && ping -c 3 -W 2 \(peerIP)"])
        #expect(run.status == 0, "\(run.output)\(run.error)")
        #expect(run.output.contains("inet 10.20.0.") && run.output.contains("mtu 1434"), "\(run.output)")
        #expect(run.output.contains("3 packets received"), "\(run.output)")
        // --rm ran DEL: only the peer is left.
        #expect(try await bed.endpoints().count == 1)
        #expect(try bed.endpointVeths().count == 1)
    }
}

/// containerd's CRI service, the path kubelet takes: a pod on each of two droplets, each
/// droplet with its own transitd and containerd, reach each other across the overlay.
@Suite("CNI through containerd's CRI", .serialized)
struct CNICRITests {
    @Test func podsOnTwoDropletsThroughCRI() async throws {
        let lab = try DaemonLab.running(["hosta", "hostb"])
        defer { lab.teardown() }
        // Both droplets know each other, VPC v1 and network n1 (bounced and divided by hostb).
        for host in ["hosta", "hostb"] {
            let other = host == "hosta" ? "hostb" : "hosta"
            let mac = try #require(try RouteSocket(in: lab.host(other).netns).link(named: "eth0").mac)
            _ = try await lab.host(host).client.apply(ApplyRequest(apply: [
                .droplet(Droplet(name: other, spec: DropletSpec(ip: lab.host(other).ip, mac: mac))),
                .vpc(VPC(name: "v1", spec: VPCSpec(vni: 100, dividers: ["hostb"]))),
                .network(Network(name: "n1", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.1.0.0/24")!, bouncers: ["hostb"]))),
            ]))
        }
        // Each host's runtime: its own containerd, a conflist naming its transitd, and a
        // host-local range of its own (addresses are per host until the cluster IPAM).
        var runtimes: [String: Containerd] = [:]
        defer { runtimes.values.forEach { $0.stop() } }
        for (i, host) in ["hosta", "hostb"].enumerated() {
            let conf = lab.root + "/\(host)-net.d", bin = lab.root + "/\(host)-bin"
            for dir in [conf, bin] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try FileManager.default.copyItem(atPath: Binaries.mizar, toPath: bin + "/mizar")
            for plugin in ["loopback", "host-local"] {
                try FileManager.default.createSymbolicLink(atPath: bin + "/" + plugin, withDestinationPath: CNIBed.debianPlugins + "/" + plugin)
            }
            let range = #"{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.\#(10 + 40 * i)","rangeEnd":"10.1.0.\#(49 + 40 * i)"}"#
            try #"""
                {"cniVersion":"1.0.0","name":"mizar","plugins":[{"type":"mizar","socket":"\#(lab.host(host).socket)","network":"n1",
                 "ipam":{"type":"host-local","dataDir":"\#(lab.root)/\#(host)-ipam","ranges":[[\#(range)]]}}]}
                """#.write(toFile: conf + "/10-mizar.conflist", atomically: true, encoding: .utf8)
            runtimes[host] = try Containerd(dir: lab.root + "/\(host)-containerd", cri: Containerd.criSection(confDir: conf, binDir: bin),
                                            criClient: TestPaths.root + "/cni/cri/cri.py")
        }
        let web = try #require(runtimes["hosta"]).runPod("web", namespace: "shop")
        let db = try #require(runtimes["hostb"]).runPod("db", namespace: "shop")
        #expect(web.state == "SANDBOX_READY" && db.state == "SANDBOX_READY")
        #expect(web.ip.hasPrefix("10.1.0.") && db.ip.hasPrefix("10.1.0.") && web.ip != db.ip, "\(web) \(db)")

        // The endpoints carry the pod's identity from CNI_ARGS.
        func endpoint(_ host: String, _ ip: String) async throws -> Endpoint? {
            try await lab.host(host).client.list(.endpoint).compactMap { if case .endpoint(let e) = $0, e.spec.ip?.description == ip { e } else { nil } }.first
        }
        let webEndpoint = try #require(try await endpoint("hosta", web.ip))
        let dbEndpoint = try #require(try await endpoint("hostb", db.ip))
        #expect(webEndpoint.metadata.labels?["k8s.io/pod-name"] == "web" && webEndpoint.metadata.labels?["k8s.io/pod-namespace"] == "shop")
        // The test plays the management plane: each droplet learns the other's pod.
        for (endpoint, from, to) in [(webEndpoint, "hosta", "hostb"), (dbEndpoint, "hostb", "hosta")] {
            _ = try await lab.host(to).client.put(.endpoint(Endpoint(name: endpoint.name, spec: EndpointSpec(network: "n1", ip: endpoint.spec.ip, mac: endpoint.spec.mac, droplet: from))))
        }
        #expect(try pingReplies(runCommand(["nsenter", "--net=\(web.netns)", "ping", "-c", "3", "-i", "0.2", "-W", "2", db.ip]).output) == 3, "web -> db")
        #expect(try pingReplies(runCommand(["nsenter", "--net=\(db.netns)", "ping", "-c", "3", "-i", "0.2", "-W", "2", web.ip]).output) == 3, "db -> web")

        // Removing the sandboxes runs DEL: the local endpoints, veths and addresses go.
        try #require(runtimes["hosta"]).removePod(web)
        try #require(runtimes["hostb"]).removePod(db)
        for host in ["hosta", "hostb"] {
            let locals = try await lab.host(host).client.list(.endpoint).filter { if case .endpoint(let e) = $0 { e.status?.local == true } else { false } }
            #expect(locals.isEmpty, "\(host): \(locals)")
            let ipam = (try? FileManager.default.contentsOfDirectory(atPath: lab.root + "/\(host)-ipam/mizar")) ?? []
            #expect(!ipam.contains { $0.hasPrefix("10.") }, "\(host) host-local still holds \(ipam)")
        }
        #expect(!FileManager.default.fileExists(atPath: web.netns) && !FileManager.default.fileExists(atPath: db.netns))
    }
}

/// podman with its CNI network backend: `podman run --network mizar`.
@Suite("CNI with podman", .serialized)
struct CNIPodmanTests {
    @Test func podmanRunOnTheMizarNetwork() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let dirs = try CNIRuntimeTests.cniDirs(bed)
        let peer = try bed.container("peer")
        let peerIP = try #require(CNIBed.address(try bed.cni("ADD", container: "peer", netns: peer.path, config: bed.config()).json))
        let podman = try Podman(dir: bed.lab.root + "/podman", confDir: dirs.conf, binDirs: [dirs.bin])
        defer { podman.stop() }

        let run = try podman.podman(["run", "--rm", "--network", "mizar", Containerd.image, "sh", "-c", "ip -4 addr show eth0 && ping -c 3 -W 2 \(peerIP)"])
        #expect(run.status == 0, "\(run.output)\(run.error)")
        #expect(run.output.contains("inet 10.20.0.") && run.output.contains("mtu 1434"), "\(run.output)")
        #expect(run.output.contains("3 packets received"), "\(run.output)")
        #expect(try await bed.endpoints().count == 1, "podman's DEL left an endpoint")
        #expect(try bed.endpointVeths().count == 1)
    }
}
