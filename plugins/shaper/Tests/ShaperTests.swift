import CMizarShaper
import Foundation
import MizarBPF
import MizarDataplane
import MizarPluginSDK
import MizarShaper
import MizarTopology
import Testing

@Suite("shaper plugin: token buckets in the harness and under iperf3", .serialized)
struct ShaperTests {
    static let a = IPv4Address(10, 0, 1, 2), b = IPv4Address(10, 0, 1, 3)

    @Test("a bucket lets its burst through, drops the rest as rate-limited, and refills with time", arguments: ProgramFlavor.allCases)
    func bucket(flavor: ProgramFlavor) throws {
        let harness = try PluginHarness(plugin: Shaper.descriptor, hook: .egress)
        try harness.chains.configure("shaper", Shaper.Config(limits: [Shaper.Limit(vpc: 100, endpoint: Self.a.description, bitsPerSecond: 8 * 100_000, burstBytes: 65536)]))
        let frame = PacketBuilder.udpFrame(src: Self.a, dst: Self.b, sourcePort: 1, destinationPort: 2, payload: Array(repeating: 0, count: 1358)) // 1400 bytes
        let context = HarnessContext(vni: 100, endpointIP: Self.a)
        var passed = 0
        while try harness.run(frame, hook: .egress, flavor: flavor, context: context).verdict == .forwarded { passed += 1 }
        #expect((46...47).contains(passed), "65536 B of burst is 46 frames of 1400 B (plus what trickled in): \(passed)")
        #expect(try harness.counters("shaper", at: .egress).dropReasons[Shaper.Reason.rateLimited.rawValue].packets == 1)
        usleep(100_000) // 100 ms at 100 kB/s: 10 kB of tokens, 7 frames
        var refilled = 0
        while try harness.run(frame, hook: .egress, flavor: flavor, context: context).verdict == .forwarded { refilled += 1 }
        #expect((6...9).contains(refilled), "\(refilled) frames after 100 ms")
        // Another endpoint is not limited.
        let other = HarnessContext(vni: 100, endpointIP: Self.b)
        #expect(try harness.run(frame, hook: .egress, flavor: flavor, context: other).verdict == .forwarded)
    }

    @Test("limits switch at once; a switch the kernel refuses leaves the live ones")
    func generations() throws {
        let harness = try PluginHarness(plugin: Shaper.descriptor, hook: .egress)
        func slow(_ ip: IPv4Address) -> Shaper.Config { Shaper.Config(limits: [Shaper.Limit(vpc: 100, endpoint: ip.description, bitsPerSecond: 8_000, burstBytes: 65536)]) }
        /// Frames of 1400 B that pass from `ip` before the first drop (at most 60).
        func passing(_ ip: IPv4Address) throws -> Int {
            let frame = PacketBuilder.udpFrame(src: ip, dst: IPv4Address(10, 0, 1, 9), sourcePort: 1, destinationPort: 2, payload: Array(repeating: 0, count: 1358))
            var passed = 0
            while passed < 60, try harness.run(frame, hook: .egress, context: HarnessContext(vni: 100, endpointIP: ip)).verdict == .forwarded { passed += 1 }
            return passed
        }
        try harness.chains.configure("shaper", slow(Self.a))
        #expect(try (46...47).contains(passing(Self.a)) && passing(Self.b) == 60)
        #expect { try harness.chains.configure("shaper", RefusedSwitch(slow(Self.b))) } throws: { "\($0)".contains("previous configuration is back") }
        #expect(try passing(Self.a) == 0 && passing(Self.b) == 60, "a's bucket is still the live, empty one; b is not limited")
        try harness.chains.configure("shaper", slow(Self.b))
        #expect(try passing(Self.a) == 60 && (46...47).contains(passing(Self.b)))
        let buckets = try RawMap(harness.chains.map(SHAPER_BUCKETS_MAP, of: "shaper")).keys()
        #expect(buckets.count == 1, "the old generation's bucket is gone")
    }

    @Test("bad limits are refused")
    func validation() throws {
        let harness = try PluginHarness(plugin: Shaper.descriptor, hook: .egress)
        for limit in [Shaper.Limit(vpc: 100, endpoint: "10.0.1.2", bitsPerSecond: 0),
                      Shaper.Limit(vpc: 100, endpoint: "10.0.1.2", bitsPerSecond: 1_000_000, burstBytes: 1500),
                      Shaper.Limit(vpc: 100, endpoint: "ten", bitsPerSecond: 1_000_000)] {
            #expect(throws: PluginError.self) { try harness.chains.configure("shaper", Shaper.Config(limits: [limit])) }
        }
    }

    @Test("iperf3 from a shaped endpoint stays within 10% of the configured rate", arguments: [AgentHook.tc, .xdp])
    func iperfHoldsTheRate(agentHook: AgentHook) throws {
        let lab = try OverlayLab.design(agentHook: agentHook, vpc2: false)
        defer { lab.teardown() }
        let plugins = lab.host("hosta").dataplane.plugins
        let rate: UInt64 = 40_000_000
        try plugins.register(Shaper.descriptor)
        try plugins.configure("shaper", Shaper.Config(limits: [Shaper.Limit(vpc: 100, endpoint: lab.guest("a1").ip.description, bitsPerSecond: rate)]))
        try plugins.setChain(.egress, ["shaper"])
        // UDP offered at twice the rate: what arrives is what the bucket let through.
        let udp = try lab.iperf(from: "a1", to: "b1", seconds: 3, extra: ["-u", "-b", "80M", "-l", "1400"])
        let sum = (udp["sum"] as? [String: Any]) ?? [:]
        let packets = (sum["packets"] as? Int) ?? 0, lost = (sum["lost_packets"] as? Int) ?? 0, seconds = (sum["seconds"] as? Double) ?? 3
        let frameBits = Double((packets - lost) * (1400 + 8 + 20 + 14) * 8) / seconds
        #expect(abs(frameBits / Double(rate) - 1) <= 0.10, "received \(frameBits / 1e6) Mbit/s of frames, configured \(Double(rate) / 1e6)")
        #expect(try plugins.counters("shaper", at: .egress).dropReasons[Shaper.Reason.rateLimited.rawValue].packets > 0)
    }
}
