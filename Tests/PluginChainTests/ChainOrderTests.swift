import CMizarABI
import MizarAPI
import MizarPluginSDK
import MizarTestSupport
import Testing

@Suite("Plugin chains: order, changes, counters (test-run through the harness)")
struct ChainOrderTests {
    func harness() throws -> PluginHarness {
        let harness = try PluginHarness(locator: TestPaths.locator)
        try TestPlugins.registerStamps(["a", "b", "c", "d"], on: harness.chains)
        return harness
    }

    @Test("frames cross the plugins in chain order, in every hook and flavour",
          arguments: [(PluginHook.egress, ProgramFlavor.xdp), (.egress, .tc), (.ingress, .xdp)])
    func order(hook: PluginHook, flavor: ProgramFlavor) throws {
        let harness = try harness()
        try harness.chains.setChain(hook, ["a", "b", "c"])
        var result = try harness.run(udpFrame, hook: hook, flavor: flavor)
        #expect(result.verdict == .forwarded)
        #expect(ipID(result.packet) == 0x0abc)

        try harness.chains.setChain(hook, ["c", "a"]) // reorder and remove
        result = try harness.run(udpFrame, hook: hook, flavor: flavor)
        #expect(ipID(result.packet) == 0x00ca)

        try harness.chains.insert("d", into: hook, at: 1)
        #expect(harness.chains.chain(hook) == ["c", "d", "a"])
        #expect(ipID(try harness.run(udpFrame, hook: hook, flavor: flavor).packet) == 0x0cda)

        try harness.chains.remove("c", from: hook)
        #expect(ipID(try harness.run(udpFrame, hook: hook, flavor: flavor).packet) == 0x00da)

        try harness.chains.setChain(hook, [])
        let bare = try harness.run(udpFrame, hook: hook, flavor: flavor)
        #expect(bare.verdict == .forwarded && bare.packet == udpFrame, "no chain: the core's inline path, frame untouched")
    }

    @Test("insert without a position follows priorities")
    func priorities() throws {
        let harness = try PluginHarness(locator: TestPaths.locator)
        for (name, priority) in [("a", 30), ("b", 10), ("c", 20)] {
            try harness.chains.register(TestPlugins.stamp(name, priority: priority))
            try harness.chains.insert(name, into: .egress)
        }
        #expect(harness.chains.chain(.egress) == ["b", "c", "a"])
    }

    @Test("a drop ends the chain: later plugins never see the frame; counters per (hook, plugin)")
    func dropAndPassEndTheChain() throws {
        let harness = try harness()
        try harness.chains.register(TestPlugins.stamp("dropper"))
        try harness.chains.configure("dropper", TestPlugins.Stamp(value: 0xf))
        try harness.chains.register(TestPlugins.stamp("passer"))
        try harness.chains.configure("passer", TestPlugins.Stamp(value: 0xe))

        try harness.chains.setChain(.egress, ["a", "dropper", "b"])
        #expect(try harness.run(udpFrame, hook: .egress).verdict == .dropped)
        #expect(try harness.run(udpFrame, hook: .egress, flavor: .tc).verdict == .dropped)
        #expect(try harness.counters("a", at: .egress)[.continue] == Counter(packets: 2, bytes: 2 * UInt64(udpFrame.count)))
        #expect(try harness.counters("dropper", at: .egress).dropReasons[3].packets == 2)
        #expect(try harness.counters("b", at: .egress).packets == 0)
        #expect(try harness.counters("a", at: .ingress).packets == 0, "counters are per hook")

        try harness.chains.setChain(.egress, ["passer", "b"])
        #expect(try harness.run(udpFrame, hook: .egress).verdict == .passed)
        #expect(try harness.counters("passer", at: .egress)[.pass].packets == 1)
        #expect(try harness.counters("b", at: .egress).packets == 0)
    }

    @Test("the API's list of verdicts is the chains' (mizarctl top sums a plugin's counts by it)")
    func verdictNamesAreTheAPIs() {
        #expect(PluginVerdict.allCases.map(\.description) == Counters.pluginVerdicts)
    }

    @Test("chains that cannot be built are refused and the live chain stays")
    func invalidChains() throws {
        let harness = try harness()
        try harness.chains.setChain(.egress, ["a", "b"])
        try harness.chains.register(TestPlugins.stamp("eonly", hooks: [.egress]))
        let refused: [[String]] = [["a", "nosuch"], ["a", "a"], Array(repeating: "x", count: 17)]
        for names in refused {
            #expect(throws: PluginError.self) { try harness.chains.setChain(.egress, names) }
        }
        #expect(throws: PluginError.self) { try harness.chains.setChain(.ingress, ["eonly"]) }
        #expect(throws: PluginError.self) { try harness.chains.unregister("a") }
        #expect(harness.chains.chain(.egress) == ["a", "b"])
        #expect(ipID(try harness.run(udpFrame, hook: .egress).packet) == 0x00ab)
    }

    @Test("an upgrade rebuilds the chains that hold the plugin and keeps its configuration")
    func upgradeKeepsMaps() throws {
        let harness = try harness()
        try harness.chains.setChain(.egress, ["a", "b"])
        try harness.chains.setChain(.ingress, ["b"])
        try harness.chains.upgrade(TestPlugins.stamp("b", version: "2.0.0"))
        #expect(harness.chains.descriptors.first { $0.name == "b" }?.version == "2.0.0")
        #expect(ipID(try harness.run(udpFrame, hook: .egress).packet) == 0x00ab)
        #expect(ipID(try harness.run(udpFrame, hook: .ingress).packet) == 0x000b)
        // An upgrade to a version without a hook the plugin is used at is refused.
        #expect(throws: PluginError.self) { try harness.chains.upgrade(TestPlugins.stamp("b", version: "3.0.0", hooks: [.egress])) }
        #expect(harness.chains.descriptors.first { $0.name == "b" }?.version == "2.0.0")
    }

    @Test("the harness measures a chain per frame")
    func timing() throws {
        let harness = try harness()
        try harness.chains.setChain(.egress, ["a", "b"])
        let result = try harness.run(udpFrame, hook: .egress, repeat: 1000)
        #expect(result.nanoseconds > 0 && result.nanoseconds < 100_000)
    }
}
