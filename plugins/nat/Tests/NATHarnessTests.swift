import CMizarABI
import MizarNAT
import MizarPluginSDK
import Testing

/// The nat plugin through the SDK harness: rewritten bytes, checksums checked from scratch.
@Suite("nat plugin (SDK harness)")
struct NATHarnessTests {
    static let droplet = IPv4Address(172, 30, 0, 1), a = IPv4Address(10, 0, 1, 2), b = IPv4Address(10, 0, 2, 5)
    static let outside = IPv4Address(8, 8, 8, 8), client = IPv4Address(203, 0, 113, 9)

    func harness(ports: ClosedRange<UInt16> = 20000...20999) throws -> PluginHarness {
        try PluginHarness(plugin: NAT.descriptor, hooks: [.egress, .ingress], configuration: NAT.Config(
            externalIP: Self.droplet.description, ports: ports,
            masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"])],
            forwards: [NAT.Forward(protocol: .tcp, port: 8080, vpc: 100, endpoint: "10.0.1.3", endpointPort: 80)]))
    }

    func out(_ harness: PluginHarness, _ frame: [UInt8], from ip: IPv4Address = a, flavor: ProgramFlavor = .xdp) throws -> HarnessResult {
        try harness.run(frame, hook: .egress, flavor: flavor, context: HarnessContext(vni: 100, endpointIP: ip))
    }

    func into(_ harness: PluginHarness, _ frame: [UInt8]) throws -> HarnessResult {
        try harness.run(frame, hook: .ingress, context: HarnessContext(vni: 0, external: true))
    }

    @Test("SNAT: the source becomes the droplet and a port; the reply finds the endpoint", arguments: ProgramFlavor.allCases)
    func masquerade(flavor: ProgramFlavor) throws {
        let harness = try harness()
        for (frame, proto) in [(PacketBuilder.udpFrame(src: Self.a, dst: Self.outside, sourcePort: 40000, destinationPort: 53, payload: [1, 2, 3]), PacketBuilder.protocolUDP),
                               (PacketBuilder.tcpFrame(src: Self.a, dst: Self.outside, sourcePort: 40000, destinationPort: 443, payload: Array("hello".utf8)), PacketBuilder.protocolTCP)] {
            let result = try out(harness, frame, flavor: flavor)
            #expect(result.verdict == .forwarded && result.leaves, "a masqueraded frame leaves the overlay")
            let sent = try #require(IPv4Frame(result.packet))
            #expect(sent.source == Self.droplet && (20000...20999).contains(sent.sourcePort) && sent.destination == Self.outside)
            #expect(sent.checksumsValid, "checksums after SNAT (\(flavor), protocol \(proto))")
            // The same connection keeps its port.
            #expect(IPv4Frame(try out(harness, frame, flavor: flavor).packet)?.sourcePort == sent.sourcePort)

            let replyFrame = proto == PacketBuilder.protocolUDP
                ? PacketBuilder.udpFrame(src: Self.outside, dst: Self.droplet, sourcePort: 53, destinationPort: sent.sourcePort, payload: [9])
                : PacketBuilder.tcpFrame(src: Self.outside, dst: Self.droplet, sourcePort: 443, destinationPort: sent.sourcePort, flags: [.syn, .ack])
            let reply = try into(harness, replyFrame)
            #expect(reply.verdict == .forwarded && reply.context?.vni == 100, "claimed for VPC 100")
            let back = try #require(IPv4Frame(reply.packet))
            #expect(back.destination == Self.a && back.destinationPort == 40000 && back.source == Self.outside && back.checksumsValid)
        }
    }

    @Test("ICMP echo: the id is translated and restored")
    func icmpEcho() throws {
        let harness = try harness()
        let result = try out(harness, PacketBuilder.icmpEchoFrame(src: Self.a, dst: Self.outside, identifier: 77))
        let sent = try #require(IPv4Frame(result.packet))
        #expect(result.leaves && sent.source == Self.droplet && sent.checksumsValid)
        let reply = try into(harness, PacketBuilder.icmpEchoFrame(src: Self.outside, dst: Self.droplet, identifier: sent.sourcePort, reply: true))
        let back = try #require(IPv4Frame(reply.packet))
        #expect(back.destination == Self.a && back.sourcePort == 77 && back.icmpType == 0 && back.checksumsValid)
    }

