import CMizarNAT
import MizarBPF
import MizarNAT
import MizarPluginSDK
import Testing

/// A nat configuration is written beside the live one and switched to in one write (issue
/// 13, item 5): a packet meets the old settings and forwards or the new, never a forward of
/// one beside the external address of the other.
@Suite("nat configuration generations (SDK harness)")
struct NATGenerationTests {
    static let x = IPv4Address(172, 30, 0, 1), y = IPv4Address(172, 30, 0, 2)
    static let e1 = IPv4Address(10, 0, 1, 3), e2 = IPv4Address(10, 0, 1, 4)

    /// The droplet is x and forwards 2222 to e1, or it is y and forwards 2222 to e2.
    static func config(_ external: IPv4Address, _ endpoint: IPv4Address) -> NAT.Config {
        NAT.Config(externalIP: external.description, forwards: [NAT.Forward(protocol: .tcp, port: 2222, vpc: 100, endpoint: endpoint.description, endpointPort: 22)])
    }

    static let onX = config(x, e1), onY = config(y, e2)

    /// Where a new connection from outside to `droplet`:2222 is delivered (nil: not forwarded).
    func forward(_ harness: PluginHarness, to droplet: IPv4Address, from n: Int) throws -> IPv4Address? {
        // A new remote each time: no translation made earlier answers for it.
        let remote = IPv4Address(198, 51, UInt8(100 + n / 60000 % 50), UInt8(1 + n % 250))
        let frame = PacketBuilder.tcpFrame(src: remote, dst: droplet, sourcePort: UInt16(1024 + n / 250 % 60000), destinationPort: 2222)
        let result = try harness.run(frame, hook: .ingress, context: HarnessContext(vni: 0, external: true))
        guard result.verdict == .forwarded, result.context?.vni == 100 else { return nil }
        return IPv4Frame(result.packet)?.destination
    }

    /// Written in place (forwards, then settings), a packet between the two finds the new
    /// forward under the old external address: x's port sent to y's endpoint.
    @Test("packets meet the old forwards and address or the new while configurations switch, never one beside the other")
    func noPacketMeetsHalfASwitch() throws {
        let harness = try PluginHarness(plugin: NAT.descriptor, hooks: [.ingress], configuration: Self.onX)
        #expect(try forward(harness, to: Self.x, from: 0) == Self.e1)
        #expect(try forward(harness, to: Self.y, from: 1) == nil)
        let (sent, mixed) = try harness.whileChanging({ for i in 0..<100 { try harness.chains.configure("nat", i % 2 == 0 ? Self.onY : Self.onX) } }) { n in
            let droplet = n % 2 == 0 ? Self.x : Self.y
            let to = try forward(harness, to: droplet, from: n + 2)
            return (droplet == Self.x && to == Self.e2) || (droplet == Self.y && to == Self.e1)
        }
        #expect(sent > 100, "packets ran while configurations switched (\(sent) sent)")
        #expect(mixed == 0, "\(mixed) of \(sent) connections met one configuration's forward beside the other's address")
        // The last write was onX: its forward alone is left, and its settings are live.
        let forwards = try RawMap(harness.chains.map(NAT_FORWARDS_MAP, of: "nat")).keys()
        #expect(forwards.count == 1, "the old generation's forwards are gone: \(forwards.count) left")
        #expect(try forward(harness, to: Self.x, from: 10_000_000) == Self.e1)
        #expect(try forward(harness, to: Self.y, from: 10_000_001) == nil)
    }

    @Test("translations outlive a switch: a masqueraded flow's reply still finds its endpoint")
    func translationsSurviveASwitch() throws {
        let outside = IPv4Address(8, 8, 8, 8), a = IPv4Address(10, 0, 1, 2)
        func masquerading(_ except: String) -> NAT.Config {
            NAT.Config(externalIP: Self.x.description, masquerade: [NAT.Masquerade(vpc: 100, except: [except])])
        }
        let harness = try PluginHarness(plugin: NAT.descriptor, hooks: [.egress, .ingress], configuration: masquerading("10.0.0.0/16"))
        let out = try harness.run(PacketBuilder.udpFrame(src: a, dst: outside, sourcePort: 40000, destinationPort: 53), hook: .egress,
                                  context: HarnessContext(vni: 100, endpointIP: a))
        let port = try #require(IPv4Frame(out.packet)?.sourcePort)
        let next = masquerading("10.1.0.0/16")
        try harness.chains.configure("nat", next)
        let reply = try harness.run(PacketBuilder.udpFrame(src: outside, dst: Self.x, sourcePort: 53, destinationPort: port), hook: .ingress,
                                    context: HarnessContext(vni: 0, external: true))
        #expect(reply.context?.vni == 100 && IPv4Frame(reply.packet)?.destination == a)
        let prefixes = try RawMap(harness.chains.map(NAT_EXTERNAL_MAP, of: "nat")).keys()
        #expect(prefixes.count == 2 && Set(prefixes.map { next.generation(ofKey: $0, in: NAT_EXTERNAL_MAP) }).count == 1,
                "the new generation's prefixes alone (everything but 10.1.0.0/16): \(prefixes.count)")
    }

    @Test("a switch the kernel refuses leaves the live settings and forwards alone")
    func refusedSwitchChangesNothing() throws {
        let harness = try PluginHarness(plugin: NAT.descriptor, hooks: [.ingress], configuration: Self.onX)
        #expect { try harness.chains.configure("nat", RefusedSwitch(Self.onY)) } throws: {
            ($0 as? PluginError)?.code == .system && "\($0)".contains("previous configuration is back")
        }
        #expect(try forward(harness, to: Self.x, from: 0) == Self.e1)
        #expect(try forward(harness, to: Self.y, from: 1) == nil)
        #expect(try RawMap(harness.chains.map(NAT_FORWARDS_MAP, of: "nat")).keys().count == 1, "the refused generation's forward is gone")
    }

    /// Taking the configuration away switches to an empty generation (nothing translated),
    /// and generations keep counting: the next configuration is the one after it.
    @Test("a configuration taken away switches to an empty generation; the next one counts on")
    func clearedThenConfiguredAgain() throws {
        let harness = try PluginHarness(plugin: NAT.descriptor, hooks: [.ingress], configuration: Self.onX)
        let live = RawMap(try harness.chains.map(NAT_GENERATION_MAP, of: "nat"))
        func generation() throws -> UInt32 { Self.onX.generation(named: try live.lookup(key: [0, 0, 0, 0]) ?? []) }
        let before = try generation()
        try harness.chains.clearConfiguration("nat", Self.onX)
        #expect(try generation() == before + 1)
        #expect(try forward(harness, to: Self.x, from: 2) == nil, "nothing is forwarded")
        #expect(try RawMap(harness.chains.map(NAT_FORWARDS_MAP, of: "nat")).keys().isEmpty)
        try harness.chains.configure("nat", Self.onY)
        #expect(try generation() == before + 2)
        #expect(try forward(harness, to: Self.y, from: 3) == Self.e2)
    }
}
