import Foundation
import MizarAPI
import MizarNAT
import MizarShaper

/// What local endpoints ask of plugins (`bandwidth`, `portMappings`: the CNI capabilities),
/// folded into what transitd writes: the configuration of `shaper` and `nat` is the stored
/// PluginConfig (if any) plus the endpoints' limits and forwards, and a chain is the stored
/// one plus those plugins where the requests need them. Derived, never stored: deleting the
/// endpoint takes its part away.
struct EndpointPluginRequests {
    let localDroplet: String

    /// The plugins whose configuration endpoints can add to.
    static let plugins: Set<String> = ["shaper", "nat"]

    /// True when the spec asks anything of a plugin.
    static func asks(_ spec: EndpointSpec?) -> Bool {
        guard let spec else { return false }
        return (spec.bandwidth.map { $0.ingressRate != nil || $0.egressRate != nil } ?? false) || !(spec.portMappings ?? []).isEmpty
    }

    /// True when changing an endpoint from `old` to `new` (either nil: created, deleted)
    /// changes what the plugins are asked.
    static func touched(_ new: EndpointSpec?, _ old: EndpointSpec?) -> Bool { asks(new) || asks(old) }

    /// The configuration to write for `plugin`: nil when neither a PluginConfig nor an endpoint gives one.
    func configuration(of plugin: String, in state: DesiredState) throws -> JSONValue? {
        let stored = state.pluginConfigs[plugin]?.spec.config
        switch plugin {
        case "shaper":
            let limits = shaperLimits(state)
            guard !limits.isEmpty else { return stored }
            var config = try stored.map { try decode(Shaper.Config.self, $0) } ?? Shaper.Config(limits: [])
            config.limits += limits
            return try encode(config)
        case "nat":
            let forwards = try natForwards(state)
            guard !forwards.isEmpty else { return stored }
            guard let droplet = state.droplets[localDroplet] else { return stored }
            var config = try stored.map { try decode(NAT.Config.self, $0) } ?? NAT.Config(externalIP: droplet.spec.ip.description)
            config.forwards += forwards
            return try encode(config)
        default:
            return stored
        }
    }

    /// The plugins of `hook`'s chain: the stored chain, then `shaper` where a limit of that
    /// direction needs it and `nat` (egress and ingress) when a port is forwarded.
    func chain(_ hook: String, in state: DesiredState) throws -> [String] {
        var plugins = state.chains[hook]?.spec.plugins ?? []
        if !plugins.contains("shaper"), shaperLimits(state).contains(where: { $0.direction.rawValue == hook }) { plugins.append("shaper") }
        if hook != "transit", !plugins.contains("nat"), try !natForwards(state).isEmpty { plugins.append("nat") }
        return plugins
    }

    /// Refuses requests the plugins would: a port forwarded twice, a rate out of range, a
    /// mapping on another address (checked on the whole state, after a request is admitted).
    func check(_ state: DesiredState, catalog: any PluginCatalog) throws {
        var owners: [String: String] = [:]
        for endpoint in localEndpoints(state) {
            for mapping in endpoint.spec.portMappings ?? [] {
                let key = "\(mapping.protocol ?? "tcp")/\(mapping.hostPort)"
                if let other = owners[key] {
                    throw APIError(.conflict, "endpoint \(endpoint.name): \(key) is already forwarded to endpoint \(other)", details: ["conflict": "Endpoint/\(other)"])
                }
                owners[key] = endpoint.name
            }
        }
        for plugin in Self.plugins {
            guard let config = try configuration(of: plugin, in: state), config != state.pluginConfigs[plugin]?.spec.config else { continue }
            guard catalog.hooks(of: plugin) != nil else { throw APIError(.invalid, "endpoints ask for plugin \(plugin), which is not registered") }
            do { try catalog.check(config: config, of: plugin) } catch let error as APIError {
                throw APIError(.invalid, "what the endpoints ask of \(plugin) is refused: \(error.message)")
            }
        }
    }

    // MARK: Derivation

    private func localEndpoints(_ state: DesiredState) -> [MizarAPI.Endpoint] {
        state.endpoints.values.filter { $0.spec.droplet == localDroplet && Self.asks($0.spec) }.sorted { $0.name < $1.name }
    }

    private func vni(of endpoint: MizarAPI.Endpoint, _ state: DesiredState) -> VNI? {
        state.networks[endpoint.spec.network].flatMap { state.vpcs[$0.spec.vpc]?.spec.vni }
    }

    /// CNI's bandwidth: rates in bit/s, bursts in bits; the shaper's bursts are bytes, at least 64 KiB.
    private func shaperLimits(_ state: DesiredState) -> [Shaper.Limit] {
        localEndpoints(state).flatMap { endpoint -> [Shaper.Limit] in
            guard let bandwidth = endpoint.spec.bandwidth, let vni = vni(of: endpoint, state), let ip = endpoint.spec.ip else { return [] }
            let directions: [(Shaper.Direction, UInt64?, UInt64?)] = [(.egress, bandwidth.egressRate, bandwidth.egressBurst),
                                                                      (.ingress, bandwidth.ingressRate, bandwidth.ingressBurst)]
            return directions.compactMap { direction, rate, burst in
                rate.map { Shaper.Limit(vpc: vni.rawValue, endpoint: ip.description, direction: direction, bitsPerSecond: $0,
                                        burstBytes: max(Shaper.minimumBurst, (burst ?? 0) / 8)) }
            }
        }
    }

    private func natForwards(_ state: DesiredState) throws -> [NAT.Forward] {
        let dropletIP = state.droplets[localDroplet]?.spec.ip.description
        return try localEndpoints(state).flatMap { endpoint -> [NAT.Forward] in
            guard let vni = vni(of: endpoint, state), let ip = endpoint.spec.ip else { return [] }
            return try (endpoint.spec.portMappings ?? []).map { mapping in
                guard let proto = NAT.IPProtocol(rawValue: mapping.protocol ?? "tcp") else {
                    throw APIError(.invalid, "endpoint \(endpoint.name): port mapping protocol \(mapping.protocol ?? "") is neither tcp nor udp")
                }
                if let hostIP = mapping.hostIP, !["", "0.0.0.0", dropletIP].contains(hostIP) {
                    throw APIError(.invalid, "endpoint \(endpoint.name): port mappings forward on the droplet's address \(dropletIP ?? "?"), not \(hostIP)")
                }
                if proto == .udp, mapping.hostPort == 6081 {
                    throw APIError(.invalid, "endpoint \(endpoint.name): udp 6081 is the overlay's Geneve port, never forwarded")
                }
                return NAT.Forward(protocol: proto, port: mapping.hostPort, vpc: vni.rawValue, endpoint: ip.description, endpointPort: mapping.containerPort)
            }
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue) throws -> T { try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(value)) }
    private func encode<T: Encodable>(_ value: T) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value)) }
}
