import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport
import Testing

@Suite("Overlay traffic with real tools: TCP, UDP, fragments, MTU, the wire format", .serialized)
struct OverlayTrafficTests {
    @Test func tcpUDPAndFragmentsCrossAndTheFabricCarriesGenevePerDesign() throws {
        let lab = try makeLab()
        defer { lab.teardown() }
        let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("\(lab.prefix).pcap").path
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let capture = try RunningCommand(["tcpdump", "-i", lab.prefix + "br", "-w", pcap, "-U", "-s", "256", "udp port 6081"], in: lab.fabric)
        for _ in 0..<100 where !capture.errorOutput.contains("listening on") { usleep(50_000) }

        // The endpoint MTU leaves room for the 66 bytes of overlay: 1500 - 66.
        let mtu = try RouteSocket(in: lab.guest("a1").netns).link(named: "eth0").mtu
        #expect(mtu == 1500 - UInt32(MZ_MTU_OVERHEAD))
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 2, extra: ["-M", "do", "-s", "\(Int(mtu) - 28)"]) == 2)
        // IPv4 fragments (a 3000-byte ping in three fragments) reach the right endpoint, both ways.
        #expect(try lab.ping(from: "a1", to: lab.guest("b2").ip, count: 2, extra: ["-s", "3000"]) == 2)

        let tcp = try lab.iperf(from: "a1", to: "b1", seconds: 3)
        let tcpBits = ((tcp["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        #expect(tcpBits > 100e6, "TCP across the overlay: \(tcpBits / 1e9) Gbit/s")
        // Fixed-rate UDP on two shared cores (with tcpdump writing beside it) can lose a burst in
        // the receiver's socket; a second run tells that from a path that loses.
        var runs: [(packets: Int, lost: Int)] = []
        for _ in 0..<2 where runs.allSatisfy({ $0.packets <= 1000 || Double($0.lost) >= Double($0.packets) * 0.01 }) {
            // A 4 MiB socket buffer takes the bursts a shared core gives the receiver (losses there are not the path's).
            let udp = try lab.iperf(from: "a1", to: "b2", seconds: 2, extra: ["-u", "-b", "50M", "-w", "4M"])
            let udpSum = (udp["sum"] as? [String: Any]) ?? [:]
            let packets = (udpSum["packets"] as? Int) ?? 0
            runs.append((packets, (udpSum["lost_packets"] as? Int) ?? packets))
        }
        #expect(runs.contains { $0.packets > 1000 && Double($0.lost) < Double($0.packets) * 0.01 }, "UDP (lost of sent, per run): \(runs)")

        usleep(200_000)
        capture.interrupt()
        let frames = try readPcap(pcap)
        #expect(frames.count > 100)
        let decoded = try runCommand(["tcpdump", "-r", pcap, "-nn", "-vv", "-c", "5"])
        #expect(decoded.output.contains("Geneve") && decoded.output.contains("vni 0x64"), "tcpdump decodes Geneve: \(decoded.output.prefix(600))")
        let droplets = Dictionary(uniqueKeysWithValues: lab.hosts.values.map { ($0.address.ip, $0.address.mac) })
        var rtsSenders = Set<IPv4Address>()
        for frame in frames {
            let outer = try #require(OuterHeaders(frame))
            #expect(outer.destinationPort == UInt16(MZ_GENEVE_UDP_PORT) && outer.geneveProtocol == UInt16(MZ_GENEVE_PROTO_ETH))
            #expect(outer.vni == 100 && outer.dontFragment && outer.udpChecksum == 0 && outer.ipChecksumValid)
            #expect((UInt16(MZ_GENEVE_SPORT_MIN)...UInt16(MZ_GENEVE_SPORT_MAX)).contains(outer.sourcePort))
            #expect(Array(outer.options.prefix(4)) == [0x01, 0x11, 0x48, 0x03], "option class 0x0111, RTS 0x48, 3 words")
            let rtsIP = IPv4Address(bytes: Array(outer.options[4..<8]))
            #expect(droplets[rtsIP] == MACAddress(bytes: Array(outer.options[8..<14])), "RTS carries a droplet's IP and MAC")
            #expect(outer.options[14] == 0 && outer.options[15] == 0)
            rtsSenders.insert(rtsIP)
        }
        #expect(rtsSenders == [lab.host("hosta").address.ip, lab.host("hostb").address.ip], "RTS names the source endpoint's droplet, never a bouncer")
    }

    @Test func sameHostEndpointsInTwoNetworksCarryTCP() throws {
        let lab = try makeLab()
        defer { lab.teardown() }
        let before = try lab.agent("hostb")
        let end = try lab.iperf(from: "b1", to: "b2", seconds: 2)
        let bits = ((end["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        #expect(bits > 100e6, "TCP between endpoints of one droplet: \(bits / 1e9) Gbit/s")
        #expect(try lab.agent("hostb").delta(since: before)[.local].packets > 100, "redirected on the droplet, never encapsulated")
    }

    @Test func xdpAgentCarriesPingsAndTCP() throws {
        let lab = try makeLab(agentHook: .xdp)
        defer { lab.teardown() }
        #expect(lab.host("hosta").dataplane.attachments[lab.hostSide(lab.guest("a1"))] == "xdp native")
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 3) == 3)
        #expect(try lab.ping(from: "a1", to: lab.guest("b2").ip, count: 3) == 3)
        let end = try lab.iperf(from: "a1", to: "b1", seconds: 2)
        let bits = ((end["sum_received"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        #expect(bits > 100e6, "TCP through the XDP agent: \(bits / 1e9) Gbit/s")
        #expect(try lab.host("hosta").dataplane.agentCounters()[.direct].packets > 100)
    }

    @Test func icmpErrorsReachTheSender() throws {
        let lab = try makeLab()
        defer { lab.teardown() }
        // A connected UDP socket in a1 learns of b2's ICMP port unreachable (ECONNREFUSED),
        // which crosses the divider back to a1 like any packet to a1.
        let target = lab.guest("b2").ip
        let refused: Bool = try lab.guest("a1").netns.perform {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(9).bigEndian
            sin.sin_addr.s_addr = target.value.bigEndian
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connected = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard connected == 0 else { return false }
            var byte: UInt8 = 0
            for _ in 0..<3 {
                _ = send(fd, [UInt8](repeating: 1, count: 8), 8, 0)
                if recv(fd, &byte, 1, 0) < 0 && errno == ECONNREFUSED { return true }
            }
            return false
        }
        #expect(refused, "ICMP port unreachable from b2 reached a1's socket")
    }

    @Test func jumboUnderlayLetsEndpointsUse1500() throws {
        let lab = try makeLab(underlayMTU: 9000)
        defer { lab.teardown() }
        #expect(try RouteSocket(in: lab.guest("a1").netns).link(named: "eth0").mtu == 1500)
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 2, extra: ["-M", "do", "-s", "1472"]) == 2)
        #expect(try lab.ping(from: "a1", to: lab.guest("b2").ip, count: 2, extra: ["-M", "do", "-s", "1472"]) == 2)
    }

    @Test func deletedEndpointIsDroppedAndCountedMovedOneResumesWithinASecond() throws {
        let lab = try makeLab()
        defer { lab.teardown() }
        try lab.createEndpoint("b3", vni: 100, ip: "10.0.1.4", on: "hostb")
        // Establish direct paths both ways.
        #expect(try lab.ping(from: "a1", to: lab.guest("b1").ip, count: 3) == 3)
        #expect(try lab.ping(from: "a1", to: lab.guest("b3").ip, count: 3) == 3)
        #expect(try lab.host("hosta").dataplane.learnedPaths()[lab.guest("b3").id] == lab.host("hostb").address)

        // Deleted: host A's stale direct path falls back to the bouncer, which drops and counts.
        try lab.deleteEndpoint("b1")
        let hostb0 = try lab.counters("hostb"), bouncer0 = try lab.counters("bouncer")
        #expect(try lab.ping(from: "a1", to: IPv4Address("10.0.1.3")!, count: 3) == 0)
        #expect(try lab.counters("hostb").delta(since: hostb0)[.fallback].packets == 3)
        #expect(try lab.counters("bouncer").delta(since: bouncer0)[.unknownEndpoint].packets == 3)

        // Moved to the divider's droplet while a1 pings it every 50 ms: at most 1 s of replies lost.
        let ping = try RunningCommand(["ping", "-c", "80", "-i", "0.05", "-W", "1", lab.guest("b3").ip.description], in: lab.guest("a1").netns)
        usleep(1_000_000)
        try lab.moveEndpoint("b3", to: "divider")
        let output = ping.wait(timeout: 30).output
        let received = pingReplies(output)
        #expect(received >= 60, "lost \(80 - received) of 80 pings at 50 ms intervals across the move:\n\(output.suffix(300))")
        #expect(try lab.host("hosta").dataplane.learnedPaths()[lab.guest("b3").id] == lab.host("divider").address, "the direct path follows the move")
        #expect(try lab.counters("hostb")[.fallback].packets > 3, "packets on the stale path went through the bouncer")
    }
}
