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
