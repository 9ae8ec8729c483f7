import MizarPluginSDK
import PortGuardExample
import Testing

/// The example plugin, tested through the SDK alone: a harness, frames, verdicts, counters.
@Suite("port_guard example plugin (SDK harness)")
struct PortGuardTests {
    let client = IPv4Address(10, 0, 1, 2), server = IPv4Address(10, 0, 1, 3)

    func harness() throws -> PluginHarness {
        let harness = try PluginHarness(plugin: PortGuard.descriptor, hook: .egress)
        try harness.chains.configure("port_guard", PortGuard.Config(blocked: [22: 1, 53: 2]))
        return harness
    }

    @Test("blocked ports drop with their reason, other traffic continues unchanged", arguments: ProgramFlavor.allCases)
    func verdicts(flavor: ProgramFlavor) throws {
        let harness = try harness()
        let ssh = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 22)
        let dns = PacketBuilder.udpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 53, payload: [1, 2, 3])
        let web = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 80)
        let ping = PacketBuilder.icmpEchoFrame(src: client, dst: server, identifier: 22)

        #expect(try harness.run(ssh, hook: .egress, flavor: flavor).verdict == .dropped)
        #expect(try harness.run(dns, hook: .egress, flavor: flavor).verdict == .dropped)
        let passed = try harness.run(web, hook: .egress, flavor: flavor)
        #expect(passed.verdict == .forwarded)
        #expect(passed.packet == web)
        #expect(try harness.run(ping, hook: .egress, flavor: flavor).verdict == .forwarded)

        let counters = try harness.counters("port_guard", at: .egress)
        #expect(counters[.drop].packets == 2)
        #expect(counters.dropReasons[1] == Counter(packets: 1, bytes: UInt64(ssh.count)))
        #expect(counters.dropReasons[2] == Counter(packets: 1, bytes: UInt64(dns.count)))
        #expect(counters[.continue] == Counter(packets: 2, bytes: UInt64(web.count + ping.count)))
        #expect(counters[.aborted].packets == 0)
    }

    @Test("the harness refuses what it cannot run with an error, not a trap")
    func harnessRefusesBadRuns() throws {
        let harness = try harness()
        let web = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 80)
        #expect(throws: PluginError.self) { try harness.run(web, hook: .ingress, flavor: .tc) }
        #expect(throws: (any Error).self) { try harness.run(Array(web.prefix(10)), hook: .egress) }
        #expect(try harness.run(web, hook: .egress).verdict == .forwarded, "the harness still works")
    }

    @Test("a TCP header cut short is dropped as truncated, not guessed")
    func truncated() throws {
        let harness = try harness()
        let frame = PacketBuilder.ipv4Frame(src: client, dst: server, protocol: PacketBuilder.protocolTCP, payload: [0x9c])
        #expect(try harness.run(frame, hook: .egress).verdict == .dropped)
        #expect(try harness.counters("port_guard", at: .egress).dropReasons[15].packets == 1)
    }

    @Test("reconfiguring replaces the blocked set")
    func reconfigure() throws {
        let harness = try harness()
        let ssh = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 22)
        try harness.chains.configure("port_guard", PortGuard.Config(blocked: [80: 3]))
        #expect(try harness.run(ssh, hook: .egress).verdict == .forwarded)
    }

    @Test("bad configuration is refused and changes nothing")
    func badConfig() throws {
        let harness = try harness()
        #expect(throws: PluginError.self) { try harness.chains.configure("port_guard", PortGuard.Config(blocked: [0: 1])) }
        #expect(throws: PluginError.self) { try harness.chains.configure("port_guard", PortGuard.Config(blocked: [443: 0])) }
        let ssh = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 22)
        #expect(try harness.run(ssh, hook: .egress).verdict == .dropped)
    }
}
