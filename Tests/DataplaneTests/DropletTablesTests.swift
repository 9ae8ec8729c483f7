import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarTestSupport
import Testing

@Suite("Droplet tables: removal leaves nothing, bad requests change nothing", .serialized)
final class DropletTablesTests {
    let bed: TableBed

    init() throws { bed = try TableBed() }
    deinit { bed.teardown() }

    private var counts: [String: Int] { get throws { try bed.droplet.maps.entryCounts() } }

    @Test func removingVPCsEmptiesEveryTableAndDetachesAgents() throws {
        _ = try bed.droplet.transitProgram.testRun(packet: Wire.geneve())  // learns a direct path
        #expect(try counts == [MZ_ENDPOINTS_MAP: 3, MZ_LOCAL_ENDPOINTS_MAP: 2, MZ_NETWORKS_MAP: 3, MZ_VPCS_MAP: 2, MZ_DIRECT_PATH_MAP: 1, MZ_DROPLETS_MAP: 4])
        let hostA = try RouteSocket(in: bed.netns).link(named: bed.prefix + "ah").index
        let agentID = try bed.droplet.agentTCProgram.id
        #expect(try bed.netns.perform { try TCFilter(ifindex: hostA).attachedProgramID() } == agentID)

        try bed.droplet.removeVPC(100)
        #expect(try counts == [MZ_ENDPOINTS_MAP: 0, MZ_LOCAL_ENDPOINTS_MAP: 0, MZ_NETWORKS_MAP: 1, MZ_VPCS_MAP: 1, MZ_DIRECT_PATH_MAP: 0, MZ_DROPLETS_MAP: 4])
        #expect(try bed.netns.perform { try TCFilter(ifindex: hostA).attachedProgramID() } == 0, "the agent is detached from unplugged endpoints")
        #expect(try bed.droplet.localEndpoints.isEmpty && bed.droplet.endpoints().isEmpty)
        try bed.droplet.removeVPC(200)
        #expect(try counts.filter { $0.key != MZ_DROPLETS_MAP }.values.allSatisfy { $0 == 0 })
        #expect(try bed.droplet.knownDroplets() == [Wire.d, Wire.p, Wire.x, Wire.y], "droplets are the cluster's, not a VPC's")
    }

