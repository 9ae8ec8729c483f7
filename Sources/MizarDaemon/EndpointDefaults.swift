import Foundation
import MizarAPI
import MizarCluster
import MizarNet

/// Fills in and checks an endpoint's spec against the desired state: its droplet, address,
/// MAC and veth names.
struct EndpointDefaults {
    let localDroplet: String
    /// The droplet's own interface: never an endpoint's.
    let substrate: String
    /// The droplet's own namespace: never an endpoint's.
    let dropletNetns: Netns
    let state: DesiredState
    /// Cluster mode: an endpoint's local details (namespace, veths) are given only to its own droplet's transitd.
    var clustered = false

    /// `existing` is the endpoint's stored spec: what a change leaves out (its address, MAC,
    /// veth names) stays as it was, unless the endpoint moves to another network.
    func fill(_ given: EndpointSpec, name: String, existing: EndpointSpec? = nil) throws -> EndpointSpec {
        var spec = given
        if let old = existing {
            if spec.network == old.network { spec.ip = spec.ip ?? old.ip }
            if spec.droplet ?? localDroplet == old.droplet {
                spec.mac = spec.mac ?? old.mac
                spec.bandwidth = spec.bandwidth ?? old.bandwidth
                spec.portMappings = spec.portMappings ?? old.portMappings
                if spec.netns == nil || spec.netns == old.netns {
                    spec.interface = spec.interface ?? old.interface
                    spec.hostInterface = spec.hostInterface ?? old.hostInterface
                }
            }
        }
        guard let network = state.networks[spec.network] else { throw APIError(.invalid, "endpoint \(name): no network \(spec.network)", details: ["missing": "Network/\(spec.network)"]) }
        let cidr = network.spec.cidr
        spec.droplet = spec.droplet ?? localDroplet
        guard state.droplets[spec.droplet!] != nil else {
            throw APIError(.invalid, "endpoint \(name): no droplet \(spec.droplet!)", details: ["missing": "Droplet/\(spec.droplet!)"])
        }
        let local = spec.droplet == localDroplet

        if let ip = spec.ip {
            guard cidr.contains(.host(ip)) else {
                throw APIError(.invalid, "endpoint \(name): \(ip) is outside network \(spec.network) (\(cidr))")
            }
            guard ip != cidr.address, ip != cidr.broadcast, ip != cidr.gateway else {
                throw APIError(.invalid, "endpoint \(name): \(ip) is the network, gateway or broadcast address of \(cidr)")
            }
            if let holder = state.endpointByAddress[.init(vpc: network.spec.vpc, ip: ip)], holder != name {
                throw APIError(.conflict, "endpoint \(name): \(ip) belongs to endpoint \(holder) in VPC \(network.spec.vpc)",
                               details: ["conflict": "Endpoint/\(holder)"])
            }
        } else {
            spec.ip = try allocate(in: network)
        }

        if let mac = spec.mac, mac.isMulticast || mac.value == 0 { throw APIError(.invalid, "endpoint \(name): \(mac) is not a unicast MAC") }
        if clustered, !local, given.netns != nil || given.interface != nil || given.hostInterface != nil || given.agentHook != nil {
            throw APIError(.invalid, "endpoint \(name): netns, interface, hostInterface and agentHook are droplet \(spec.droplet!)'s to check: "
                           + "create the endpoint through its transitd (docs/cluster.md)")
        }
        guard local else {
            // netns, interface, hostInterface and agentHook concern the hosting droplet only: one
            // manifest serves every droplet, each takes what is its own.
            // Its address is the hosting droplet's to allocate: another droplet cannot pick it.
            guard given.ip != nil || existing?.ip != nil, spec.mac != nil else {
                throw APIError(.invalid, "endpoint \(name): an endpoint of droplet \(spec.droplet!) needs its ip and mac")
            }
            return spec
        }
        spec.mac = spec.mac ?? .random()
        spec.agentHook = spec.agentHook ?? .tc
        if let netns = spec.netns {
            guard netns.hasPrefix("/") else { throw APIError(.invalid, "endpoint \(name): netns must be an absolute path (/proc/PID/ns/net, /run/netns/NAME)") }
            let namespace: Netns
            do { namespace = try Netns(netns) } catch { throw APIError(.invalid, "endpoint \(name): no network namespace at \(netns)") }
            if let here = try? dropletNetns.identity, let there = try? namespace.identity, here == there {
                throw APIError(.invalid, "endpoint \(name): \(netns) is the droplet's own namespace, not a container's")
            }
            spec.interface = spec.interface ?? "eth0"
            spec.hostInterface = spec.hostInterface ?? EndpointDefaults.hostInterface(for: name)
        } else {
            guard spec.hostInterface != nil else {
                throw APIError(.invalid, "endpoint \(name): a local endpoint needs netns (transitd makes its veth) or hostInterface (an existing veth)")
            }
            guard spec.interface == nil else { throw APIError(.invalid, "endpoint \(name): interface goes with netns") }
        }
        for ifname in [spec.interface, spec.hostInterface].compactMap({ $0 }) {
            guard ifname.utf8.count <= 15, !ifname.isEmpty, !ifname.contains("/"), ifname.allSatisfy({ !$0.isWhitespace }) else {
                throw APIError(.invalid, "endpoint \(name): \"\(ifname)\" is not an interface name (1-15 characters, no '/' or spaces)")
            }
        }
        guard spec.hostInterface != substrate, spec.hostInterface != "lo" else {
            throw APIError(.invalid, "endpoint \(name): \(spec.hostInterface!) is the droplet's own interface")
        }
        if let other = state.endpointByHostInterface[localDroplet + "/" + spec.hostInterface!], other != name {
            throw APIError(.conflict, "endpoint \(name): host interface \(spec.hostInterface!) serves endpoint \(other)")
        }
        return spec
    }

