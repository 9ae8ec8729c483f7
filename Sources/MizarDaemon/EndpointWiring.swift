import Foundation
import MizarAPI
import MizarDataplane
import MizarNet

/// Gives a local endpoint its veth and plugs it: with `netns`, the pair is created here with
/// its peer directly inside that namespace, which gets the endpoint's MAC, address and a
/// default route via the network's gateway (what a CNI plugin would otherwise do); without,
/// an existing host-side veth is plugged as it is.
struct EndpointWiring {
    let droplet: MizarDataplane.Droplet

    func plug(_ spec: EndpointSpec, name: String, vni: VNI, cidr: IPv4Interface) throws {
        guard let ip = spec.ip, let mac = spec.mac, let host = spec.hostInterface else {
            throw APIError(.internal, "endpoint \(name) was admitted without its address, MAC or host interface")
        }
        var peer: EndpointPeer?
        var created = false
        if let path = spec.netns {
            let netns = try Netns(path)
            let interface = spec.interface ?? "eth0"
            let socket = try RouteSocket(in: droplet.netns)
            // A veth left by an earlier run (or a retried request) is taken over, not made twice.
            if (try? socket.link(named: host)) == nil {
                _ = try socket.createVethPair(name: host, peerName: interface, peerNetns: netns, mtu: droplet.endpointMTU)
                created = true
            }
            do {
                let inside = try RouteSocket(in: netns)
                let link = try inside.link(named: interface)
                if link.mac != mac { try inside.setMAC(of: interface, to: mac) }
                try inside.setUp(interface)
                try inside.setUp("lo")
                let address = IPv4Interface(ip, prefixLength: cidr.prefixLength)
                if try !inside.addresses(of: link.index).contains(address) { try inside.addAddress(address, to: link.index) }
                let route = Route.defaultRoute(via: cidr.gateway, ifindex: link.index)
                if try !inside.routes().contains(where: { $0.destination.prefixLength == 0 && $0.gateway == cidr.gateway }) { try inside.addRoute(route) }
                try socket.setUp(host)
            } catch {
                if created { _ = try? socket.deleteLink(named: host) }
                throw error
            }
            peer = EndpointPeer(netns: netns, interface: interface)
        }
        let hook: MizarDataplane.AgentHook = spec.agentHook == .xdp ? .xdp : .tc
        do {
            try droplet.plug(LocalEndpoint(vni: vni, ip: ip, mac: mac, hostInterface: host, peer: peer, agentHook: hook))
        } catch {
            if created { _ = try? RouteSocket(in: droplet.netns).deleteLink(named: host) }
            throw error
        }
    }

    /// Unplugs the endpoint and, when transitd made its veth, deletes it (the peer goes with it).
    /// Either may be gone already.
    func unplug(_ spec: EndpointSpec, vni: VNI?) throws {
        if let vni, let ip = spec.ip { try droplet.unplug(EndpointID(vni: vni, ip: ip)) }
        if spec.netns != nil, let host = spec.hostInterface {
            _ = try RouteSocket(in: droplet.netns).deleteLink(named: host)
        }
    }
}
