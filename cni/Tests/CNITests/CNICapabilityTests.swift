import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// The capabilities `bandwidth` and `portMappings`: transitd turns them into the shaper's
/// limits and nat's forwards for that endpoint, and puts those plugins on the chains.
@Suite("CNI capabilities mapped to plugins", .serialized)
struct CNICapabilityTests {
    static func status(_ bed: CNIBed) async throws -> DaemonStatus { try await bed.client.status() }

    @Test func bandwidthBecomesAShaperLimit() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let limited = try bed.container("limited"), peer = try bed.container("peer")
        let rate: UInt64 = 40_000_000
        let config = bed.config("1.1.0", ["runtimeConfig": ["bandwidth": ["egressRate": rate, "egressBurst": 1_048_576]]])
        let add = try bed.cni("ADD", container: "limited", netns: limited.path, config: config)
        #expect(add.status == 0, "\(add)")
        let peerIP = try #require(CNIBed.address(try bed.cni("ADD", container: "peer", netns: peer.path, config: bed.config()).json))
        #expect(try await Self.status(bed).chains["egress"]?.contains("shaper") == true)
        let endpoint = try #require(try await bed.endpoints().first { $0.metadata.labels?["cni.mizar.com/container-id"] == "limited" })
        #expect(endpoint.spec.bandwidth?.egressRate == rate)
        // Stored with the endpoint: a restarted transitd puts the limit back.
        bed.lab.stop(bed.host)
        try bed.lab.start(bed.host)
        let restored = try #require(try await bed.endpoints().first { $0.name == endpoint.name })
        #expect(restored.spec.bandwidth == endpoint.spec.bandwidth)
        #expect(try await Self.status(bed).chains["egress"]?.contains("shaper") == true)

        // UDP offered at twice the rate: what arrives is what the bucket let through.
        let udp = try iperf3(from: limited, to: peer, server: try #require(IPv4Address(peerIP)), seconds: 3, extra: ["-u", "-b", "80M", "-l", "1400"])
        let sum = (udp["sum"] as? [String: Any]) ?? [:]
        let packets = (sum["packets"] as? Int) ?? 0, lost = (sum["lost_packets"] as? Int) ?? 0, seconds = (sum["seconds"] as? Double) ?? 3
        let frameBits = Double((packets - lost) * (1400 + 8 + 20 + 14) * 8) / seconds
        #expect(abs(frameBits / Double(rate) - 1) <= 0.10, "received \(frameBits / 1e6) Mbit/s of frames, asked \(Double(rate) / 1e6)")

        // DEL takes the limit away, and the shaper off the chain.
        #expect(try bed.cni("DEL", container: "limited", netns: limited.path, config: config).status == 0)
        #expect(try await Self.status(bed).chains["egress"]?.contains("shaper") != true)
    }

    @Test func portMappingsBecomeNATForwards() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let client = try bed.lab.addExternalHost("client")
        let web = try bed.container("web"), other = try bed.container("other")
        let mapping: [String: Any] = ["runtimeConfig": ["portMappings": [["hostPort": 8080, "containerPort": 80, "protocol": "tcp"]]]]
        let add = try bed.cni("ADD", container: "web", netns: web.path, config: bed.config("1.1.0", mapping))
        #expect(add.status == 0, "\(add)")
        let chains = try await Self.status(bed).chains
        #expect(chains["egress"]?.contains("nat") == true && chains["ingress"]?.contains("nat") == true, "\(chains)")
        // The same droplet port for a second container is refused, and leaves nothing.
        let clash = try bed.cni("ADD", container: "other", netns: other.path, config: bed.config("1.1.0", mapping))
        #expect(clash.status != 0 && clash.code == 7 && (clash.json?["msg"] as? String)?.contains("8080") == true, "\(clash)")
        #expect(try await bed.endpoints().count == 1)

        // A host outside the overlay reaches the container's server through the droplet's port.
        let server = try RunningCommand(["python3", "-m", "http.server", "80", "--bind", "0.0.0.0"], in: web)
        defer { server.interrupt() }
        let url = "http://\(bed.lab.host(bed.host).ip):8080/"
        var fetched: CommandResult?
        for _ in 0..<30 where fetched?.status != 0 {
            usleep(200_000)
            fetched = try runCommand(["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", url], in: client.netns)
        }
        #expect(fetched?.status == 0 && fetched?.output == "200", "curl \(url) from outside: \(String(describing: fetched))")

        // DEL takes the forward away: the port no longer answers, nat leaves the chains.
        #expect(try bed.cni("DEL", container: "web", netns: web.path, config: bed.config("1.1.0", mapping)).status == 0)
        let after = try runCommand(["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", url], in: client.netns)
        #expect(after.status != 0, "the forward outlived its endpoint: \(after.output)")
        #expect(try await Self.status(bed).chains["ingress"]?.contains("nat") != true)
        // The port is free again.
        #expect(try bed.cni("ADD", container: "other", netns: other.path, config: bed.config("1.1.0", mapping)).status == 0)
    }
}
