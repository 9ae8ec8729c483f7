import CMizarLB
import MizarLB
import MizarPluginSDK
import Testing

/// The lb plugin through the SDK harness: Maglev spread, affinity, removal, modes.
@Suite("lb plugin (SDK harness)")
struct LBHarnessTests {
    static let vip = IPv4Address(10, 0, 9, 9), client = IPv4Address(10, 0, 1, 2)
    static let backends = ["10.0.1.3", "10.0.2.3", "10.0.1.4"]

    func service(_ ips: [String], weights: [Int]? = nil, mode: LB.Mode = .nat) -> LB.Config {
        LB.Config(services: [LB.Service(vpc: 100, vip: Self.vip.description, port: 80, mode: mode,
                                        backends: ips.enumerated().map { LB.Backend(ip: $0.element, port: mode == .nat ? 8080 : 80, weight: weights?[$0.offset] ?? 1) })])
    }

    func harness(_ config: LB.Config) throws -> PluginHarness {
        try PluginHarness(plugin: LB.descriptor, hooks: [.egress, .ingress], configuration: config)
    }

    /// The backend a connection from client port `port` is sent to.
    func backend(_ harness: PluginHarness, port: UInt16, flavor: ProgramFlavor = .xdp) throws -> IPv4Frame {
        let frame = PacketBuilder.tcpFrame(src: Self.client, dst: Self.vip, sourcePort: port, destinationPort: 80)
        let result = try harness.run(frame, hook: .egress, flavor: flavor, context: HarnessContext(vni: 100, endpointIP: Self.client))
        #expect(result.verdict == .forwarded)
        return try #require(IPv4Frame(result.packet))
    }

