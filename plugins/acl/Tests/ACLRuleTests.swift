import CMizarACL
import MizarACL
import MizarBPF
import MizarPluginSDK
import Testing

/// The acl plugin through the SDK harness: verdicts, reasons, conntrack, validation.
@Suite("acl plugin (SDK harness)")
struct ACLRuleTests {
    static let a = IPv4Address(10, 0, 1, 2), b = IPv4Address(10, 0, 2, 5), c = IPv4Address(10, 0, 2, 6)

    func harness(_ config: ACL.Config) throws -> PluginHarness {
        try PluginHarness(plugin: ACL.descriptor, hooks: [.egress, .ingress], configuration: config)
    }

    /// Endpoint `a` in VPC 100, nothing allowed unless a rule says so.
    func lockedDown(_ rules: [ACL.Rule]) -> ACL.Config {
        ACL.Config(rules: rules, endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2", defaultEgress: .deny, defaultIngress: .deny)])
    }

    func egress(_ harness: PluginHarness, _ frame: [UInt8], flavor: ProgramFlavor = .xdp) throws -> HarnessVerdict {
        try harness.run(frame, hook: .egress, flavor: flavor, context: HarnessContext(vni: 100, endpointIP: Self.a)).verdict
    }

    func ingress(_ harness: PluginHarness, _ frame: [UInt8]) throws -> HarnessVerdict {
        try harness.run(frame, hook: .ingress, context: HarnessContext(vni: 100, endpointIP: Self.a)).verdict
    }

    @Test("protocol and port ranges select; the default policy takes the rest", arguments: ProgramFlavor.allCases)
    func protocolsAndPorts(flavor: ProgramFlavor) throws {
        let harness = try harness(lockedDown([
            ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/24", protocol: .tcp, ports: 80...88, action: .allow),
        ]))
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 80), flavor: flavor) == .forwarded)
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 88), flavor: flavor) == .forwarded)
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 89), flavor: flavor) == .dropped)
        #expect(try egress(harness, PacketBuilder.udpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 80), flavor: flavor) == .dropped)
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: IPv4Address(10, 0, 3, 1), sourcePort: 40000, destinationPort: 80), flavor: flavor) == .dropped)
        let counters = try harness.counters("acl", at: .egress)
        #expect(counters[.continue].packets == 2 && counters.dropReasons[ACL.Reason.defaultPolicy.rawValue].packets == 3)
    }

    /// A write the kernel refuses midway (after the rules and policies were written) puts the
    /// previous configuration back whole: the old rules still hold (issue 13, item 5).
    @Test("a configuration that fails midway leaves the previous one in place")
    func failedConfigurationChangesNothing() throws {
        let harness = try harness(lockedDown([ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/24", protocol: .tcp, ports: 80...80, action: .allow)]))
        let web = PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 80)
        let ssh = PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 22)
        #expect(try egress(harness, web) == .forwarded && egress(harness, ssh) == .dropped)
        let snapshot = try [ACL_RULES_MAP, ACL_ENDPOINTS_MAP, ACL_CONNTRACK_MAP, ACL_CONFIG_MAP].map { try RawMap(harness.chains.map($0, of: "acl")).entries().map { $0.key + $0.value } }

        // Everything allowed for a, and a config entry refused once rules and policies are
        // written (the config array has slot 0 only; one entry passes the count check).
        var open = try ACL.Config(rules: [ACL.Rule(vpc: 100, direction: .egress, destination: "0.0.0.0/0", action: .allow)],
                                  endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2", defaultEgress: .allow, defaultIngress: .allow)]).mapEntries()
        let config = try #require(open[ACL_CONFIG_MAP]?.first)
        open[ACL_CONFIG_MAP] = [PluginMapEntry(key: [5, 0, 0, 0], value: config.value)]
        #expect { try harness.chains.configure("acl", RawPluginConfiguration(open)) } throws: {
            ($0 as? PluginError)?.code == .system && "\($0)".contains("previous configuration is back")
        }

        let after = try [ACL_RULES_MAP, ACL_ENDPOINTS_MAP, ACL_CONNTRACK_MAP, ACL_CONFIG_MAP].map { try RawMap(harness.chains.map($0, of: "acl")).entries().map { $0.key + $0.value } }
        for (before, now) in zip(snapshot, after) { #expect(Set(before) == Set(now), "a map changed") }
        #expect(try egress(harness, ssh) == .dropped, "the old rules still hold")
        #expect(try egress(harness, web) == .forwarded)
    }

    @Test("priority decides between overlapping prefixes, whichever is longer")
    func priorityOverPrefixLength() throws {
        let harness = try harness(lockedDown([
            ACL.Rule(priority: 10, vpc: 100, direction: .egress, destination: "10.0.2.5/32", action: .deny),
            ACL.Rule(priority: 20, vpc: 100, direction: .egress, destination: "10.0.0.0/16", action: .allow),
            ACL.Rule(priority: 5, vpc: 100, direction: .egress, destination: "10.0.2.6", protocol: .udp, action: .deny),
        ]))
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 1, destinationPort: 2)) == .dropped)
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: Self.c, sourcePort: 1, destinationPort: 2)) == .forwarded)
        #expect(try egress(harness, PacketBuilder.udpFrame(src: Self.a, dst: Self.c, sourcePort: 1, destinationPort: 2)) == .dropped)
        #expect(try harness.counters("acl", at: .egress).dropReasons[ACL.Reason.rule.rawValue].packets == 2)
    }

    @Test("rules apply to their VPC, network and direction only; endpoints without policy are not filtered")
    func scope() throws {
        let harness = try harness(ACL.Config(rules: [
            ACL.Rule(vpc: 100, network: "10.0.1.128/25", direction: .egress, action: .allow),
            ACL.Rule(vpc: 200, direction: .egress, action: .allow),
            ACL.Rule(vpc: 100, direction: .ingress, action: .allow),
        ], endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2", defaultEgress: .deny, defaultIngress: .deny)]))
        let out = PacketBuilder.udpFrame(src: Self.a, dst: Self.b, sourcePort: 1, destinationPort: 2)
        #expect(try egress(harness, out) == .dropped, "10.0.1.2 is outside 10.0.1.128/25; VPC 200's rule is not VPC 100's")
        let other = PacketBuilder.udpFrame(src: IPv4Address(10, 0, 1, 9), dst: Self.b, sourcePort: 1, destinationPort: 2)
        #expect(try harness.run(other, hook: .egress, context: HarnessContext(vni: 100, endpointIP: IPv4Address(10, 0, 1, 9))).verdict == .forwarded)
        let external = PacketBuilder.udpFrame(src: Self.b, dst: Self.a, sourcePort: 1, destinationPort: 2)
        #expect(try harness.run(external, hook: .ingress, context: HarnessContext(vni: 0, external: true)).verdict == .forwarded)
    }

    @Test("replies of allowed flows pass back, other traffic in does not; TCP and ICMP echo")
    func conntrack() throws {
        let harness = try harness(lockedDown([
            ACL.Rule(vpc: 100, direction: .egress, protocol: .tcp, ports: 80...80, action: .allow),
            ACL.Rule(vpc: 100, direction: .egress, protocol: .icmp, ports: 8...8, action: .allow),
        ]))
        let reply = PacketBuilder.tcpFrame(src: Self.b, dst: Self.a, sourcePort: 80, destinationPort: 40000, flags: [.syn, .ack])
        #expect(try ingress(harness, reply) == .dropped, "no flow yet")
        #expect(try egress(harness, PacketBuilder.tcpFrame(src: Self.a, dst: Self.b, sourcePort: 40000, destinationPort: 80)) == .forwarded)
        #expect(try ingress(harness, reply) == .forwarded)
        #expect(try ingress(harness, PacketBuilder.tcpFrame(src: Self.b, dst: Self.a, sourcePort: 80, destinationPort: 40001)) == .dropped)
        #expect(try ingress(harness, PacketBuilder.tcpFrame(src: Self.c, dst: Self.a, sourcePort: 80, destinationPort: 40000)) == .dropped)

        #expect(try egress(harness, PacketBuilder.icmpEchoFrame(src: Self.a, dst: Self.b, identifier: 7)) == .forwarded)
        #expect(try ingress(harness, PacketBuilder.icmpEchoFrame(src: Self.b, dst: Self.a, identifier: 7, reply: true)) == .forwarded)
        #expect(try ingress(harness, PacketBuilder.icmpEchoFrame(src: Self.b, dst: Self.a, identifier: 8, reply: true)) == .dropped)
        #expect(try ingress(harness, PacketBuilder.icmpEchoFrame(src: Self.b, dst: Self.a, identifier: 7)) == .dropped, "an echo request in is not a reply")

        // New rules judge every flow again: the conntrack is flushed.
        try harness.chains.configure("acl", lockedDown([]))
        #expect(try ingress(harness, reply) == .dropped)
    }

    @Test("ICMP rules match on the type")
    func icmpTypes() throws {
        let harness = try harness(lockedDown([ACL.Rule(vpc: 100, direction: .ingress, protocol: .icmp, ports: 8...8, action: .allow)]))
        #expect(try ingress(harness, PacketBuilder.icmpEchoFrame(src: Self.b, dst: Self.a, identifier: 1)) == .forwarded)
        let timestamp = PacketBuilder.ipv4Frame(src: Self.b, dst: Self.a, protocol: PacketBuilder.protocolICMP, payload: [13, 0, 0, 0, 0, 1, 0, 1])
        #expect(try ingress(harness, timestamp) == .dropped)
    }

    @Test("a TCP header cut short is dropped as truncated")
    func truncated() throws {
        let harness = try harness(lockedDown([]))
        let frame = PacketBuilder.ipv4Frame(src: Self.a, dst: Self.b, protocol: PacketBuilder.protocolTCP, payload: [1, 2])
        #expect(try egress(harness, frame) == .dropped)
        #expect(try harness.counters("acl", at: .egress).dropReasons[ACL.Reason.truncated.rawValue].packets == 1)
    }

    @Test("bad configurations are refused with a reason, and the rules in force stay")
    func validation() throws {
        let harness = try harness(lockedDown([ACL.Rule(vpc: 100, direction: .egress, action: .allow)]))
        let bad: [ACL.Config] = [
            lockedDown([ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/33", action: .allow)]),
            lockedDown([ACL.Rule(vpc: 100, direction: .egress, ports: 1...2, action: .allow)]),
            lockedDown([ACL.Rule(vpc: 0, direction: .egress, action: .allow)]),
            lockedDown([ACL.Rule(vpc: 100, network: "10.0.9.0/24", direction: .egress, source: "10.0.1.0/24", action: .allow)]),
            lockedDown((0..<33).map { _ in ACL.Rule(vpc: 100, direction: .egress, destination: "10.0.2.0/24", action: .allow) }),
            ACL.Config(rules: [], endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2"), ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.2")]),
            ACL.Config(rules: [], endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.300")]),
        ]
        for config in bad {
            #expect(throws: PluginError.self) { try harness.chains.configure("acl", config) }
        }
        #expect(try egress(harness, PacketBuilder.udpFrame(src: Self.a, dst: Self.b, sourcePort: 1, destinationPort: 2)) == .forwarded)
    }
}
