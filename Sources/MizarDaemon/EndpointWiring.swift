import Foundation
import MizarAPI
import MizarDataplane
import MizarNet

/// Gives a local endpoint its veth and plugs it: with `netns`, the pair is created here with
/// its peer directly inside that namespace, which gets the endpoint's MAC, address and a
/// default route via the network's gateway (what a CNI plugin would otherwise do); without,
/// an existing host-side veth is plugged as it is.
///
/// A veth transitd creates carries the alias `mizar:<endpoint>`: only such a veth is ever
/// taken over (after a restart) or deleted, so a request naming someone else's interface can
/// neither rewire nor remove it.
struct EndpointWiring {
    let droplet: MizarDataplane.Droplet

    static let aliasPrefix = "mizar:"
    /// The name a veth has between its creation and its marking.
    static let scratchPrefix = "mzt"
    /// The name a veth has between its unplugging and its deletion.
    static let retiredPrefix = "mzx"
    static func alias(of endpoint: String) -> String { aliasPrefix + String(endpoint.utf8.prefix(240))! }

    /// `prefix` and 10 random hex digits: 13 characters, within an interface name's 15.
    static func temporaryName(_ prefix: String) -> String { prefix + String(UInt64.random(in: (1 << 36)..<(1 << 40)), radix: 16) }
    static func isTemporaryName(_ name: String, _ prefix: String) -> Bool {
        name.hasPrefix(prefix) && name.utf8.count == prefix.utf8.count + 10 && name.dropFirst(prefix.count).allSatisfy(\.isHexDigit)
    }

    /// Returns, for an endpoint in a namespace, whether the namespace's default route goes
    /// through it (nil without a namespace).
    @discardableResult
    func plug(_ spec: EndpointSpec, name: String, vni: VNI, cidr: IPv4Interface) throws -> Bool? {
        guard let ip = spec.ip, let mac = spec.mac, let host = spec.hostInterface else {
            throw APIError(.internal, "endpoint \(name) was admitted without its address, MAC or host interface")
        }
        let socket = try RouteSocket(in: droplet.netns)
        let existing = try? socket.link(named: host)
        var peer: EndpointPeer?
        var created = false
        var defaultRoute: Bool?
        if let path = spec.netns {
            let netns = try Netns(path)
            let interface = spec.interface ?? "eth0"
            if let existing {
                // A veth left by an earlier run (or a retried request) is taken over, not made twice.
                guard existing.kind == "veth", existing.alias == EndpointWiring.alias(of: name) else {
                    throw APIError(.conflict, "endpoint \(name): interface \(host) exists and is not this endpoint's veth")
                }
            } else {
                // Made under a scratch name and marked before it takes its own: a process killed
                // in between leaves a `mzt…` veth, which the next start prunes (no name is blocked).
                let scratch = EndpointWiring.temporaryName(EndpointWiring.scratchPrefix)
                _ = try socket.createVethPair(name: scratch, peerName: interface, peerNetns: netns, mtu: droplet.endpointMTU)
                do {
                    try socket.setAlias(of: scratch, to: EndpointWiring.alias(of: name))
                    try socket.rename(scratch, to: host)
                } catch {
                    _ = try? socket.deleteLink(named: scratch)
                    throw error
                }
                created = true
            }
            do {
                let inside = try RouteSocket(in: netns)
                let link = try inside.link(named: interface)
                // Taking over: the interface of that name must be this veth's other end.
                if let existing, link.linkIndex != existing.index {
                    throw APIError(.conflict, "endpoint \(name): \(interface) in \(path) is not the other end of \(host)")
                }
                if link.mac != mac { try inside.setMAC(of: interface, to: mac) }
                try inside.setUp(interface)
                try inside.setUp("lo")
                let address = cidr.with(address: ip)
                if try !inside.addresses(of: link.index).contains(address) { try inside.addAddress(address, to: link.index) }
                // The first interface gives the namespace its default route; a second one (on
                // another network) keeps to its subnet.
                let defaults = try inside.routes().filter { $0.destination.prefixLength == 0 }
                if defaults.isEmpty { try inside.addRoute(Route.defaultRoute(via: cidr.gateway, ifindex: link.index)) }
                defaultRoute = defaults.isEmpty || defaults.contains { $0.ifindex == link.index }
                try socket.setUp(host)
            } catch {
                if created { _ = try? socket.deleteLink(named: host) }
                throw error
            }
            peer = EndpointPeer(netns: netns, interface: interface)
        } else {
            guard let existing else { throw APIError(.invalid, "endpoint \(name): no interface \(host) on this droplet") }
            guard existing.kind == "veth" else { throw APIError(.invalid, "endpoint \(name): \(host) is not a veth") }
        }
        let hook: MizarDataplane.AgentHook = spec.agentHook == .xdp ? .xdp : .tc
        do {
            try droplet.plug(LocalEndpoint(vni: vni, ip: ip, mac: mac, hostInterface: host, peer: peer, agentHook: hook))
        } catch {
            if created { _ = try? socket.deleteLink(named: host) }
            throw error
        }
        return defaultRoute
    }

