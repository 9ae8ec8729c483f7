import Foundation
import MizarBPF
import MizarDataplane
import MizarNet

/// The test topology of DESIGN §7 with the data plane running on it: a fabric namespace
/// whose bridge is the underlay, droplet namespaces joined to it by veths (transit XDP on
/// each), endpoint namespaces joined to their droplet by veths (transit agent on each).
/// It also plays the management plane: VPCs and networks go to every droplet, endpoints
/// to the bouncers of their network.
///
/// For tests, benchmarks and demos. Every name starts with `prefix`; `teardown()` removes
/// everything (call it in `defer`).
public final class OverlayLab: @unchecked Sendable {
    /// A droplet of the lab: its namespace, substrate interface and data plane.
    public struct Host: @unchecked Sendable {
        public let name: String
        public let netns: Netns
        public let interface: String
        public let address: DropletAddress
        public let dataplane: Droplet
    }

    /// An endpoint of the lab: a namespace with `eth0` behind a veth to its droplet.
    public struct Guest: Sendable {
        public let name: String
        public let netns: Netns
        public let vni: VNI
        public let address: IPv4Interface
        public let mac: MACAddress
        public var host: String
        public var ip: IPv4Address { address.address }
        public var id: EndpointID { EndpointID(vni: vni, ip: ip) }
    }

    public let prefix: String
    public let underlay: Underlay
    public var fabric: Netns { underlay.fabric }
    public let underlayMTU: UInt32
    public private(set) var hosts: [String: Host] = [:]
    public private(set) var guests: [String: Guest] = [:]
    private var networkList: [Network] = []
    private let locator: BPFObjectLocator
    private let directPathMaxAge: Duration
    private let agentHook: AgentHook

    /// Creates the fabric (a bridge in its own namespace) and one droplet per name, with
    /// underlay addresses 172.30.0.1, .2, ... in the order given.
    public init(prefix: String = uniquePrefix(), droplets: [String], underlayMTU: UInt32 = 1500,
                directPathMaxAge: Duration = .seconds(30), agentHook: AgentHook = .tc, locator: BPFObjectLocator = BPFObjectLocator()) throws {
        self.prefix = prefix
        self.agentHook = agentHook
        self.underlayMTU = underlayMTU
        self.locator = locator
        self.directPathMaxAge = directPathMaxAge
        underlay = try Underlay(prefix: prefix, mtu: underlayMTU)
        do {
            for (i, name) in droplets.enumerated() { try addDroplet(name, index: i + 1) }
        } catch {
            teardown()
            throw error
        }
    }

    /// The topology of DESIGN §7: droplets hosta, hostb, bouncer, divider; VPC 100 with
    /// 10.0.1.0/24 and 10.0.2.0/24 (bouncer: bouncer, divider: divider); endpoints a1
    /// (10.0.1.2, hosta), b1 (10.0.1.3, hostb), b2 (10.0.2.3, hostb). With `vpc2`, VPC 200
    /// reuses 10.0.1.0/24 and v2 on hostb holds b1's IP there.
    public static func design(prefix: String = uniquePrefix(), underlayMTU: UInt32 = 1500, agentHook: AgentHook = .tc,
                              vpc2: Bool = true, locator: BPFObjectLocator = BPFObjectLocator()) throws -> OverlayLab {
        let lab = try OverlayLab(prefix: prefix, droplets: ["hosta", "hostb", "bouncer", "divider"], underlayMTU: underlayMTU,
                                 agentHook: agentHook, locator: locator)
        do {
            try lab.createVPC(100, dividers: ["divider"])
            try lab.createNetwork(100, "10.0.1.0/24", bouncers: ["bouncer"])
            try lab.createNetwork(100, "10.0.2.0/24", bouncers: ["bouncer"])
            try lab.createEndpoint("a1", vni: 100, ip: "10.0.1.2", on: "hosta")
            try lab.createEndpoint("b1", vni: 100, ip: "10.0.1.3", on: "hostb")
            try lab.createEndpoint("b2", vni: 100, ip: "10.0.2.3", on: "hostb")
            if vpc2 {
                try lab.createVPC(200, dividers: ["divider"])
                try lab.createNetwork(200, "10.0.1.0/24", bouncers: ["bouncer"])
                try lab.createEndpoint("v2", vni: 200, ip: "10.0.1.3", on: "hostb")
            }
        } catch {
            lab.teardown()
            throw error
        }
        return lab
    }

