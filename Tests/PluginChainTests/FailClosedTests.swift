import CMizarABI
import Foundation
import MizarDataplane
import MizarPluginSDK
import MizarTestSupport
import MizarTopology
import Testing

/// A chain marked active that cannot be entered — its roots emptied, as the kernel empties a
/// program array when the last process holding it exits unpinned — drops and counts
/// `chain_unavailable`; the core never routes around it (issue 13, item 3).
@Suite("Fail closed: a chain that cannot be entered drops, never forwards", .serialized)
struct FailClosedTests {
    /// Empties every root of `hook` and leaves `mz_chain_active` set, as an owner's exit does.
    private func loseRoots(_ chains: PluginChains, _ hook: PluginHook) throws {
        for point in chains.host.points where point.hook == hook { _ = try point.root.clear(0) }
        #expect(try chains.host.active.lookup(hook.cValue) == 1)
    }

    @Test(arguments: [AgentHook.tc, .xdp])
    func egressChainThatCannotBeEnteredDrops(agentHook: AgentHook) throws {
        let lab = try OverlayLab.design(agentHook: agentHook, vpc2: false, locator: TestPaths.locator)
        defer { lab.teardown() }
        let hosta = lab.host("hosta"), b1 = lab.guest("b1")
        let egress = hosta.dataplane.plugins
        try TestPlugins.registerStamps(["f"], on: egress)  // stamp f drops everything: the denied flow
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 2, interval: 0.1) == 2)
        try egress.setChain(.egress, ["f"])
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 2, interval: 0.1) == 0, "the chain denies the flow")

        try loseRoots(egress, .egress)
        let before = try hosta.dataplane.agentCounters()
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 3, interval: 0.1) == 0, "the flow stays denied without its chain")
        let delta = try hosta.dataplane.agentCounters().delta(since: before)
        #expect(delta[.chainUnavailable].packets >= 3, "\(delta)")
        #expect(delta[.toBouncer].packets + delta[.direct].packets == 0, "nothing was routed around the chain: \(delta)")
    }

    @Test func ingressChainThatCannotBeEnteredDrops() throws {
        let lab = try OverlayLab.design(vpc2: false, locator: TestPaths.locator)
        defer { lab.teardown() }
        let hostb = lab.host("hostb"), b1 = lab.guest("b1")
        let ingress = hostb.dataplane.plugins
        try TestPlugins.registerStamps(["f"], on: ingress)
        try ingress.setChain(.ingress, ["f"])
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 2, interval: 0.1) == 0, "the chain denies the flow")

        try loseRoots(ingress, .ingress)
        let before = try hostb.dataplane.transitCounters(), received = try icmpEchoesReceived(in: lab.guest("b1").netns)
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 3, interval: 0.1) == 0, "the flow stays denied without its chain")
        let delta = try hostb.dataplane.transitCounters().delta(since: before)
        #expect(delta[.chainUnavailable].packets >= 3, "\(delta)")
        #expect(delta[.delivered].packets == 0, "\(delta)")
        #expect(try icmpEchoesReceived(in: lab.guest("b1").netns) == received, "nothing reached the endpoint around the chain")
    }
}