    @Test("overlay destinations and the droplet's own traffic are left alone")
    func untouched() throws {
        let harness = try harness()
        let overlay = PacketBuilder.udpFrame(src: Self.a, dst: Self.b, sourcePort: 1, destinationPort: 2)
        let result = try out(harness, overlay)
        #expect(result.verdict == .forwarded && !result.leaves && result.packet == overlay)
        let hostTraffic = PacketBuilder.tcpFrame(src: Self.client, dst: Self.droplet, sourcePort: 5000, destinationPort: 22)
        let inbound = try into(harness, hostTraffic)
        #expect(inbound.verdict == .forwarded && inbound.context?.vni == 0 && inbound.packet == hostTraffic)
    }

    @Test("DNAT: a droplet port reaches the endpoint, whose replies leave as that port")
    func portForward() throws {
        let harness = try harness()
        let syn = try into(harness, PacketBuilder.tcpFrame(src: Self.client, dst: Self.droplet, sourcePort: 5555, destinationPort: 8080))
        let delivered = try #require(IPv4Frame(syn.packet))
        #expect(syn.context?.vni == 100 && delivered.destination == IPv4Address(10, 0, 1, 3) && delivered.destinationPort == 80 && delivered.checksumsValid)
        let answer = try out(harness, PacketBuilder.tcpFrame(src: IPv4Address(10, 0, 1, 3), dst: Self.client, sourcePort: 80, destinationPort: 5555, flags: [.syn, .ack]),
                             from: IPv4Address(10, 0, 1, 3), flavor: .tc)
        let sent = try #require(IPv4Frame(answer.packet))
        #expect(answer.leaves && sent.source == Self.droplet && sent.sourcePort == 8080 && sent.destination == Self.client && sent.checksumsValid)
        // UDP to the forwarded TCP port is not forwarded.
        let udp = try into(harness, PacketBuilder.udpFrame(src: Self.client, dst: Self.droplet, sourcePort: 5555, destinationPort: 8080))
        #expect(udp.context?.vni == 0)
    }

    @Test("when every port is taken the new connection is dropped and counted")
    func exhaustion() throws {
        let harness = try harness(ports: 30000...30000)
        let first = PacketBuilder.udpFrame(src: Self.a, dst: Self.outside, sourcePort: 1111, destinationPort: 53)
        let second = PacketBuilder.udpFrame(src: IPv4Address(10, 0, 1, 4), dst: Self.outside, sourcePort: 2222, destinationPort: 53)
        #expect(try out(harness, first).verdict == .forwarded)
        #expect(try out(harness, second, from: IPv4Address(10, 0, 1, 4)).verdict == .dropped)
        #expect(try harness.counters("nat", at: .egress).dropReasons[NAT.Reason.noPort.rawValue].packets == 1)
        // Another remote can reuse the port.
        let elsewhere = PacketBuilder.udpFrame(src: IPv4Address(10, 0, 1, 4), dst: Self.client, sourcePort: 2222, destinationPort: 53)
        #expect(try out(harness, elsewhere, from: IPv4Address(10, 0, 1, 4)).verdict == .forwarded)
    }

    @Test("bad configurations are refused")
    func validation() throws {
        let harness = try harness()
        let bad = [
            NAT.Config(externalIP: "nope"),
            NAT.Config(externalIP: "172.30.0.1", ports: 10...2000),
            NAT.Config(externalIP: "172.30.0.1", masquerade: [NAT.Masquerade(vpc: 100, destinations: ["1.2.3.0/40"])]),
            NAT.Config(externalIP: "172.30.0.1", forwards: [NAT.Forward(protocol: .tcp, port: 25000, vpc: 100, endpoint: "10.0.1.3", endpointPort: 80)]),
            NAT.Config(externalIP: "172.30.0.1", forwards: [NAT.Forward(protocol: .tcp, port: 80, vpc: 100, endpoint: "10.0.1.3", endpointPort: 0)]),
        ]
        for config in bad { #expect(throws: PluginError.self) { try harness.chains.configure("nat", config) } }
    }
}
