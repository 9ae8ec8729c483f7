import CMizarACL
import Foundation
import MizarACL
import MizarBPF
import MizarPluginSDK
import Testing

/// An ACL configuration is written beside the live one and switched to in one write
/// (issue 13, item 5): packets meet the old rules or the new, never parts of both.
@Suite("acl configuration generations (SDK harness)")
struct ACLGenerationTests {
    static let a = IPv4Address(10, 0, 1, 2), b = IPv4Address(10, 0, 2, 5)

    /// SSH from a is denied by a rule, everything else allowed by a's default.
    static let denySSH = ACL.Config(rules: [ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/24", protocol: .tcp, ports: 22...22, action: .deny)],
                                    endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2", defaultEgress: .allow, defaultIngress: .allow)])
    /// Only the web is allowed from a, by a rule; a's default denies the rest.
    static let onlyWeb = ACL.Config(rules: [ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/24", protocol: .tcp, ports: 80...80, action: .allow)],
                                    endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2", defaultEgress: .deny, defaultIngress: .deny)])

    func ssh(_ harness: PluginHarness, sourcePort: UInt16) throws -> HarnessVerdict {
        try harness.run(PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: sourcePort, destinationPort: 22), hook: .egress,
                        context: HarnessContext(vni: 100, endpointIP: Self.a)).verdict
    }

    /// Sends SSH from a, a new flow each time (conntrack never answers for it), while
    /// `write` runs on another thread. Returns how many were sent and how many passed.
    func sshWhile(_ harness: PluginHarness, _ write: @escaping @Sendable () throws -> Void) throws -> (sent: Int, passed: Int) {
        let (sent, passed) = try harness.whileChanging(write) { try ssh(harness, sourcePort: UInt16(1024 + $0 % 60000)) != .dropped }
        return (sent, passed)
    }

    /// Both configurations drop SSH from a; only `onlyWeb`'s rules beside `denySSH`'s
    /// default (a half-written switch) let it through, and so does a policy deleted under a
    /// packet still reading the old generation. Packets run on one thread while the other
    /// switches back and forth; written map by map in place, 150 switches let some through.
    @Test("packets meet the old rules or the new while configurations switch, never both")
    func noPacketMeetsHalfASwitch() throws {
        let harness = try PluginHarness(plugin: ACL.descriptor, hooks: [.egress], configuration: Self.denySSH)
        #expect(try ssh(harness, sourcePort: 1) == .dropped)
        let (sent, passed) = try sshWhile(harness) { for i in 0..<150 { try harness.chains.configure("acl", i % 2 == 0 ? Self.onlyWeb : Self.denySSH) } }
        #expect(sent > 150, "packets ran while configurations switched (\(sent) sent)")
        #expect(passed == 0, "\(passed) of \(sent) SSH packets met one configuration's rules beside the other's policy")
        let counters = try harness.counters("acl", at: .egress)
        #expect(counters.dropReasons[ACL.Reason.rule.rawValue].packets + counters.dropReasons[ACL.Reason.defaultPolicy.rawValue].packets >= UInt64(sent))
    }

    /// What an interrupted write left of the next generation (here: a rule letting SSH
    /// through) must go before the switch, also when the new configuration gives the rules
    /// no entry at all: packets run while a leftover is planted and a rule-less, default-deny
    /// configuration is written, 100 times; not one SSH packet may pass.
    @Test("an interrupted write's leftovers never go live, even under a configuration with no rules")
    func leftoversOfAnInterruptedWriteNeverGoLive() throws {
        let noRules = ACL.Config(rules: [], endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2", defaultEgress: .deny, defaultIngress: .deny)])
        let allowSSH = ACL.Config(rules: [ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/24", protocol: .tcp, ports: 22...22, action: .allow)],
                                  endpoints: noRules.endpoints)
        let harness = try PluginHarness(plugin: ACL.descriptor, hooks: [.egress], configuration: noRules)
        let rules = RawMap(try harness.chains.map(ACL_RULES_MAP, of: "acl")), config = RawMap(try harness.chains.map(ACL_CONFIG_MAP, of: "acl"))
        let (sent, passed) = try sshWhile(harness) {
            for _ in 0..<200 {
                let next = noRules.generation(named: try config.lookup(key: [0, 0, 0, 0]) ?? []) &+ 1
                for entry in try allowSSH.mapEntries(generation: next)[ACL_RULES_MAP] ?? [] { try rules.update(key: entry.key, value: entry.value) }
                try harness.chains.configure("acl", noRules)
            }
        }
        #expect(sent > 100 && passed == 0, "\(passed) of \(sent) SSH packets met a leftover rule")
        #expect(try rules.keys().isEmpty, "nothing left of either generation")
    }

    /// A packet judged under the old rules while the switch happens may remember its flow
    /// after the conntrack was flushed: such an entry names the old generation and is not
    /// trusted; the flow is judged by the rules in force. One of the live generation is.
    @Test("a flow remembered under the previous generation is judged again")
    func aFlowRememberedUnderTheOldRulesIsJudgedAgain() throws {
        let harness = try PluginHarness(plugin: ACL.descriptor, hooks: [.egress], configuration: Self.onlyWeb)
        let live = Self.onlyWeb.generation(named: try RawMap(harness.chains.map(ACL_CONFIG_MAP, of: "acl")).lookup(key: [0, 0, 0, 0]) ?? [])
        let conntrack = RawMap(try harness.chains.map(ACL_CONNTRACK_MAP, of: "acl"))
        func plant(sourcePort: UInt16, generation: UInt32) throws {
            var key = acl_flow_key()
            key.vni = 100
            key.saddr = Self.a.networkOrder
            key.daddr = Self.b.networkOrder
            key.sport = sourcePort.bigEndian
            key.dport = UInt16(22).bigEndian
            key.protocol = 6
            key.direction = UInt8(ACL_EGRESS.rawValue)
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC_COARSE, &now)  // the program's clock (bpf_ktime_get_coarse_ns)
            var flow = acl_flow()
            flow.seen_ns = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
            flow.generation = generation
            let entry = PluginMapEntry(key, flow)
            try conntrack.update(key: entry.key, value: entry.value)
        }
        try plant(sourcePort: 5000, generation: live ^ 1)
        #expect(try ssh(harness, sourcePort: 5000) == .dropped, "remembered under other rules: judged by these")
        try plant(sourcePort: 5002, generation: live &- 2)  // keys of the same side, two switches back: still not these rules
        #expect(try ssh(harness, sourcePort: 5002) == .dropped, "remembered two generations back: judged by these")
        try plant(sourcePort: 5001, generation: live)
        #expect(try ssh(harness, sourcePort: 5001) == .forwarded, "remembered under these rules: passes")
    }

    @Test("a switch the kernel refuses leaves the live generation alone and takes the new one away")
    func refusedSwitchChangesNothing() throws {
        let harness = try PluginHarness(plugin: ACL.descriptor, hooks: [.egress], configuration: Self.onlyWeb)
        let maps = [ACL_RULES_MAP, ACL_ENDPOINTS_MAP, ACL_CONFIG_MAP]
        func image() throws -> [Set<[UInt8]>] { try maps.map { Set(try RawMap(harness.chains.map($0, of: "acl")).entries().map { $0.key + $0.value }) } }
        let before = try image()
        #expect(try ssh(harness, sourcePort: 1) == .dropped)
        #expect { try harness.chains.configure("acl", RefusedSwitch(Self.denySSH)) } throws: {
            ($0 as? PluginError)?.code == .system && "\($0)".contains("previous configuration is back")
        }
        #expect(try image() == before, "the maps hold the live generation only")
        #expect(try ssh(harness, sourcePort: 2) == .dropped)
        let web = PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 3, destinationPort: 80)
        #expect(try harness.run(web, hook: .egress, context: HarnessContext(vni: 100, endpointIP: Self.a)).verdict == .forwarded, "the old rules still hold")

        // The next configuration switches over, and the old generation leaves the maps.
        try harness.chains.configure("acl", Self.denySSH)
        let rules = try RawMap(harness.chains.map(ACL_RULES_MAP, of: "acl")).keys()
        #expect(rules.count == 1 && Set(rules.map { Self.denySSH.generation(ofKey: $0, in: ACL_RULES_MAP) }).count == 1)
        #expect(try harness.run(web, hook: .egress, context: HarnessContext(vni: 100, endpointIP: Self.a)).verdict == .forwarded)
        #expect(try ssh(harness, sourcePort: 4) == .dropped)
    }
}
