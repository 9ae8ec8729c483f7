import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarPacket
import MizarTestSupport
import Testing

/// Tracing (docs/observability.md): the core programs say which frame they dropped and why,
/// through the trace ring, only while tracing is on and only for frames the filter matches.
@Suite("Trace: drops named by program and reason, through the ring", .serialized)
struct TraceTests {
    let spoofed = Wire.icmp(from: IPv4Address(10, 0, 1, 99), Wire.aMAC, to: Wire.b)
    let good = Wire.icmp(from: Wire.a, Wire.aMAC, to: Wire.b)

    /// Every event the ring holds now.
    func drain(_ reader: TraceReader) throws -> [TraceEvent] {
        var all: [TraceEvent] = []
        while true {
            let some = try reader.next(timeoutMilliseconds: 0)
            if some.isEmpty { return all }
            all += some
        }
    }

    @Test("off: nothing; on: the agent's drops with their reason, the frame's addresses and the endpoint; drops only unless asked")
    func agentDrops() throws {
        let bed = try TableBed()
        defer { bed.teardown() }
        let reader = try bed.droplet.traceReader()
        #expect(try !bed.droplet.isTracing())
        _ = try bed.agentRun(spoofed)
        _ = try bed.agentRunTC(spoofed)
        #expect(try drain(reader).isEmpty, "tracing is off")

        try bed.droplet.setTracing(TraceFilter())
        _ = try bed.agentRun(spoofed)
        _ = try bed.agentRunTC(spoofed)
        _ = try bed.agentRun(good)
        let events = try drain(reader)
        #expect(events.count == 2, "the two drops, not the forwarded frame: \(events)")
        for event in events {
            #expect(event.source == .agent && event.verdict == "drop" && event.reason == "spoofed-ip" && event.proto == 1)
            #expect(event.source4 == IPv4Address(10, 0, 1, 99) && event.destination4 == Wire.b && event.ifindex == UInt32(bed.ifindexA))
            #expect(abs(event.time.timeIntervalSinceNow) < 60, "wall time: \(event.time)")
        }

        // Every decision: the forwarded frame too, under the slot its counters moved.
        try bed.droplet.setTracing(TraceFilter(dropsOnly: false))
        let before = try bed.droplet.agentCounters()
        _ = try bed.agentRun(good)
        let moved = try bed.droplet.agentCounters().delta(since: before)
        let slot = try #require(AgentStat.allCases.first { !$0.isEvent && moved[$0].packets == 1 })
        let forwarded = try drain(reader)
        #expect(forwarded.count == 1 && forwarded.first?.verdict != "drop", "\(forwarded)")
        #expect(forwarded.first?.reason == slot.description.replacingOccurrences(of: "_", with: "-"))

        // An endpoint's own UDP to 6081 whose payload claims to be Geneve is described as what it is.
        try bed.droplet.setTracing(TraceFilter(ip: Wire.a, dropsOnly: false))
        let fake = PacketBuilder.geneve(vni: 1911, options: [], payload: Wire.icmp(from: IPv4Address(10, 99, 0, 9), Wire.qMAC, to: IPv4Address(10, 99, 0, 10)))
        let disguised = PacketBuilder.ethernet(src: Wire.aMAC, dst: bed.gatewayA, etherType: PacketBuilder.etherTypeIPv4,
                                               payload: PacketBuilder.ipv4(src: Wire.a, dst: Wire.b, protocol: PacketBuilder.protocolUDP,
                                                                           payload: PacketBuilder.udp(src: Wire.a, dst: Wire.b, sourcePort: 4444, destinationPort: 6081, payload: fake)))
        _ = try bed.agentRun(disguised)
        let seen = try drain(reader)
        #expect(seen.count == 1 && seen.first?.source4 == Wire.a && seen.first?.destination4 == Wire.b && seen.first?.destinationPort == 6081
                && seen.first?.vni == 100, "\(seen)")

        try bed.droplet.setTracing(nil)
        _ = try bed.agentRun(spoofed)
        #expect(try drain(reader).isEmpty, "off again")
    }

    @Test("transit XDP: a stranger's Geneve and a bouncer's unknown endpoint, with the inner frame and VNI; the filter by VNI, address and sample")
    func transitDropsAndFilter() throws {
        let bed = try TableBed()
        defer { bed.teardown() }
        let reader = try bed.droplet.traceReader()
        let stranger = Wire.geneve(from: Wire.stranger)
        let unknown = Wire.geneve(inner: Wire.icmp(from: Wire.q, Wire.qMAC, to: IPv4Address(10, 0, 1, 77)))

        try bed.droplet.setTracing(TraceFilter())
        _ = try bed.droplet.transitProgram.testRun(packet: stranger)
        _ = try bed.droplet.transitProgram.testRun(packet: unknown)
        let events = try drain(reader)
        #expect(events.map(\.reason) == ["geneve-from-unknown-source", "unknown-endpoint"], "\(events)")
        #expect(events.allSatisfy { $0.source == .transit && $0.vni == 100 && $0.source4 == Wire.q && $0.proto == 1 })
        #expect(events.last?.destination4 == IPv4Address(10, 0, 1, 77))

        try bed.droplet.setTracing(TraceFilter(vni: 200))
        _ = try bed.droplet.transitProgram.testRun(packet: unknown)
        try bed.droplet.setTracing(TraceFilter(ip: IPv4Address(10, 9, 9, 9)))
        _ = try bed.droplet.transitProgram.testRun(packet: unknown)
        #expect(try drain(reader).isEmpty, "another VNI, another address: not traced")
        try bed.droplet.setTracing(TraceFilter(ip: IPv4Address(10, 0, 1, 77)))
        _ = try bed.droplet.transitProgram.testRun(packet: unknown)
        #expect(try drain(reader).count == 1, "the destination matches")

        try bed.droplet.setTracing(TraceFilter(sample: 4))
        _ = try bed.droplet.transitProgram.testRun(packet: unknown, repeat: 2000)
        let sampled = try drain(reader).count
        #expect((300...700).contains(sampled), "one in four of 2000: \(sampled)")
    }

    @Test("a full ring: what does not fit is counted as lost, never hidden; every frame is accounted for")
    func lostEvents() throws {
        let bed = try TableBed()
        defer { bed.teardown() }
        let reader = try bed.droplet.traceReader()
        try bed.droplet.setTracing(TraceFilter())
        let lost0 = try bed.droplet.traceLost()
        let frames: UInt32 = 40000  // the 1 MiB ring holds about 21,800 events of 40 bytes (+ 8 of header)
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve(from: Wire.stranger), repeat: frames)
        let read = try drain(reader).count
        let lost = try bed.droplet.traceLost() - lost0
        #expect(lost > 0 && read > 0, "read \(read), lost \(lost)")
        #expect(UInt64(read) + lost == UInt64(frames), "read \(read) + lost \(lost)")
    }
}