    /// The alias of a veth being deleted: no endpoint's, so a start prunes it if the process died first.
    static let retiredAlias = aliasPrefix + "-retired"

    /// Unplugs the endpoint and retires the veth transitd made for it: down, renamed out of
    /// the way and deleted in the background, peer and all. The kernel takes 15-30 ms to
    /// delete a veth (RCU grace periods); the endpoint is gone from the tables and its name is
    /// free at once. Either may be gone already; a veth transitd did not make is left alone.
    func unplug(_ spec: EndpointSpec, name: String, vni: VNI?) throws {
        if let vni, let ip = spec.ip { try droplet.unplug(EndpointID(vni: vni, ip: ip)) }
        guard spec.netns != nil, let host = spec.hostInterface else { return }
        let socket = try RouteSocket(in: droplet.netns)
        guard let link = try? socket.link(named: host), link.alias == EndpointWiring.alias(of: name) else { return }
        let retired = EndpointWiring.temporaryName(EndpointWiring.retiredPrefix)
        do {
            // Both names are free when this returns: the container's side too, so that an ADD
            // right after a DEL (a runtime's retry) can make CNI_IFNAME again.
            if let path = spec.netns, let interface = spec.interface, let netns = try? Netns(path),
               let inside = try? RouteSocket(in: netns), (try? inside.link(named: interface))?.linkIndex == link.index {
                try inside.setUp(interface, false)
                try inside.rename(interface, to: retired)
            }
            try socket.setUp(host, false)
            try socket.rename(host, to: retired)
            try socket.setAlias(of: retired, to: EndpointWiring.retiredAlias)
        } catch {
            _ = try socket.deleteLink(named: (try? socket.link(named: retired)) != nil ? retired : host)
            return
        }
        VethReaper.shared.delete(retired, in: droplet.netns)
    }

    /// Deletes veths transitd made for endpoints that are no longer wanted (left by a process
    /// killed between creating one and storing its endpoint). Returns their names.
    func pruneVeths(keeping endpoints: Set<String>) throws -> [String] {
        let wanted = Set(endpoints.map(EndpointWiring.alias(of:)))
        return try deleteVeths { $0.alias.map { $0.hasPrefix(EndpointWiring.aliasPrefix) && !wanted.contains($0) } ?? false }
    }

    /// Deletes the veths a process killed mid-plug left under a scratch name, unmarked or
    /// marked as an endpoint's (their peer holds the endpoint's interface name in its
    /// namespace, so a new plug could not make it): at start, before anything is plugged.
    /// A name some endpoint gives as its `hostInterface` is left alone.
    func pruneUnfinished(keeping hostInterfaces: Set<String>) throws -> [String] {
        try deleteVeths { link in
            EndpointWiring.isTemporaryName(link.name, EndpointWiring.scratchPrefix) && !hostInterfaces.contains(link.name)
                && (link.alias.map { $0.hasPrefix(EndpointWiring.aliasPrefix) } ?? true)
        }
    }

    private func deleteVeths(where stale: (Link) -> Bool) throws -> [String] {
        let socket = try RouteSocket(in: droplet.netns)
        var removed: [String] = []
        for link in try socket.links() where link.kind == "veth" && stale(link) {
            if try socket.deleteLink(named: link.name) { removed.append(link.name) }
        }
        return removed
    }
}

/// Deletes retired veths one after another, off the request path.
final class VethReaper: @unchecked Sendable {
    static let shared = VethReaper()
    private let queue = DispatchQueue(label: "mizar.veth-reaper")
    private let group = DispatchGroup()

    func delete(_ name: String, in netns: Netns) {
        queue.async(group: group) { _ = try? RouteSocket(in: netns).deleteLink(named: name) }
    }

    /// Waits until every deletion asked for so far is done (shutdown, tests).
    func drain() { group.wait() }
}
