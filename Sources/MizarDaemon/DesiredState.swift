import MizarAPI

/// What the operator asked for, by kind and name, with the indexes validation needs.
/// The store holds the same resources; this is its in-memory form.
public struct DesiredState: Sendable {
    public private(set) var droplets: [String: MizarAPI.Droplet] = [:]
    public private(set) var vpcs: [String: MizarAPI.VPC] = [:]
    public private(set) var networks: [String: MizarAPI.Network] = [:]
    public private(set) var endpoints: [String: MizarAPI.Endpoint] = [:]
    public private(set) var pluginConfigs: [String: PluginConfig] = [:]
    public private(set) var chains: [String: PluginChain] = [:]

    /// An endpoint address inside a VPC (by the VPC's name).
    struct AddressKey: Hashable {
        var vpc: String
        var ip: IPv4Address
    }
    /// Which endpoint holds each address of each VPC.
    private(set) var endpointByAddress: [AddressKey: String] = [:]
    /// Endpoints of each network, by name.
    private(set) var endpointsByNetwork: [String: Set<String>] = [:]
    /// The endpoint each host-side veth of each droplet serves (`droplet/veth`).
    private(set) var endpointByHostInterface: [String: String] = [:]

    /// Cluster mode: each network's address blocks (by base address) and the droplet that
    /// claimed each; nil on one host, where a network is one pool.
    var blocks: [String: [UInt32: String]]?
    /// Cluster mode: droplets filling a network's endpoint table before they are named its bouncers.
    var pendingBouncers: [String: Set<String>] = [:]
    /// Cluster mode: the droplets whose lease is alive, once etcd has said; nil: every droplet
    /// counts as alive (one host, or etcd not reached since the start).
    var live: Set<String>?

    /// False for a droplet whose lease has lapsed: its roles and endpoints are out of every table.
    func isLive(_ droplet: String) -> Bool { live?.contains(droplet) ?? true }

    /// The live droplets of a role's list; all of them when none is.
    func alive(_ droplets: [String]) -> [String] {
        let live = droplets.filter(isLive)
        return live.isEmpty ? droplets : live
    }

    /// The droplets that bounce `network`, alive (named, or pending when `pending`). When
    /// none named is alive, all of them: their data planes may well forward on.
    func bouncers(of network: MizarAPI.Network, pending: Bool = false) -> [String] {
        var names = alive(network.spec.bouncers ?? [])
        if pending { names += (pendingBouncers[network.name] ?? []).sorted().filter { isLive($0) && !names.contains($0) } }
        return names
    }

    public init() {}

    /// The endpoint holding `ip` in the VPC of VNI `vni`, if any.
    func endpointName(vni: UInt32, ip: IPv4Address) -> String? {
        guard let vpc = vpcs.first(where: { $0.value.spec.vni.rawValue == vni })?.key else { return nil }
        return endpointByAddress[AddressKey(vpc: vpc, ip: ip)]
    }

    /// The resource stored under `ref`, if any.
    public func resource(_ ref: ResourceReference) -> AnyResource? {
        switch ref.kind {
        case .droplet: droplets[ref.name].map(AnyResource.droplet)
        case .vpc: vpcs[ref.name].map(AnyResource.vpc)
        case .network: networks[ref.name].map(AnyResource.network)
        case .endpoint: endpoints[ref.name].map(AnyResource.endpoint)
        case .pluginConfig: pluginConfigs[ref.name].map(AnyResource.pluginConfig)
        case .pluginChain: chains[ref.name].map(AnyResource.pluginChain)
        }
    }

    /// True when a resource is stored under `ref` (cheaper than `resource(_:)`).
    public func contains(_ ref: ResourceReference) -> Bool {
        switch ref.kind {
        case .droplet: droplets[ref.name] != nil
        case .vpc: vpcs[ref.name] != nil
        case .network: networks[ref.name] != nil
        case .endpoint: endpoints[ref.name] != nil
        case .pluginConfig: pluginConfigs[ref.name] != nil
        case .pluginChain: chains[ref.name] != nil
        }
    }

    /// The references of every resource of `kind`, in no order.
    public func references(_ kind: Kind) -> [ResourceReference] {
        switch kind {
        case .droplet: return droplets.keys.map { .init(kind: kind, name: $0) }
        case .vpc: return vpcs.keys.map { .init(kind: kind, name: $0) }
        case .network: return networks.keys.map { .init(kind: kind, name: $0) }
        case .endpoint: return endpoints.keys.map { .init(kind: kind, name: $0) }
        case .pluginConfig: return pluginConfigs.keys.map { .init(kind: kind, name: $0) }
        case .pluginChain: return chains.keys.map { .init(kind: kind, name: $0) }
        }
    }

    /// Every resource of `kind`, sorted by name.
    public func list(_ kind: Kind) -> [AnyResource] {
        references(kind).sorted { $0.name < $1.name }.compactMap(resource)
    }

    public func count(_ kind: Kind) -> Int {
        switch kind {
        case .droplet: droplets.count
        case .vpc: vpcs.count
        case .network: networks.count
        case .endpoint: endpoints.count
        case .pluginConfig: pluginConfigs.count
        case .pluginChain: chains.count
        }
    }

    /// The VPC (by name) an endpoint's network belongs to.
    func vpcName(ofNetwork network: String) -> String? { networks[network]?.spec.vpc }

    /// Stores `resource`, replacing one of the same kind and name; returns what it replaced.
    @discardableResult
    public mutating func put(_ resource: AnyResource) -> AnyResource? {
        let previous = remove(resource.reference)
        switch resource {
        case .droplet(let r): droplets[r.name] = r
        case .vpc(let r): vpcs[r.name] = r
        case .network(let r): networks[r.name] = r
        case .endpoint(let r):
            endpoints[r.name] = r
            endpointsByNetwork[r.spec.network, default: []].insert(r.name)
            if let veth = r.spec.hostInterface, let droplet = r.spec.droplet { endpointByHostInterface[droplet + "/" + veth] = r.name }
            if let vpc = vpcName(ofNetwork: r.spec.network), let ip = r.spec.ip { endpointByAddress[AddressKey(vpc: vpc, ip: ip)] = r.name }
        case .pluginConfig(let r): pluginConfigs[r.name] = r
        case .pluginChain(let r): chains[r.name] = r
        }
        return previous
    }

    /// Removes the resource under `ref`; returns it (nil when there was none).
    @discardableResult
    public mutating func remove(_ ref: ResourceReference) -> AnyResource? {
        guard let previous = resource(ref) else { return nil }
        switch ref.kind {
        case .droplet: droplets[ref.name] = nil
        case .vpc: vpcs[ref.name] = nil
        case .network: networks[ref.name] = nil
        case .endpoint:
            if let r = endpoints.removeValue(forKey: ref.name) {
                if let veth = r.spec.hostInterface, let droplet = r.spec.droplet, endpointByHostInterface[droplet + "/" + veth] == r.name {
                    endpointByHostInterface[droplet + "/" + veth] = nil
                }
                endpointsByNetwork[r.spec.network]?.remove(r.name)
                if endpointsByNetwork[r.spec.network]?.isEmpty == true { endpointsByNetwork[r.spec.network] = nil }
                if let vpc = vpcName(ofNetwork: r.spec.network), let ip = r.spec.ip { endpointByAddress[AddressKey(vpc: vpc, ip: ip)] = nil }
            }
        case .pluginConfig: pluginConfigs[ref.name] = nil
        case .pluginChain: chains[ref.name] = nil
        }
        return previous
    }
}