    /// Removes every namespace the lab made (and with them every veth, bridge and attachment).
    public func teardown() {
        for host in hosts.values { host.dataplane.detach() }
        underlay.teardown()
    }

    public func host(_ name: String) -> Host { hosts[name]! }
    public func guest(_ name: String) -> Guest { guests[name]! }

    private func addDroplet(_ name: String, index: Int) throws {
        let (netns, ip) = try underlay.addHost(name, index: index)
        let dataplane = try Droplet(interface: "eth0", in: netns, ip: ip, directPathMaxAge: directPathMaxAge, agentHook: agentHook, locator: locator)
        try dataplane.attach(mode: .native)
        // The fabric port stands in for the switch: frames sent into a veth need an XDP peer.
        try underlay.attachFabricPeer(index: index, program: dataplane.vethPeerProgram)
        hosts[name] = Host(name: name, netns: netns, interface: "eth0", address: dataplane.address, dataplane: dataplane)
        // Every droplet knows every other (what a control plane does): Geneve only from them.
        let all = hosts.values.map(\.address)
        for host in hosts.values { try host.dataplane.setKnownDroplets(all) }
    }

    /// A host outside the overlay on the substrate (no droplet): 172.30.0.`index`, for
    /// NAT tests. Returns its namespace; its interface is `eth0`.
    public func addExternalHost(_ name: String, index: Int = 100) throws -> (netns: Netns, ip: IPv4Address) {
        let (netns, ip) = try underlay.addHost(name, index: index)
        try underlay.attachFabricPeer(index: index, program: hosts.values.first!.dataplane.vethPeerProgram)
        return (netns, ip)
    }

    private func addresses(_ names: [String]) -> [DropletAddress] { names.map { host($0).address } }

    // MARK: Management plane

    /// Creates a VPC on every droplet.
    public func createVPC(_ vni: VNI, dividers: [String]) throws {
        for host in hosts.values { try host.dataplane.setVPC(VPC(vni: vni, dividers: addresses(dividers))) }
    }

    /// Creates a network on every droplet.
    public func createNetwork(_ vni: VNI, _ cidr: String, bouncers: [String]) throws {
        guard let cidr = IPv4Interface(cidr) else { throw DataplaneError(.invalidArgument, "bad CIDR \(cidr)") }
        let network = Network(vni: vni, cidr: cidr, bouncers: addresses(bouncers))
        for host in hosts.values { try host.dataplane.setNetwork(network) }
        networkList.append(network)
    }

    private func network(of vni: VNI, _ ip: IPv4Address) -> Network? {
        networkList.first { $0.vni == vni && $0.contains(ip) }
    }

    /// Creates an endpoint namespace on droplet `host`: `eth0` with `ip`, default route via the
    /// network's first address; plugs it and tells the network's bouncers.
    public func createEndpoint(_ name: String, vni: VNI, ip: String, on host: String) throws {
        guard let ip = IPv4Address(ip), let network = network(of: vni, ip) else { throw DataplaneError(.notFound, "no network of VNI \(vni) holds \(ip)") }
        let netns = try underlay.addNamespace(name)
        let guest = Guest(name: name, netns: netns, vni: vni, address: network.cidr.with(address: ip),
                          mac: MACAddress(bytes: [0x02, 0x00] + ip.bytes), host: host)
        try RouteSocket(in: netns).setUp("lo")
        guests[name] = guest
        try wire(guest, to: host)
    }

    /// Removes an endpoint from its droplet and its bouncers (the namespace stays, cut off).
    public func deleteEndpoint(_ name: String) throws {
        let guest = guest(name)
        try host(guest.host).dataplane.unplug(guest.id)
        for bouncer in bouncers(of: guest) { try bouncer.dataplane.removeEndpoint(guest.id) }
        _ = try RouteSocket(in: host(guest.host).netns).deleteLink(named: hostSide(guest))
    }