    /// A batch the endpoint table has no room for is refused before anything is written; one
    /// that replaces entries already there fits however full the table is (issue 13, item 5).
    @Test func aBatchThatDoesNotFitChangesNothing() throws {
        var limits = DropletLimits()
        limits.endpoints = 8
        let small = try TableBed(limits: limits)  // B, A and C: 3 entries
        defer { small.teardown() }
        func batch(_ n: Int, mac: UInt64 = 0x0200_0000_0100) -> [Endpoint] {
            (0..<n).map { Endpoint(vni: 100, ip: IPv4Address(10, 0, 1, UInt8(100 + $0)), mac: MACAddress(value: mac + UInt64($0)), droplet: Wire.y) }
        }
        let before = try small.droplet.endpoints()
        #expect { try small.droplet.setEndpoints(batch(6)) } throws: { ($0 as? DataplaneError)?.code == .full }
        #expect(try small.droplet.endpoints() == before && small.droplet.maps.entryCounts()[MZ_ENDPOINTS_MAP] == 3, "nothing written")
        try small.droplet.setEndpoints(batch(5))
        #expect(try small.droplet.maps.entryCounts()[MZ_ENDPOINTS_MAP] == 8)
        try small.droplet.setEndpoints(batch(5, mac: 0x0200_0000_0200))  // full, but all replacements
        #expect(try small.droplet.endpoints().filter { (0x0200_0000_0200..<0x0200_0000_0300).contains($0.mac.value) }.count == 5)
        #expect { try small.droplet.setEndpoints(batch(1, mac: 0x0200_0000_0300) + [Endpoint(vni: 100, ip: IPv4Address(10, 0, 1, 200), mac: MACAddress(value: 0x0200_0000_0400), droplet: Wire.y)]) } throws: {
            ($0 as? DataplaneError)?.code == .full
        }
        #expect(try small.droplet.endpoints().filter { (0x0200_0000_0300..<0x0200_0000_0500).contains($0.mac.value) }.isEmpty, "not even the replacement in a refused batch")
    }

    /// A batch the kernel refuses midway — another writer filled the table behind this
    /// droplet's back, so its own count let the batch through — is undone: the entry it
    /// replaced is back, the new ones it wrote are gone (issue 13, item 5).
    @Test func aBatchTheKernelRefusesMidwayIsUndone() throws {
        var limits = DropletLimits()
        limits.endpoints = 8
        let small = try TableBed(limits: limits)  // B, A and C: 3 entries
        defer { small.teardown() }
        let strangers = (0..<4).map { Endpoint(vni: 200, ip: IPv4Address(10, 0, 1, UInt8(50 + $0)), mac: MACAddress(value: 0x0200_0000_0500 + UInt64($0)), droplet: Wire.x) }
        for stranger in strangers {
            var value = mz_endpoint()
            value.net_plen = 24  // its droplet (zero) matters not: no packet is sent
            try small.droplet.maps.endpoints.update(stranger.id.key, value)
        }
        func image() throws -> Set<[UInt8]> {
            Set(try small.droplet.maps.endpoints.entries().map { withUnsafeBytes(of: $0.key) { Array($0) } + withUnsafeBytes(of: $0.value) { Array($0) } })
        }
        let before = try image()
        #expect(before.count == 7)
        // B moves and two endpoints arrive: the first new one fills the table, the second is refused.
        let batch = [Endpoint(vni: 100, ip: Wire.b, mac: MACAddress(value: 0x0200_0000_0600), droplet: Wire.x),
                     Endpoint(vni: 100, ip: IPv4Address(10, 0, 1, 201), mac: MACAddress(value: 0x0200_0000_0601), droplet: Wire.y),
                     Endpoint(vni: 100, ip: IPv4Address(10, 0, 1, 202), mac: MACAddress(value: 0x0200_0000_0602), droplet: Wire.y)]
        #expect { try small.droplet.setEndpoints(batch) } throws: {
            ($0 as? DataplaneError)?.code == .full && "\($0)".contains("holds what it held before")
        }
        #expect(try image() == before, "B as it was, no new entry")
        // The droplet counts the table again instead of trusting its own tally: refused whole.
        #expect { try small.droplet.setEndpoints(batch) } throws: { "\($0)".contains("nothing was written") }
        try small.droplet.setEndpoints(Array(batch.prefix(2)))
        #expect(try small.droplet.endpoints().contains { $0.ip == Wire.b && $0.droplet == Wire.x })
    }

    @Test func unplugAndRemoveEndpointTakeTheirEntries() throws {
        try bed.droplet.unplug(EndpointID(vni: 100, ip: Wire.a))
        try bed.droplet.removeEndpoint(EndpointID(vni: 100, ip: Wire.b))
        #expect(try bed.droplet.maps.endpoints.keys().count == 1)
        #expect(try bed.droplet.maps.localEndpoints.keys().count == 1)
        // Traffic to the unplugged endpoint: this droplet bounces its network, so it is an unknown endpoint.
        let before = try bed.droplet.transitCounters()
        #expect(try bed.droplet.transitProgram.testRun(packet: Wire.geneve()).action == .drop)
        #expect(try bed.droplet.transitCounters().delta(since: before)[.unknownEndpoint].packets == 1)
    }

    @Test func localEndpointShadowsItsBouncerEntryAndGivesItBack() throws {
        let id = EndpointID(vni: 100, ip: Wire.a)
        try bed.droplet.setEndpoint(Endpoint(vni: 100, ip: Wire.a, mac: Wire.aMAC, droplet: Wire.y))
        #expect(try bed.droplet.maps.endpoints.lookup(id.key)?.flags == UInt8(MZ_ENDPOINT_LOCAL))
        try bed.droplet.unplug(id)
        let entry = try #require(try bed.droplet.maps.endpoints.lookup(id.key))
        #expect(entry.flags == 0 && DropletAddressProbe.ip(entry) == Wire.y.ip)
    }

    @Test func anEndpointMayTakeTheOtherAgentHook() throws {
        let socket = try RouteSocket(in: bed.netns)
        let host = bed.prefix + "xh", peer = bed.prefix + "xp"
        _ = try socket.createVethPair(name: host, peerName: peer)
        try socket.setUp(host)
        try socket.setUp(peer)
        try bed.droplet.plug(LocalEndpoint(vni: 100, ip: IPv4Address(10, 0, 1, 40), mac: MACAddress("02:00:0a:00:01:28")!, hostInterface: host,
                                           peer: EndpointPeer(netns: bed.netns, interface: peer), agentHook: .xdp), mode: .native)
        #expect(bed.droplet.attachments[host] == "xdp native")
        #expect(bed.droplet.attachments[bed.prefix + "ah"] == "tc", "the droplet's default for the others")
        #expect(try !bed.netns.txChecksumming(of: peer), "the XDP agent needs the endpoint's checksums complete")
        let index = try socket.link(named: host).index
        #expect(try bed.netns.perform { try XDP.query(ifindex: index) }.programName == MZ_TRANSIT_AGENT_PROG)
        try bed.droplet.unplug(EndpointID(vni: 100, ip: IPv4Address(10, 0, 1, 40)))
        #expect(try bed.netns.perform { try XDP.query(ifindex: index) } == .none)
    }

    @Test func badRequestsAreRefusedAndChangeNothing() throws {
        let before = try counts
        func refused(_ code: DataplaneError.Code, _ body: () throws -> Void) {
            #expect(performing: body, throws: { ($0 as? DataplaneError)?.code == code })
        }
        refused(.notFound) { try self.bed.droplet.setNetwork(Network(vni: 300, cidr: IPv4Interface("10.0.1.0/24")!, bouncers: [Wire.x])) }
        refused(.conflict) { try self.bed.droplet.setNetwork(Network(vni: 100, cidr: IPv4Interface("10.0.0.0/16")!, bouncers: [Wire.x])) }
        refused(.invalidArgument) { try self.bed.droplet.setNetwork(Network(vni: 100, cidr: IPv4Interface("10.0.9.0/24")!, bouncers: [])) }
        refused(.invalidArgument) { try self.bed.droplet.setVPC(VPC(vni: 100, dividers: Array(repeating: Wire.x, count: Int(MZ_MAX_DIVIDERS) + 1))) }
        refused(.notFound) {
            try self.bed.droplet.setEndpoints([Endpoint(vni: 100, ip: IPv4Address(10, 0, 1, 30), mac: Wire.bMAC, droplet: Wire.y),
                                               Endpoint(vni: 100, ip: IPv4Address(10, 7, 0, 1), mac: Wire.bMAC, droplet: Wire.y)])
        }
        // Idempotent: the same plug again, and an unplug of what is not plugged, succeed and change nothing.
        #expect(throws: Never.self) {
            try self.bed.droplet.plug(LocalEndpoint(vni: 100, ip: Wire.a, mac: Wire.aMAC, hostInterface: self.bed.prefix + "ah",
                                                    peer: EndpointPeer(netns: self.bed.netns, interface: self.bed.prefix + "ap")))
        }
        #expect(throws: Never.self) { try self.bed.droplet.unplug(EndpointID(vni: 100, ip: IPv4Address(10, 0, 1, 77))) }
        #expect(throws: Never.self) { try self.bed.droplet.removeEndpoint(EndpointID(vni: 100, ip: IPv4Address(10, 0, 1, 78))) }
        refused(.conflict) { try self.bed.droplet.plug(LocalEndpoint(vni: 100, ip: Wire.a, mac: Wire.bMAC, hostInterface: self.bed.prefix + "ah")) }
        refused(.conflict) { try self.bed.droplet.plug(LocalEndpoint(vni: 100, ip: IPv4Address(10, 0, 1, 40), mac: Wire.aMAC, hostInterface: self.bed.prefix + "ah")) }
        refused(.notFound) { try self.bed.droplet.plug(LocalEndpoint(vni: 100, ip: IPv4Address(10, 7, 0, 1), mac: Wire.aMAC, hostInterface: self.bed.prefix + "ah")) }
        refused(.notFound) { try self.bed.droplet.removeVPC(999) }
        #expect(VNI(rawValue: 1 << 24) == nil)
        #expect(try counts == before)
        #expect(try bed.droplet.maps.vpcs.lookup(100)?.divider_count == 1)
    }
}

enum DropletAddressProbe {
    static func ip(_ entry: mz_endpoint) -> IPv4Address { IPv4Address(bytes: withUnsafeBytes(of: entry.droplet.ip) { Array($0) }) }
}