    /// The lowest free address of the network after its gateway. In cluster mode, the lowest
    /// free address of this droplet's blocks; then of a block nobody claimed (the commit claims
    /// it), looked for from a place this droplet's name hashes to, so that droplets filling up
    /// at once claim different blocks rather than race for the lowest; then, every block
    /// claimed, of anyone's from that place on (borrowed).
    private func allocate(in network: MizarAPI.Network) throws -> IPv4Address {
        let cidr = network.spec.cidr
        func free(_ ip: IPv4Address) -> Bool { state.endpointByAddress[.init(vpc: network.spec.vpc, ip: ip)] == nil }
        if let blocks = state.blocks {
            let claimed = blocks[network.name] ?? [:]
            for base in claimed.filter({ $0.value == localDroplet }).keys.sorted() {
                if let ip = AddressBlocks.usable(base, in: cidr).first(where: free) { return ip }
            }
            let bases = AddressBlocks.bases(of: cidr), start = Int(FNV1a.hash(localDroplet.utf8) % UInt64(bases.count))
            let mine = bases[start...] + bases[..<start]
            for base in mine where claimed[base] == nil {
                if let ip = AddressBlocks.usable(base, in: cidr).first(where: free) { return ip }
            }
            // Every block claimed: borrowed from the same place on, not raced for from the bottom.
            for base in mine {
                if let ip = AddressBlocks.usable(base, in: cidr).first(where: free) { return ip }
            }
            throw APIError(.exhausted, "network \(network.name) (\(cidr)) has no free address")
        }
        var candidate = cidr.gateway.value + 1
        while candidate < cidr.broadcast.value {
            let ip = IPv4Address(value: candidate)
            if state.endpointByAddress[.init(vpc: network.spec.vpc, ip: ip)] == nil { return ip }
            candidate += 1
        }
        throw APIError(.exhausted, "network \(network.name) (\(cidr)) has no free address")
    }

    /// `mz` and 10 hex digits of a hash of the endpoint's name (FNV-1a): stable, 12 characters.
    static func hostInterface(for name: String) -> String { "mz" + FNV1a.hex(FNV1a.hash(name.utf8), digits: 10) }
}