    @Test("NAT mode spreads connections over the backends and rewrites both ways", arguments: ProgramFlavor.allCases)
    func spreadAndRewrite(flavor: ProgramFlavor) throws {
        let harness = try harness(service(Self.backends))
        var counts: [IPv4Address: Int] = [:]
        for port in UInt16(20000)..<20000 + 1500 {
            let sent = try backend(harness, port: port, flavor: flavor)
            #expect(sent.destinationPort == 8080 && sent.checksumsValid && sent.source == Self.client)
            counts[sent.destination, default: 0] += 1
        }
        #expect(Set(counts.keys) == Set(Self.backends.compactMap(IPv4Address.init)))
        for (ip, n) in counts { #expect((400...600).contains(n), "\(ip) took \(n) of 1500 connections") }

        let chosen = try backend(harness, port: 20001, flavor: flavor).destination
        let reply = PacketBuilder.tcpFrame(src: chosen, dst: Self.client, sourcePort: 8080, destinationPort: 20001, flags: [.syn, .ack])
        let back = try harness.run(reply, hook: .ingress, context: HarnessContext(vni: 100, endpointIP: Self.client))
        let seen = try #require(IPv4Frame(back.packet))
        #expect(seen.source == Self.vip && seen.sourcePort == 80 && seen.checksumsValid, "the client sees the VIP answer")
        // A backend on the same droplet answers through the egress hook: the same undoing.
        let local = try harness.run(reply, hook: .egress, flavor: flavor, context: HarnessContext(vni: 100, endpointIP: chosen))
        #expect(IPv4Frame(local.packet)?.source == Self.vip)
    }

    @Test("connections keep their backend when backends come and go; a removed backend's connections move")
    func affinityAndRemoval() throws {
        let harness = try harness(service(Self.backends))
        let ports = Array(UInt16(30000)..<30300)
        let before = try Dictionary(uniqueKeysWithValues: ports.map { ($0, try backend(harness, port: $0).destination) })

        try harness.chains.configure("lb", service(Self.backends + ["10.0.2.4"]))
        for port in ports { #expect(try backend(harness, port: port).destination == before[port], "added backend: \(port) kept") }

        let removed = IPv4Address("10.0.2.3")!
        try harness.chains.configure("lb", service(["10.0.1.3", "10.0.1.4", "10.0.2.4"]))
        var moved = 0
        for port in ports {
            let now = try backend(harness, port: port).destination
            if before[port] == removed { moved += 1; #expect(now != removed) } else { #expect(now == before[port]) }
        }
        #expect(moved > 50, "\(moved) connections were on the removed backend")
    }

    @Test("weights share new connections")
    func weights() throws {
        let harness = try harness(service(["10.0.1.3", "10.0.2.3"], weights: [1, 3]))
        var heavy = 0
        for port in UInt16(40000)..<41000 where try backend(harness, port: port).destination == IPv4Address(10, 0, 2, 3) { heavy += 1 }
        #expect((680...820).contains(heavy), "weight 3 of 4 took \(heavy) of 1000")
    }

    @Test("passthrough keeps the frame and steers it to the backend's droplet")
    func passthrough() throws {
        let harness = try harness(service(Self.backends, mode: .passthrough))
        let frame = PacketBuilder.tcpFrame(src: Self.client, dst: Self.vip, sourcePort: 5000, destinationPort: 80)
        let result = try harness.run(frame, hook: .egress, context: HarnessContext(vni: 100, endpointIP: Self.client))
        #expect(result.packet == frame)
        #expect(result.steeredTo.map { Self.backends.contains($0.description) } == true)
    }

    @Test("a service without backends drops and counts; other traffic passes untouched")
    func noBackend() throws {
        let harness = try harness(service([]))
        let frame = PacketBuilder.tcpFrame(src: Self.client, dst: Self.vip, sourcePort: 5000, destinationPort: 80)
        #expect(try harness.run(frame, hook: .egress, context: HarnessContext(vni: 100)).verdict == .dropped)
        #expect(try harness.counters("lb", at: .egress).dropReasons[LB.Reason.noBackend.rawValue].packets == 1)
        let other = PacketBuilder.tcpFrame(src: Self.client, dst: Self.vip, sourcePort: 5000, destinationPort: 81)
        #expect(try harness.run(other, hook: .egress, context: HarnessContext(vni: 100)).packet == other)
    }

    @Test("Maglev: a table of 65537 slots, fair, and a removal reassigns little beyond the removed backend's slots")
    func maglevTable() throws {
        let names = (1...10).map { "10.0.3.\($0):80" }
        let table = try Maglev.table(names: names, weights: Array(repeating: 1, count: 10), size: Int(LB_MAGLEV_SIZE))
        #expect(table.count == 65537 && LB_MAGLEV_SIZE >= 65537)
        let shares = Dictionary(grouping: table, by: { $0 }).mapValues(\.count)
        #expect(shares.values.allSatisfy { (6400...6700).contains($0) }, "\(shares)")
        let without = try Maglev.table(names: Array(names.dropLast()), weights: Array(repeating: 1, count: 9), size: Int(LB_MAGLEV_SIZE))
        let disturbed = table.indices.filter { table[$0] != 9 && without[$0] != table[$0] }.count
        #expect(Double(disturbed) / Double(table.count) < 0.03, "\(disturbed) slots of remaining backends moved")
    }

    @Test("Maglev refuses what it cannot build, instead of trapping")
    func maglevBadInput() throws {
        #expect(throws: PluginError.self) { try Maglev.table(names: ["a", "b"], weights: [1], size: 7) }
        #expect(throws: PluginError.self) { try Maglev.table(names: ["a"], weights: [0], size: 7) }
        #expect(throws: PluginError.self) { try Maglev.table(names: ["a"], weights: [1], size: 1) }
        #expect(try Maglev.table(names: [], weights: [], size: 1).isEmpty)
    }

    @Test("bad configurations are refused")
    func validation() throws {
        let harness = try harness(service(Self.backends))
        let bad = [
            LB.Config(services: [LB.Service(vpc: 100, vip: "10.0.9.300", port: 80, backends: [])]),
            LB.Config(services: [LB.Service(vpc: 100, vip: "10.0.9.9", port: 80, backends: [LB.Backend(ip: "10.0.1.3", port: 80, weight: 0)])]),
            LB.Config(services: [LB.Service(vpc: 100, vip: "10.0.9.9", port: 80, backends: [LB.Backend(ip: "10.0.1.3", port: 80), LB.Backend(ip: "10.0.1.3", port: 80)])]),
            LB.Config(services: Array(repeating: LB.Service(vpc: 100, vip: "10.0.9.9", port: 80, backends: []), count: 2)),
        ]
        for config in bad { #expect(throws: PluginError.self) { try harness.chains.configure("lb", config) } }
        #expect(try backend(harness, port: 1234).destinationPort == 8080)
    }
}

/// Passthrough end to end in the harness: the backend's droplet steers the VIP to the
/// backend, and the backend's replies from the VIP are vouched for.
@Suite("lb passthrough (SDK harness)")
struct LBPassthroughTests {
    let vip = IPv4Address(10, 0, 9, 9), client = IPv4Address(10, 0, 1, 2), backend = IPv4Address(10, 0, 2, 3)

    func harness() throws -> PluginHarness {
        try PluginHarness(plugin: LB.descriptor, hooks: [.egress, .ingress], configuration: LB.Config(services: [
            LB.Service(vpc: 100, vip: vip.description, port: 80, mode: .passthrough, backends: [LB.Backend(ip: backend.description, port: 80)])]))
    }

    @Test("the backend's droplet steers a frame for the VIP to the backend")
    func ingressSteers() throws {
        let harness = try harness()
        let frame = PacketBuilder.tcpFrame(src: client, dst: vip, sourcePort: 40000, destinationPort: 80)
        var context = HarnessContext(vni: 100, ifindex: 0)
        context.unknownDestination = true
        let result = try harness.run(frame, hook: .ingress, context: context)
        #expect(result.verdict == .forwarded && result.steeredTo == backend && result.packet == frame)
        // Overlay traffic to an endpoint is not touched.
        let plain = try harness.run(frame, hook: .ingress, context: HarnessContext(vni: 100, endpointIP: client))
        #expect(plain.steeredTo == nil)
    }

    @Test("replies from the VIP are vouched for only from one of its backends", arguments: ProgramFlavor.allCases)
    func vouching(flavor: ProgramFlavor) throws {
        let harness = try harness()
        let reply = PacketBuilder.tcpFrame(src: vip, dst: client, sourcePort: 80, destinationPort: 40000, flags: [.syn, .ack])
        var fromBackend = HarnessContext(vni: 100, endpointIP: backend)
        fromBackend.foreignSource = true
        #expect(try harness.run(reply, hook: .egress, flavor: flavor, context: fromBackend).vouched)
        var fromOther = HarnessContext(vni: 100, endpointIP: IPv4Address(10, 0, 2, 9))
        fromOther.foreignSource = true
        #expect(try !harness.run(reply, hook: .egress, flavor: flavor, context: fromOther).vouched)
        let wrongPort = PacketBuilder.tcpFrame(src: vip, dst: client, sourcePort: 81, destinationPort: 40000)
        #expect(try !harness.run(wrongPort, hook: .egress, flavor: flavor, context: fromBackend).vouched)
    }

    @Test("a passthrough backend must listen on the VIP's port")
    func portMustMatch() throws {
        let harness = try harness()
        #expect(throws: PluginError.self) {
            try harness.chains.configure("lb", LB.Config(services: [
                LB.Service(vpc: 100, vip: vip.description, port: 80, mode: .passthrough, backends: [LB.Backend(ip: backend.description, port: 8080)])]))
        }
    }
}
