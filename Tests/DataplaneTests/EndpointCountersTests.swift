import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport
import Testing

/// Per-endpoint counters (docs/observability.md): each local endpoint's sent, received and
/// dropped frames, its drops by reason, counted exactly by the agent and transit XDP.
@Suite("Per-endpoint counters: sent, received, dropped by reason", .serialized)
struct EndpointCountersTests {
    @Test func everyFrameLandsOnItsEndpoint() throws {
        let bed = try TableBed()
        defer { bed.teardown() }
        let a = EndpointID(vni: 100, ip: Wire.a), c = EndpointID(vni: 100, ip: Wire.c)
        let before = try bed.droplet.endpointCounters()
        #expect(before[a] == EndpointCounters() && before[c] == EndpointCounters(), "a fresh slot starts at zero")

        let toRemote = Wire.icmp(from: Wire.a, Wire.aMAC, to: Wire.b, dstMAC: bed.gatewayA)
        let toLocal = Wire.icmp(from: Wire.a, Wire.aMAC, to: Wire.c, dstMAC: bed.gatewayA)
        let spoofed = Wire.icmp(from: IPv4Address(10, 0, 1, 99), Wire.aMAC, to: Wire.b, dstMAC: bed.gatewayA)
        #expect(try bed.agentRun(toRemote).action == .redirect)
        #expect(try bed.agentRunTC(toRemote).tcAction == .redirect)
        #expect(try bed.agentRun(toLocal).action == .redirect)
        #expect(try bed.agentRun(spoofed).action == .drop)
        #expect(try bed.agentRunTC(spoofed).tcAction == .shot)
        #expect(try bed.droplet.transitProgram.testRun(packet: Wire.geneve()).action == .redirect, "delivered to A")

        let counted = try bed.droplet.endpointCounters()
        let ofA = try #require(counted[a]).delta(since: before[a]!), ofC = try #require(counted[c]).delta(since: before[c]!)
        #expect(ofA.sent == Counter(packets: 3, bytes: UInt64(2 * toRemote.count + toLocal.count)), "\(ofA)")
        #expect(ofA.dropped == Counter(packets: 2, bytes: UInt64(2 * spoofed.count)) && ofA.drops == [.spoofedIP: 2], "\(ofA)")
        #expect(ofA.received.packets == 1, "the Geneve frame's inner frame")
        #expect(ofC.received == Counter(packets: 1, bytes: UInt64(toLocal.count)) && ofC.sent.packets == 0 && ofC.dropped.packets == 0, "\(ofC)")
    }
}

/// Counter slots across a restart (pinned tables): every endpoint keeps its own counts,
/// whatever order they are plugged in again and even on a veth made anew.
@Suite("Per-endpoint counters across a restart", .serialized)
struct EndpointCountersRestartTests {
    @Test func eachEndpointKeepsItsCounts() throws {
        let sandbox = try PinnedNetns()
        defer { sandbox.remove() }
        let (prefix, netns, pins) = (sandbox.prefix, sandbox.netns, sandbox.pins)
        try netns.perform {  // no router solicitations from the veths: only the frames sent here
            for conf in ["all", "default"] { try "1".write(toFile: "/proc/sys/net/ipv6/conf/\(conf)/disable_ipv6", atomically: false, encoding: .utf8) }
        }
        let socket = try RouteSocket(in: netns)
        let names = ["a", "b", "c"], ips = [Wire.a, Wire.b, Wire.q], macs = [Wire.aMAC, Wire.bMAC, Wire.qMAC]
        func veth(_ i: Int) throws {
            _ = try socket.createVethPair(name: prefix + names[i] + "h", peerName: prefix + names[i] + "p")
            try socket.setMAC(of: prefix + names[i] + "p", to: macs[i])
            for side in ["h", "p"] { try socket.setUp(prefix + names[i] + side) }
        }
        for i in names.indices { try veth(i) }
        try socket.setUp("lo")
        func droplet() throws -> Droplet {
            let d = try Droplet(address: Wire.d, interface: "lo", ifindex: 1, mtu: 1500, netns: netns, locator: TestPaths.locator, pins: pins)
            try d.setVPC(VPC(vni: 100, dividers: [Wire.d]))
            try d.setNetwork(Network(vni: 100, cidr: IPv4Interface("10.0.1.0/24")!, bouncers: [Wire.d]))
            return d
        }
        func plug(_ d: Droplet, _ i: Int) throws {
            try d.plug(LocalEndpoint(vni: 100, ip: ips[i], mac: macs[i], hostInterface: prefix + names[i] + "h",
                                     peer: EndpointPeer(netns: netns, interface: prefix + names[i] + "p")), mode: .native)
        }
        // Endpoint i sends i+1 frames the agent drops (spoofed): its own count.
        func send(_ d: Droplet, _ i: Int) throws {
            let index = try socket.link(named: prefix + names[i] + "h").index
            let frame = Wire.icmp(from: IPv4Address(10, 0, 1, 99), macs[i], to: Wire.a)
            for _ in 0...i { _ = try netns.perform { try d.agentProgram.testRun(packet: frame, ingressIfindex: UInt32(index)) } }
        }
        func drops(_ d: Droplet) throws -> [UInt64] {
            let counted = try d.endpointCounters()
            return ips.map { counted[EndpointID(vni: 100, ip: $0)]?.drops[.spoofedIP] ?? 0 }
        }

        var first: Droplet? = try droplet()
        for i in names.indices { try plug(first!, i) }
        for i in names.indices { try send(first!, i) }
        #expect(try drops(first!) == [1, 2, 3])
        first = nil  // the process goes; its tables stay pinned

        // c's veth is made anew (another ifindex); the endpoints come back in another order.
        _ = try socket.deleteLink(named: prefix + "ch")
        try veth(2)
        let second = try droplet()
        for i in [2, 1, 0] { try plug(second, i) }
        let after = try drops(second)
        #expect(after == [1, 2, 3], "the counts go on, each on its own endpoint: \(after)")
        for i in names.indices { try send(second, i) }
        #expect(try drops(second) == [2, 4, 6])
    }
}