    /// Moves an endpoint to droplet `host`: unplugs it, rewires its namespace there (same IP
    /// and MAC, as a live-migrated VM keeps them), plugs it and updates the bouncers.
    public func moveEndpoint(_ name: String, to host: String) throws {
        var guest = guest(name)
        try self.host(guest.host).dataplane.unplug(guest.id)
        _ = try RouteSocket(in: self.host(guest.host).netns).deleteLink(named: hostSide(guest))
        guest.host = host
        guests[name] = guest
        try wire(guest, to: host)
    }

    /// The name of an endpoint's host-side veth (in its droplet's namespace).
    public func hostSide(_ guest: Guest) -> String { "\(prefix)e\(guest.name)" }

    /// The ifindex and MAC of an endpoint's host-side veth: where its agent runs, the MAC it sees as gateway.
    public func hostSideLink(_ name: String) throws -> Link {
        try RouteSocket(in: host(guest(name).host).netns).link(named: hostSide(guest(name)))
    }

    /// A veth from the droplet to the endpoint namespace (`eth0` there, with the endpoint's
    /// address and a default route via the network's first address), plugged into the
    /// droplet and announced to the network's bouncers.
    private func wire(_ guest: Guest, to host: String) throws {
        let droplet = self.host(host)
        let socket = try RouteSocket(in: droplet.netns)
        _ = try socket.createVethPair(name: hostSide(guest), peerName: "eth0", peerNetns: guest.netns)
        let inside = try RouteSocket(in: guest.netns)
        try inside.setMAC(of: "eth0", to: guest.mac)
        try inside.setUp("eth0")
        try socket.setUp(hostSide(guest))
        try droplet.dataplane.plug(LocalEndpoint(vni: guest.vni, ip: guest.ip, mac: guest.mac, hostInterface: hostSide(guest),
                                                 peer: EndpointPeer(netns: guest.netns, interface: "eth0")), mode: .native)
        let eth0 = try inside.link(named: "eth0")
        try inside.addAddress(guest.address, to: eth0.index)
        try inside.addRoute(.defaultRoute(via: IPv4Address(value: guest.address.network.address.value + 1), ifindex: eth0.index))
        try announce(guest)
    }

    private func bouncers(of guest: Guest) -> [Host] {
        let ips = Set(network(of: guest.vni, guest.ip)?.bouncers.map(\.ip) ?? [])
        return hosts.values.filter { ips.contains($0.address.ip) }
    }

    private func announce(_ guest: Guest) throws {
        let endpoint = Endpoint(vni: guest.vni, ip: guest.ip, mac: guest.mac, droplet: host(guest.host).address)
        for bouncer in bouncers(of: guest) { try bouncer.dataplane.setEndpoint(endpoint) }
    }

    // MARK: Observation

    /// Pings `to` from endpoint `from`; returns the replies received.
    @discardableResult
    public func ping(from: String, to: IPv4Address, count: Int = 3, interval: Double = 0.2, extra: [String] = []) throws -> Int {
        let result = try runCommand(["ping", "-c", "\(count)", "-i", "\(interval)", "-W", "1"] + extra + [to.description], in: guest(from).netns)
        return pingReplies(result.output)
    }

    /// Sum of transit XDP counters over every droplet.
    public func transitCounters() throws -> [String: TransitCounters] {
        try hosts.mapValues { try $0.dataplane.transitCounters() }
    }
}

extension OverlayLab {
    /// Packets received on an endpoint's `eth0`.
    public func receivedPackets(_ name: String) throws -> UInt64 {
        try MizarTopology.receivedPackets(of: "eth0", in: guest(name).netns)
    }

    /// Runs iperf3 from endpoint `from` to endpoint `to`; returns the report's end section.
    public func iperf(from: String, to: String, seconds: Int = 3, extra: [String] = []) throws -> [String: Any] {
        try iperf3(from: guest(from).netns, to: guest(to).netns, server: guest(to).ip, seconds: seconds, extra: extra)
    }
}
