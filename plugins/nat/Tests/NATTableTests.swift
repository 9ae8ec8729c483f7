import CMizarABI
import CMizarNAT
import Foundation
import MizarBPF
import MizarNAT
import MizarPluginSDK
import Testing

/// The nat tables under pressure: a translation cannot split, a port is never handed out
/// while its flow still owns it, a reply only ever reaches the VNI and endpoint of its flow
/// (issue 13, item 4).
@Suite("nat tables: full, idle, half: no translation splits", .serialized)
struct NATTableTests {
    static let droplet = IPv4Address(172, 30, 0, 1), endpoint = IPv4Address(10, 0, 1, 2), resolver = IPv4Address(8, 8, 8, 8)

    func harness() throws -> PluginHarness {
        try PluginHarness(plugin: NAT.descriptor, hooks: [.egress, .ingress], configuration: NAT.Config(
            externalIP: Self.droplet.description, ports: 20000...59999,
            masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"]), NAT.Masquerade(vpc: 200, except: ["10.0.0.0/16"])]))
    }

    /// Sends a UDP frame of endpoint 10.0.1.2 in `vni`; the source port it left with, or nil when dropped.
    func send(_ harness: PluginHarness, vni: UInt32, sourcePort: UInt16, to remote: IPv4Address, port: UInt16) throws -> UInt16? {
        let frame = PacketBuilder.udpFrame(src: Self.endpoint, dst: remote, sourcePort: sourcePort, destinationPort: port, payload: [1])
        let result = try harness.run(frame, hook: .egress, context: HarnessContext(vni: vni, endpointIP: Self.endpoint))
        return result.verdict == .forwarded ? IPv4Frame(result.packet)?.sourcePort : nil
    }

    /// Where a reply from `remote`:`port` to the droplet's `natPort` is delivered: (VNI, port), or nil.
    func reply(_ harness: PluginHarness, from remote: IPv4Address, port: UInt16, to natPort: UInt16) throws -> (vni: UInt32, port: UInt16)? {
        let frame = PacketBuilder.udpFrame(src: remote, dst: Self.droplet, sourcePort: port, destinationPort: natPort, payload: [2])
        let result = try harness.run(frame, hook: .ingress, context: HarnessContext(vni: 0, external: true))
        guard result.verdict == .forwarded, let vni = result.context?.vni, vni != 0, let back = IPv4Frame(result.packet) else { return nil }
        return back.destination == Self.endpoint ? (vni, back.destinationPort) : (vni, 0)
    }

    func entries(_ harness: PluginHarness, _ map: String) throws -> Int { try RawMap(harness.chains.map(map, of: "nat")).keys().count }

    @Test("past the table's size: new flows are refused, every reply still reaches its own endpoint only")
    func fullTableNeverSplitsATranslation() throws {
        let harness = try harness()
        // Tenant A (VPC 100) asks the resolver 2,000 questions.
        var ownPorts: [UInt16: UInt16] = [:]  // NAT port -> A's source port
        for sport in UInt16(1000)..<3000 {
            let sent = try send(harness, vni: 100, sourcePort: sport, to: Self.resolver, port: 53)
            let counters = try harness.counters("nat", at: .egress)
            let natPort = try #require(sent, "flow \(sport): \(counters)")
            ownPorts[natPort] = sport
        }
        // Tenant B (VPC 200, the same address) fills the tables past their size...
        let size = Int(NAT_TABLE_SIZE)
        var refused = 0
        for i in 0..<(size - ownPorts.count + 3000) {
            let remote = IPv4Address(100, 64 + UInt8(i >> 16 & 0x3f), UInt8(i >> 8 & 0xff), UInt8(i & 0xff))
            if try send(harness, vni: 200, sourcePort: UInt16(1000 + i % 50000), to: remote, port: 443) == nil { refused += 1 }
        }
        #expect(refused == 3000, "exactly the flows past the size are refused")
        #expect(try harness.counters("nat", at: .egress).dropReasons[NAT.Reason.tableFull.rawValue].packets == 3000)
        // ... and asks the resolver too: no port of A's may be handed to it.
        for sport in UInt16(1000)..<1500 {
            if let natPort = try send(harness, vni: 200, sourcePort: sport, to: Self.resolver, port: 53) {
                #expect(ownPorts[natPort] == nil, "B got port \(natPort), which A's flow still owns")
            }
        }
        #expect(try entries(harness, NAT_FLOWS_MAP) == size && entries(harness, NAT_REVERSE_MAP) == size, "the halves stay paired")
        // Every answer to A reaches A's own flow, none reaches B.
        for (natPort, sport) in ownPorts {
            let delivered = try #require(try reply(harness, from: Self.resolver, port: 53, to: natPort), "the reply to port \(natPort) was lost")
            #expect(delivered.vni == 100 && delivered.port == sport, "the reply to A's port \(natPort) went to VNI \(delivered.vni) port \(delivered.port)")
        }
    }

    @Test("an idle translation goes whole, swept or reclaimed, and only then is its port free again")
    func idlePairsExpireTogether() throws {
        let harness = try PluginHarness(plugin: NAT.descriptor, hooks: [.egress, .ingress], configuration: NAT.Config(
            externalIP: Self.droplet.description, ports: 20000...20000, masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"]),
                                                                                    NAT.Masquerade(vpc: 200, except: ["10.0.0.0/16"])],
            idleSeconds: 1))
        // One port: A's flow owns it; B's flow to the same resolver cannot have it while A's is alive.
        let port = try #require(try send(harness, vni: 100, sourcePort: 5000, to: Self.resolver, port: 53))
        for _ in 0..<3 {
            usleep(500_000)
            #expect(try send(harness, vni: 100, sourcePort: 5000, to: Self.resolver, port: 53) == port, "kept alive by traffic")
            #expect(try send(harness, vni: 200, sourcePort: 7000, to: Self.resolver, port: 53) == nil, "never handed out while owned")
        }
        #expect(try NAT.sweep(harness.chains) == 0, "nothing idle yet")
        // Idle past its time: B's new flow reclaims the pair (both halves) and the port.
        usleep(1_300_000)
        #expect(try send(harness, vni: 200, sourcePort: 7000, to: Self.resolver, port: 53) == port)
        #expect(try reply(harness, from: Self.resolver, port: 53, to: port)?.vni == 200, "the reply goes to the port's new owner only")
        #expect(try entries(harness, NAT_FLOWS_MAP) == 1 && entries(harness, NAT_REVERSE_MAP) == 1, "A's halves went together")
        // A comes back: its flow has no pair and no free port left.
        #expect(try send(harness, vni: 100, sourcePort: 5000, to: Self.resolver, port: 53) == nil)
        // The sweep removes B's pair once idle; replies then reach nobody.
        usleep(1_300_000)
        #expect(try NAT.sweep(harness.chains) == 2)
        #expect(try entries(harness, NAT_FLOWS_MAP) == 0 && entries(harness, NAT_REVERSE_MAP) == 0)
        #expect(try reply(harness, from: Self.resolver, port: 53, to: port) == nil)
    }

    /// Another CPU may stamp a pair after a new flow read the clock: the pair reads as just
    /// used, never as idle for 2^64 ns (a wrapped difference).
    @Test("a pair used a moment ago, by the clock's reckoning or later, is never reclaimed")
    func freshStampIsNeverIdle() throws {
        let harness = try PluginHarness(plugin: NAT.descriptor, hooks: [.egress, .ingress], configuration: NAT.Config(
            externalIP: Self.droplet.description, ports: 20000...20000, masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"]),
                                                                                    NAT.Masquerade(vpc: 200, except: ["10.0.0.0/16"])]))
        let port = try #require(try send(harness, vni: 100, sourcePort: 5000, to: Self.resolver, port: 53))
        let reverse = try BPFMap<nat_reverse_key, nat_translation>(harness.chains.map(NAT_REVERSE_MAP, of: "nat"))
        let (key, t) = try #require(try reverse.entries().first)
        var ahead = t
        ahead.last_seen_ns = NAT.monotonicNanoseconds() + 50_000_000
        try reverse.update(key, ahead)
        #expect(try send(harness, vni: 200, sourcePort: 7000, to: Self.resolver, port: 53) == nil, "A's port \(port) stays A's")
        #expect(try reply(harness, from: Self.resolver, port: 53, to: port)?.vni == 100)
        #expect(try NAT.sweep(harness.chains) == 0)
    }

