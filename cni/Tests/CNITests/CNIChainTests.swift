import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// `mizar` first in a conflist run by libcni (what containerd and podman embed), followed by
/// Debian's bandwidth, portmap and tuning: each sees mizar's result as its prevResult.
@Suite("CNI chains through libcni", .serialized)
struct CNIChainTests {
    static let driver = TestPaths.root + "/build/cnidriver"

    @Test func mizarThenBandwidthPortmapTuning() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let dir = bed.lab.root + "/cni"
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/bin/mizar", withDestinationPath: Binaries.mizar)
        let conflist: [String: Any] = [
            "cniVersion": "1.0.0", "name": "chain",
            "plugins": [
                ["type": "mizar", "socket": bed.socket, "capabilities": ["ips": true, "mac": true]],
                ["type": "bandwidth", "ingressRate": 100_000_000, "ingressBurst": 1_000_000],
                ["type": "portmap", "capabilities": ["portMappings": true]],
                ["type": "tuning", "sysctl": ["net.ipv4.conf.eth0.arp_notify": "1"]],
            ],
        ]
        try JSONSerialization.data(withJSONObject: conflist).write(to: URL(fileURLWithPath: dir + "/10-chain.conflist"))
        // Debian's portmap 1.1 fails its own CHECK (it looks for an IPv6 chain it never made):
        // CHECK runs the same network without it.
        var withoutPortmap = conflist
        withoutPortmap["plugins"] = (conflist["plugins"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != "portmap" }
        try JSONSerialization.data(withJSONObject: withoutPortmap).write(to: URL(fileURLWithPath: dir + "/check.conflist"))
        let droplet = bed.lab.host(bed.host).netns
        let pod = try bed.container("pod"), peer = try bed.container("peer")
        // The runtime runs where transitd's veths are: the droplet's namespace.
        func driver(_ command: String, _ container: String, _ ns: Netns, capabilities: String = "{}", list: String = "10-chain.conflist") throws -> CommandResult {
            try runCommand([Self.driver, command, dir + "/" + list, container, ns.path, "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1"],
                           in: droplet, environment: ["CNI_PATH": dir + "/bin:" + CNIBed.debianPlugins, "CNI_CACHE_DIR": dir + "/cache",
                                                      "CNI_CAPABILITY_ARGS": capabilities])
        }
        // A runtime passes the same capability arguments to ADD, CHECK and DEL.
        let capabilities = #"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"mac":"02:00:00:aa:bb:cc"}"#
        let add = try driver("ADD", "pod", pod, capabilities: capabilities)
        #expect(add.status == 0, "\(add.output)\(add.error)")
        let result = try JSONSerialization.jsonObject(with: Data(add.output.utf8)) as? [String: Any]
        let ip = try #require(CNIBed.address(result))
        let peerAdd = try driver("ADD", "peer", peer)
        #expect(peerAdd.status == 0, "\(peerAdd.output)")

        let endpoint = try #require(try await bed.endpoints().first { $0.spec.ip?.description == ip })
        #expect(endpoint.metadata.labels?["k8s.io/pod-namespace"] == "shop" && endpoint.metadata.labels?["k8s.io/pod-name"] == "web-1")
        #expect(endpoint.spec.mac?.description == "02:00:00:aa:bb:cc")
        let host = try #require(endpoint.spec.hostInterface)
        // bandwidth: a token bucket on the host side; portmap: a DNAT to the pod; tuning: the sysctl inside.
        #expect(try runCommand(["tc", "qdisc", "show", "dev", host], in: droplet).output.contains("tbf"))
        #expect(try runCommand(["iptables", "-t", "nat", "-S"], in: droplet).output.contains("--to-destination \(ip):80"))
        #expect(try runCommand(["sysctl", "-n", "net.ipv4.conf.eth0.arp_notify"], in: pod).output.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(try pingReplies(runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "2", ip], in: peer).output) == 3)

        let check = try driver("CHECK", "pod", pod, capabilities: capabilities, list: "check.conflist")
        #expect(check.status == 0, "\(check.output)")
        for (id, ns) in [("pod", pod), ("peer", peer)] {
            let del = try driver("DEL", id, ns, capabilities: id == "pod" ? capabilities : "{}")
            #expect(del.status == 0, "\(del.output)")
        }
        #expect(try !runCommand(["iptables", "-t", "nat", "-S"], in: droplet).output.contains("--to-destination \(ip):80"))
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
        // A second DEL from the runtime (it retries) succeeds.
        #expect(try driver("DEL", "pod", pod, capabilities: capabilities).status == 0)
    }
}
