import Foundation
import MizarNet
import MizarTestSupport
import Testing

@Suite("Links, addresses, routes and neighbours over netlink")
struct RouteSocketTests {
    /// Addresses that cannot be are errors, never traps (library code reached from the API).
    @Test func impossiblePrefixLengthsAreErrors() throws {
        for bad in [-1, 33, 64] {
            #expect(throws: AddressError.self) { try IPv4Interface(IPv4Address(10, 0, 0, 1), prefixLength: bad) }
        }
        #expect(IPv4Interface("10.0.0.1/33") == nil && IPv4Interface("10.0.0.1/-1") == nil)
        let cidr = try #require(IPv4Interface("10.1.2.3/16"))
        #expect(cidr.network.description == "10.1.0.0/16" && cidr.network(prefixLength: 8).description == "10.0.0.0/8")
        #expect(cidr.network(prefixLength: 40) == cidr.network, "never longer than its own prefix")
        #expect(cidr.with(address: IPv4Address(10, 1, 9, 9)).description == "10.1.9.9/16" && IPv4Interface.host(IPv4Address(10, 1, 9, 9)).prefixLength == 32)
    }

    @Test func vethPeerIsCreatedInsideTheTargetNamespace() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        let a = try RouteSocket(in: bed.nsA), b = try RouteSocket(in: bed.nsB), host = try RouteSocket()
        #expect(try a.link(named: bed.nameA).kind == "veth")
        #expect(try b.link(named: bed.nameB).kind == "veth")
        #expect(try a.links().contains { $0.name == bed.nameB } == false)
        #expect { try host.link(named: bed.nameA) } throws: { ($0 as? NetError)?.code == .notFound }
        #expect { try host.link(named: bed.nameB) } throws: { ($0 as? NetError)?.code == .notFound }
        #expect(try bed.ping(count: 2) == 2)
    }

    @Test func linkAttributesChange() throws {
        let name = uniquePrefix()
        let ns = try Netns.create(named: name)
        defer { _ = try? Netns.delete(named: name) }
        let sock = try RouteSocket(in: ns)
        let created = try sock.createVethPair(name: name + "x", peerName: name + "y")
        #expect(try sock.link(index: created.index).name == name + "x")
        let mac = MACAddress("02:11:22:33:44:55")!
        try sock.setMAC(of: name + "x", to: mac)
        try sock.setMTU(of: name + "x", to: 1400)
        try sock.setUp(name + "x")
        var link = try sock.link(named: name + "x")
        #expect(link.mac == mac)
        #expect(link.mtu == 1400)
        #expect(link.isUp)
        try sock.rename(name + "x", to: name + "z")
        link = try sock.link(index: created.index)
        #expect(link.name == name + "z")
        #expect(link.isUp)
        try sock.setUp(name + "z", false)
        #expect(try !sock.link(named: name + "z").isUp)
        #expect(try sock.deleteLink(named: name + "z"))
        #expect(try !sock.deleteLink(named: name + "z"))
        #expect { try sock.link(named: name + "y") } throws: { ($0 as? NetError)?.code == .notFound }
    }

    @Test func badRequestsThrowTypedErrors() throws {
        let name = uniquePrefix()
        let ns = try Netns.create(named: name)
        defer { _ = try? Netns.delete(named: name) }
        let sock = try RouteSocket(in: ns)
        #expect { try sock.createVethPair(name: "this-name-is-far-too-long", peerName: "p") } throws: { ($0 as? NetError)?.code == .invalidArgument }
        try sock.createVethPair(name: name + "x", peerName: name + "y")
        #expect { try sock.createVethPair(name: name + "x", peerName: name + "w") } throws: { ($0 as? NetError)?.code == .exists }
        #expect { try sock.setMTU(of: "missing0", to: 1500) } throws: { ($0 as? NetError)?.code == .notFound }
        #expect { try sock.setMTU(of: name + "x", to: 10) } throws: { ($0 as? NetError)?.code == .invalidArgument }
    }

    @Test func bridgeAndMaster() throws {
        let name = uniquePrefix()
        let ns = try Netns.create(named: name)
        defer { _ = try? Netns.delete(named: name) }
        let sock = try RouteSocket(in: ns)
        let bridge = try sock.createBridge(name: name + "br")
        #expect(bridge.kind == "bridge")
        try sock.createVethPair(name: name + "x", peerName: name + "y")
        try sock.setMaster(of: name + "x", to: name + "br")
        #expect(try sock.link(named: name + "x").masterIndex == bridge.index)
        try sock.setMaster(of: name + "x", to: nil)
        #expect(try sock.link(named: name + "x").masterIndex == 0)
    }

    @Test func addressesRoutesAndNeighbours() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        let a = try RouteSocket(in: bed.nsA)
        let extra = IPv4Interface("10.198.0.1/16")!
        try a.addAddress(extra, to: bed.indexA)
        #expect(try Set(a.addresses(of: bed.indexA)) == [IPv4Interface(bed.addressA, prefixLength: 24), extra])
        #expect { try a.addAddress(extra, to: bed.indexA) } throws: { ($0 as? NetError)?.code == .exists }
        try a.deleteAddress(extra, from: bed.indexA)
        #expect(try a.addresses(of: bed.indexA) == [try IPv4Interface(bed.addressA, prefixLength: 24)])

        // A default route via B, and an onlink route via a gateway outside every subnet.
        try a.addRoute(.defaultRoute(via: bed.addressB, ifindex: bed.indexA))
        let onlink = Route(destination: IPv4Interface("172.31.0.0/16")!, gateway: IPv4Address(192, 0, 2, 1), ifindex: bed.indexA, onlink: true)
        try a.addRoute(onlink)
        let routes = try a.routes()
        #expect(routes.contains(.defaultRoute(via: bed.addressB, ifindex: bed.indexA)))
        #expect(routes.contains(onlink))
        #expect { try a.addRoute(onlink) } throws: { ($0 as? NetError)?.code == .exists }
        #expect(try a.deleteRoute(onlink))
        #expect(try !a.deleteRoute(onlink))

        // Traffic follows the default route: B answers for an address on its loopback.
        let b = try RouteSocket(in: bed.nsB)
        try b.addAddress(IPv4Interface("10.197.0.9/32")!, to: try b.link(named: "lo").index)
        #expect(try runCommand(["ping", "-c", "1", "-W", "2", "10.197.0.9"], in: bed.nsA).status == 0)

        let mac = MACAddress("02:aa:bb:cc:dd:ee")!
        try a.setNeighbor(IPv4Address(10, 199, 0, 77), mac: mac, on: bed.indexA)
        let neighbour = try #require(try a.neighbors(of: bed.indexA).first { $0.address == IPv4Address(10, 199, 0, 77) })
        #expect(neighbour.mac == mac)
        #expect(neighbour.isPermanent)
        #expect(try a.deleteNeighbor(IPv4Address(10, 199, 0, 77), on: bed.indexA))
        #expect(try !a.deleteNeighbor(IPv4Address(10, 199, 0, 77), on: bed.indexA))
    }

    @Test func addressParsing() {
        #expect(IPv4Address("10.0.0.1")?.value == 0x0A00_0001)
        #expect(IPv4Address("10.0.0") == nil)
        #expect(IPv4Address("10.0.0.256") == nil)
        #expect(IPv4Interface("10.1.2.3/24")?.network.description == "10.1.2.0/24")
        #expect(IPv4Interface("10.1.2.3/33") == nil)
        #expect(MACAddress("02:00:00:00:00:zz") == nil)
        #expect(MACAddress.random().bytes[0] & 0x03 == 0x02)
    }
}

