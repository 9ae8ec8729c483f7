import MizarAPI
import MizarNet

extension EndpointWiring {
    /// What the kernel holds of a local endpoint against what it should: the host veth (up,
    /// marked as this endpoint's, its agent attached) and, inside the namespace, the interface
    /// with the MAC and address. Routes are the namespace's (a second interface, a chained
    /// plugin may change them) and not judged here. `gone` when the namespace is.
    func inspect(_ spec: EndpointSpec, name: String, cidr: IPv4Interface) -> EndpointCheck {
        var problems: [String] = []
        guard let host = spec.hostInterface, let ip = spec.ip else { return EndpointCheck(healthy: false, problems: ["not admitted as a local endpoint"]) }
        do {
            let socket = try RouteSocket(in: droplet.netns)
            if let link = try? socket.link(named: host) {
                if !link.isUp { problems.append("veth \(host) is down") }
                if spec.netns != nil, link.alias != EndpointWiring.alias(of: name) { problems.append("\(host) is not marked as this endpoint's veth") }
            } else {
                problems.append("veth \(host) is missing")
            }
            if droplet.attachments[host] == nil { problems.append("no transit agent on \(host)") }
        } catch { problems.append("cannot read the droplet's links: \(error)") }
        if let path = spec.netns, let interface = spec.interface {
            guard let netns = try? Netns(path) else { return EndpointCheck(healthy: false, problems: problems + ["network namespace \(path) is gone"], gone: true) }
            do {
                let inside = try RouteSocket(in: netns)
                guard let link = try? inside.link(named: interface) else {
                    return EndpointCheck(healthy: false, problems: problems + ["no interface \(interface) in \(path)"], gone: true)
                }
                if !link.isUp { problems.append("\(interface) is down") }
                if let mac = spec.mac, link.mac != mac { problems.append("\(interface) has MAC \(link.mac.map { "\($0)" } ?? "none"), not \(mac)") }
                let address = cidr.with(address: ip)
                if try !inside.addresses(of: link.index).contains(address) { problems.append("\(interface) lacks \(address)") }

            } catch { problems.append("cannot read \(path): \(error)") }
        }
        return EndpointCheck(healthy: problems.isEmpty, problems: problems)
    }
}
