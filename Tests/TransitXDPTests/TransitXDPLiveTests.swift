import CMizarABI
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTestSupport
import Testing

@Suite("Transit XDP attached natively to a real veth", .serialized)
struct TransitXDPLiveTests {
    @Test func realPingAndLiveFramesMoveTheCounters() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        let transit = try TransitXDP(locator: TestPaths.locator)
        let link = try bed.nsB.perform { try XDP.attach(transit.program, ifindex: bed.indexB, mode: .native) }
        defer { _ = link }
        #expect(try bed.nsB.perform { try XDP.query(ifindex: bed.indexB) }.mode == .native)

        // The host keeps working through XDP_PASS: real pings cross.
        let before = try transit.counters()
        #expect(try bed.ping(count: 3) == 3)
        let afterPing = try transit.counters()
        #expect(afterPing.delta(since: before)[.nonUDP].packets >= 3)

        // Live frames: a generator in A redirects Geneve frames out of A's veth into B.
        let macB = try #require(try RouteSocket(in: bed.nsB).link(named: bed.nameB).mac)
        let macA = try #require(try RouteSocket(in: bed.nsA).link(named: bed.nameA).mac)
        let frame = PacketBuilder.geneveFrame(outerSrcMAC: macA, outerDstMAC: macB, outerSrc: bed.addressA, outerDst: bed.addressB, vni: 100,
                                              options: [.returnToSender(dropletIP: bed.addressA, dropletMAC: macA)], inner: Wire.inner)
        let generator = try TestPaths.locator.open(MZ_PROBE_OBJECT)
        try generator.setGlobal(MZ_PROBE_IFINDEX_VAR, to: UInt32(bed.indexA))
        try generator.load()
        let redirect = try generator.program(named: MZ_PROBE_REDIRECT_PROG)
        try bed.nsA.perform { try redirect.runLiveFrames(frame: frame, count: 2000, ingressIfindex: UInt32(bed.indexA)) }
        let delta = try transit.counters().delta(since: afterPing)
        #expect(delta[.geneve].packets == 2000)
        #expect(delta[.optionRTS].packets == 2000)
        #expect(delta[.geneve].bytes == 2000 * UInt64(frame.count))
    }
}