@Suite("ethtool through SIOCETHTOOL")
struct EthtoolTests {
    @Test func txChecksummingTurnsOffAndOn() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        #expect(try bed.nsA.txChecksumming(of: bed.nameA))
        try bed.nsA.setTxChecksumming(of: bed.nameA, false)
        #expect(try !bed.nsA.txChecksumming(of: bed.nameA))
        // Observed by the real tool, not only through our own ioctl.
        let shown = try runCommand(["ethtool", "-k", bed.nameA], in: bed.nsA)
        #expect(shown.status == 0, "ethtool: \(shown.error)")
        #expect(shown.output.contains("tx-checksumming: off"))
        try bed.nsA.setTxChecksumming(of: bed.nameA, true)
        #expect(try bed.nsA.txChecksumming(of: bed.nameA))
        #expect { try bed.nsA.txChecksumming(of: "missing0") } throws: { ($0 as? NetError)?.code == .notFound }
    }

    @Test func groTurnsOnAndOff() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        try bed.nsA.setGRO(of: bed.nameA, true)
        #expect(try bed.nsA.gro(of: bed.nameA))
        #expect(try runCommand(["ethtool", "-k", bed.nameA], in: bed.nsA).output.contains("generic-receive-offload: on"))
        try bed.nsA.setGRO(of: bed.nameA, false)
        #expect(try !bed.nsA.gro(of: bed.nameA))
        #expect(try runCommand(["ethtool", "-k", bed.nameA], in: bed.nsA).output.contains("generic-receive-offload: off"))
    }
}