    @Test("half a translation is never delivered, and the flow starts over on a new pair")
    func halfATranslationIsNeverUsed() throws {
        let harness = try harness()
        let natPort = try #require(try send(harness, vni: 100, sourcePort: 6000, to: Self.resolver, port: 53))
        // Lose the flow half (as a split would): the reverse half alone delivers nothing.
        let flows = RawMap(try harness.chains.map(NAT_FLOWS_MAP, of: "nat"))
        for key in try flows.keys() { _ = try flows.delete(key: key) }
        #expect(try reply(harness, from: Self.resolver, port: 53, to: natPort) == nil)
        #expect(try harness.counters("nat", at: .ingress).dropReasons[NAT.Reason.stale.rawValue].packets == 1)
        // Lose the reverse half instead: the flow's next frame makes a whole pair again.
        let again = try #require(try send(harness, vni: 100, sourcePort: 6000, to: Self.resolver, port: 53))
        let reverse = RawMap(try harness.chains.map(NAT_REVERSE_MAP, of: "nat"))
        for key in try reverse.keys() { _ = try reverse.delete(key: key) }
        let renewed = try #require(try send(harness, vni: 100, sourcePort: 6000, to: Self.resolver, port: 53))
        #expect(try reply(harness, from: Self.resolver, port: 53, to: renewed)?.port == 6000)
        #expect(try entries(harness, NAT_FLOWS_MAP) == 1 && entries(harness, NAT_REVERSE_MAP) == 1, "one whole pair, nothing left over (\(again) → \(renewed))")
    }
}
