import CMizarLB
import MizarBPF
import MizarLB
import MizarPluginSDK
import Testing

/// An lb configuration is written beside the live one and switched to in one write
/// (issue 13, item 5): a packet meets the old services and tables or the new, never a new
/// service entry beside an old Maglev table.
@Suite("lb configuration generations (SDK harness)")
struct LBGenerationTests {
    static let client = IPv4Address(10, 0, 1, 2), web = IPv4Address(10, 0, 9, 1), dns = IPv4Address(10, 0, 9, 2)
    static let webBackend = IPv4Address(10, 0, 2, 3), dnsBackend = IPv4Address(10, 0, 2, 4)

    static func service(_ vip: IPv4Address, _ backend: IPv4Address) -> LB.Service {
        LB.Service(vpc: 100, vip: vip.description, port: 80, backends: [LB.Backend(ip: backend.description, port: 8080)])
    }

    /// The same two services in either order: their ids (positions) trade places, so every
    /// table moves, and the web VIP always has the one backend.
    static let webFirst = LB.Config(services: [service(web, webBackend), service(dns, dnsBackend)])
    static let dnsFirst = LB.Config(services: [service(dns, dnsBackend), service(web, webBackend)])

    /// The backend a new connection to `vip` from client port `port` is sent to (nil: dropped).
    func backend(_ harness: PluginHarness, _ vip: IPv4Address, port: UInt16) throws -> IPv4Address? {
        let frame = PacketBuilder.tcpFrame(src: Self.client, dst: vip, sourcePort: port, destinationPort: 80)
        let result = try harness.run(frame, hook: .egress, context: HarnessContext(vni: 100, endpointIP: Self.client))
        return result.verdict == .dropped ? nil : IPv4Frame(result.packet)?.destination
    }

    func harness(_ config: LB.Config) throws -> PluginHarness {
        try PluginHarness(plugin: LB.descriptor, hooks: [.egress], configuration: config)
    }

    /// Written in place (services, then tables), a packet between the two finds the web
    /// VIP's new id over the old table of that id: the DNS backend.
    @Test("packets meet the old tables or the new while configurations switch, never a service beside another's table")
    func noPacketMeetsHalfASwitch() throws {
        let harness = try harness(Self.webFirst)
        #expect(try backend(harness, Self.web, port: 1) == Self.webBackend)
        let (sent, wrong) = try harness.whileChanging({ for i in 0..<10 { try harness.chains.configure("lb", i % 2 == 0 ? Self.dnsFirst : Self.webFirst) } }) {
            try backend(harness, Self.web, port: UInt16(1024 + $0 % 60000)) != Self.webBackend
        }
        #expect(sent > 10, "packets ran while configurations switched (\(sent) sent)")
        #expect(wrong == 0, "\(wrong) of \(sent) connections to the web VIP went elsewhere or were dropped")
        let services = try RawMap(harness.chains.map(LB_SERVICES_MAP, of: "lb")).keys()
        #expect(services.count == 2, "the old generation's services are gone: \(services.count) left")
    }

    /// What an interrupted write left in the next generation's half (a full Maglev table and
    /// a backend set) must not go live: the next configuration writes its half whole.
    @Test("an interrupted write's leftovers never go live")
    func leftoversOfAnInterruptedWriteNeverGoLive() throws {
        let empty = LB.Config(services: [LB.Service(vpc: 100, vip: Self.web.description, port: 80, backends: [])])
        let harness = try harness(empty)
        #expect(try backend(harness, Self.web, port: 1) == nil, "a service without backends drops")
        let config = RawMap(try harness.chains.map(LB_CONFIG_MAP, of: "lb"))
        let next = empty.generation(named: try config.lookup(key: [0, 0, 0, 0]) ?? []) &+ 1
        // The next generation of a configuration with a backend, minus its services and switch.
        let leftovers = try LB.Config(services: [Self.service(Self.web, Self.dnsBackend)]).mapEntries(generation: next)
        for map in [LB_MAGLEV_MAP, LB_BACKENDS_MAP] {
            let raw = RawMap(try harness.chains.map(map, of: "lb"))
            for entry in leftovers[map] ?? [] { try raw.update(key: entry.key, value: entry.value) }
        }
        try harness.chains.configure("lb", empty)
        #expect(try backend(harness, Self.web, port: 2) == nil, "the leftover table was overwritten before the switch")
        #expect(try RawMap(harness.chains.map(LB_BACKENDS_MAP, of: "lb")).keys().isEmpty)
    }


    @Test("a switch the kernel refuses leaves the live generation alone")
    func refusedSwitchChangesNothing() throws {
        let harness = try harness(Self.webFirst)
        func image() throws -> [Set<[UInt8]>] {
            try [LB_SERVICES_MAP, LB_BACKENDS_MAP, LB_CONFIG_MAP].map { Set(try RawMap(harness.chains.map($0, of: "lb")).entries().map { $0.key + $0.value }) }
        }
        let before = try image()
        #expect { try harness.chains.configure("lb", RefusedSwitch(Self.dnsFirst)) } throws: {
            ($0 as? PluginError)?.code == .system && "\($0)".contains("previous configuration is back")
        }
        #expect(try image() == before, "the maps hold the live generation only")
        #expect(try backend(harness, Self.web, port: 3) == Self.webBackend)
        #expect(try backend(harness, Self.dns, port: 4) == Self.dnsBackend)

        try harness.chains.configure("lb", Self.dnsFirst)
        #expect(try backend(harness, Self.web, port: 5) == Self.webBackend)
        #expect(try backend(harness, Self.dns, port: 6) == Self.dnsBackend)
    }
}
