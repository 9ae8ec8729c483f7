import Foundation
import MizarAPI
import MizarCluster
import MizarNet

/// What admission needs to know of the plugins: the hooks each runs at and whether a
/// configuration is one it accepts.
public protocol PluginCatalog: Sendable {
    /// The hooks of a registered plugin; nil when none of that name is registered.
    func hooks(of plugin: String) -> [String]?
    /// Throws `APIError(.invalid, ...)` when `config` is not a configuration `plugin` accepts.
    func check(config: JSONValue, of plugin: String) throws
}

/// Validates requests against the whole desired state and applies them to it: defaults are
/// filled in (dividers, bouncers, addresses, MACs, veth names), references checked, and
/// every change recorded so that a later failure can put back exactly what was there.
struct Admission {
    let localDroplet: String
    /// The droplet's substrate interface (no endpoint may claim it).
    let substrate: String
    /// The droplet's own namespace (no endpoint may be plugged into it).
    let dropletNetns: Netns
    let catalog: any PluginCatalog
    /// Cluster mode: bouncers and dividers left out are placed over the live droplets.
    var clustered = false

    /// What one admitted request changed: the resources before, in order, to undo it.
    struct Changes {
        var items: [ApplyResult.Item] = []
        var previous: [(ResourceReference, AnyResource?)] = []
        var upserts: [AnyResource] = []
        var deletes: [ResourceReference] = []
        var refs: [ResourceReference] { previous.map(\.0) }
    }

    /// Applies `request` to `state`: deletes first (dependents before what they use), then
    /// upserts (what others use first). On the first problem `state` is restored and the
    /// error thrown.
    func admit(_ request: ApplyRequest, to state: inout DesiredState) throws -> Changes {
        var changes = Changes()
        do {
            let names = request.apply.map(\.reference)
            guard Set(names).count == names.count else {
                let dup = Dictionary(grouping: names, by: { $0 }).first { $0.value.count > 1 }!.key
                throw APIError(.invalid, "\(dup) is given twice in one request")
            }
            for ref in request.delete.sorted(by: { $0.kind > $1.kind }) {
                guard let gone = try admitDelete(ref, in: state) else {
                    changes.items.append(.init(reference: ref, action: "unchanged"))
                    continue
                }
                changes.previous.append((ref, gone))
                changes.deletes.append(ref)
                state.remove(ref)
                changes.items.append(.init(reference: ref, action: "deleted"))
            }
            for resource in request.apply.sorted(by: { $0.kind < $1.kind }) {
                if let problem = ObjectMeta.problem(with: resource.name) { throw APIError(.invalid, "\(resource.reference): \(problem)") }
                let existing = state.resource(resource.reference)
                let admitted = try normalize(resource, existing: existing, in: state)
                if admitted == existing {
                    changes.items.append(.init(reference: resource.reference, action: "unchanged"))
                    continue
                }
                changes.previous.append((resource.reference, state.put(admitted)))
                changes.upserts.append(admitted)
                changes.items.append(.init(reference: resource.reference, action: existing == nil ? "created" : "configured"))
            }
            // What endpoints ask of plugins is checked on the state as the request leaves it.
            if changes.previous.contains(where: { ref, old in
                (ref.kind == .endpoint && EndpointPluginRequests.touched(state.endpoints[ref.name]?.spec, old?.endpointSpec))
                    || (ref.kind == .pluginConfig && EndpointPluginRequests.plugins.contains(ref.name))
            }) {
                try EndpointPluginRequests(localDroplet: localDroplet).check(state, catalog: catalog)
            }
        } catch {
            undo(changes, in: &state)
            throw error
        }
        return changes
    }

    /// Puts back what `changes` replaced or removed, newest first.
    func undo(_ changes: Changes, in state: inout DesiredState) {
        for (ref, previous) in changes.previous.reversed() {
            if let previous { state.put(previous) } else { state.remove(ref) }
        }
    }

    // MARK: Deletes

    /// The resource a delete removes (nil when already gone), or why it may not go.
    private func admitDelete(_ ref: ResourceReference, in state: DesiredState) throws -> AnyResource? {
        guard let existing = state.resource(ref) else { return nil }
        switch ref.kind {
        case .droplet:
            guard ref.name != localDroplet else { throw APIError(.conflict, "droplet \(ref.name) is this transitd's own: it cannot be deleted") }
            if let vpc = state.vpcs.values.first(where: { $0.spec.dividers?.contains(ref.name) == true }) {
                throw APIError(.conflict, "droplet \(ref.name) divides VPC \(vpc.name)", details: ["referrer": "VPC/\(vpc.name)"])
            }
            if let net = state.networks.values.first(where: { $0.spec.bouncers?.contains(ref.name) == true }) {
                throw APIError(.conflict, "droplet \(ref.name) bounces network \(net.name)", details: ["referrer": "Network/\(net.name)"])
            }
            if let ep = state.endpoints.values.first(where: { $0.spec.droplet == ref.name }) {
                throw APIError(.conflict, "droplet \(ref.name) hosts endpoint \(ep.name)", details: ["referrer": "Endpoint/\(ep.name)"])
            }
        case .vpc:
            if let net = state.networks.values.first(where: { $0.spec.vpc == ref.name }) {
                throw APIError(.conflict, "VPC \(ref.name) still has network \(net.name): delete its networks first", details: ["referrer": "Network/\(net.name)"])
            }
        case .network:
            if let ep = state.endpointsByNetwork[ref.name]?.first {
                throw APIError(.conflict, "network \(ref.name) still has endpoint \(ep): delete its endpoints first", details: ["referrer": "Endpoint/\(ep)"])
            }
        case .endpoint, .pluginConfig, .pluginChain:
            break
        }
        return existing
    }

    // MARK: Upserts

    /// The resource as it will be stored (defaults filled in), or why it is refused.
    private func normalize(_ resource: AnyResource, existing: AnyResource?, in state: DesiredState) throws -> AnyResource {
        switch resource {
        case .droplet(var r):
            r.status = nil
            if r.name == localDroplet, case .droplet(let mine)? = existing, mine.spec != r.spec {
                throw APIError(.conflict, "droplet \(r.name) is this transitd's own: its address comes from its interface")
            }
            if clustered, case .droplet(let theirs)? = existing, theirs.spec != r.spec {
                throw APIError(.conflict, "droplet \(r.name) registers itself in the cluster: its address comes from its own transitd")
            }
            if let other = state.droplets.values.first(where: { $0.name != r.name && $0.spec.ip == r.spec.ip }) {
                throw APIError(.conflict, "droplet \(other.name) already has IP \(r.spec.ip)")
            }
            if r.spec.mac.isMulticast || r.spec.mac.value == 0 { throw APIError(.invalid, "droplet \(r.name): \(r.spec.mac) is not a unicast MAC") }
            if let why = unusable(r.spec.ip) { throw APIError(.invalid, "droplet \(r.name): \(r.spec.ip) is \(why)") }
            return .droplet(r)
        case .vpc(var r):
            r.status = nil
            if clustered, r.spec.dividers == nil {
                var old: VPCSpec?
                if case .vpc(let v)? = existing { old = v.spec }
                (r.spec.dividers, r.spec.dividerCount) = try place(r.spec.dividerCount, kept: old?.dividerCount == nil ? nil : old?.dividers,
                                                                   role: Placement.role(vpc: r.name), what: "VPC \(r.name)", in: state)
            }
            r.spec.dividers = r.spec.dividers ?? [localDroplet]
            try checkDroplets(r.spec.dividers!, role: "dividers", of: "VPC \(r.name)", in: state, allowNone: true)
            if let other = state.vpcs.values.first(where: { $0.name != r.name && $0.spec.vni == r.spec.vni }) {
                throw APIError(.conflict, "VNI \(r.spec.vni) belongs to VPC \(other.name)")
            }
            if case .vpc(let old)? = existing, old.spec.vni != r.spec.vni, let net = state.networks.values.first(where: { $0.spec.vpc == r.name }) {
                throw APIError(.conflict, "VPC \(r.name) has network \(net.name): its VNI cannot change")
            }
            return .vpc(r)
        case .network(var r):
            r.status = nil
            if clustered, r.spec.bouncers == nil {
                var old: NetworkSpec?
                if case .network(let n)? = existing { old = n.spec }
                (r.spec.bouncers, r.spec.bouncerCount) = try place(r.spec.bouncerCount, kept: old?.bouncerCount == nil ? nil : old?.bouncers,
                                                                   role: Placement.role(network: r.name), what: "network \(r.name)", in: state)
            }
            r.spec.bouncers = r.spec.bouncers ?? [localDroplet]
            guard state.vpcs[r.spec.vpc] != nil else { throw APIError(.invalid, "network \(r.name): no VPC \(r.spec.vpc)", details: ["missing": "VPC/\(r.spec.vpc)"]) }
            let cidr = r.spec.cidr
            guard (8...30).contains(cidr.prefixLength) else { throw APIError(.invalid, "network \(r.name): \(cidr) must be a /8 to /30") }
            guard cidr == cidr.network else { throw APIError(.invalid, "network \(r.name): \(cidr) has host bits set; did you mean \(cidr.network)?") }
            if let why = unusable(cidr.address) { throw APIError(.invalid, "network \(r.name): \(cidr) is \(why)") }
            try checkDroplets(r.spec.bouncers!, role: "bouncers", of: "network \(r.name)", in: state, allowNone: false)
            if let other = state.networks.values.first(where: { $0.name != r.name && $0.spec.vpc == r.spec.vpc && $0.spec.cidr.overlaps(cidr) }) {
                throw APIError(.conflict, "network \(r.name): \(cidr) overlaps network \(other.name) (\(other.spec.cidr)) of VPC \(r.spec.vpc)",
                               details: ["conflict": "Network/\(other.name)"])
            }
            if case .network(let old)? = existing, old.spec.vpc != r.spec.vpc || old.spec.cidr != cidr, state.endpointsByNetwork[r.name] != nil {
                throw APIError(.conflict, "network \(r.name) has endpoints: its VPC and CIDR cannot change")
            }
            return .network(r)
        case .endpoint(var r):
            r.status = nil
            var old: EndpointSpec?
            if case .endpoint(let e)? = existing {
                old = e.spec
                // A spec the endpoint already satisfies keeps what was filled in; labels are taken
                // as given, but the CNI plugin's own stay unless given (its GC and CHECK find the
                // attachment by them). A new spec replaces the attachment: its labels are the request's.
                if r.spec.isSatisfied(by: e.spec) {
                    var kept = e
                    kept.metadata = r.metadata
                    for (key, value) in e.metadata.labels ?? [:] where key.hasPrefix("cni.mizar.com/") && r.metadata.labels?[key] == nil {
                        kept.metadata.labels = (kept.metadata.labels ?? [:]).merging([key: value]) { $1 }
                    }
                    return .endpoint(kept)
                }
            }
            r.spec = try EndpointDefaults(localDroplet: localDroplet, substrate: substrate, dropletNetns: dropletNetns, state: state, clustered: clustered)
                .fill(r.spec, name: r.name, existing: old)
            return .endpoint(r)
        case .pluginConfig(var r):
            r.status = nil
            guard catalog.hooks(of: r.name) != nil else { throw APIError(.invalid, "no plugin \(r.name) is registered") }
            try catalog.check(config: r.spec.config, of: r.name)
            return .pluginConfig(r)
        case .pluginChain(var r):
            r.status = nil
            guard chainHooks.contains(r.name) else { throw APIError(.invalid, "no hook \(r.name): a chain is named egress, ingress or transit") }
            guard Set(r.spec.plugins).count == r.spec.plugins.count else { throw APIError(.invalid, "chain \(r.name) names a plugin twice") }
            for plugin in r.spec.plugins {
                guard let hooks = catalog.hooks(of: plugin) else { throw APIError(.invalid, "chain \(r.name): no plugin \(plugin) is registered") }
                guard hooks.contains(r.name) else { throw APIError(.invalid, "chain \(r.name): plugin \(plugin) runs only at \(hooks.joined(separator: ", "))") }
            }
            return .pluginChain(r)
        }
    }

    /// Why an address can be no droplet's and in no network: nil when it can.
    private func unusable(_ ip: IPv4Address) -> String? {
        switch ip.value >> 24 {
        case 0: "in 0.0.0.0/8 (this host)"
        case 127: "a loopback address"
        case 224...255: "a multicast or reserved address"
        default: nil
        }
    }

    /// A placed role's droplets: those placed before (the controller keeps them current), or
    /// the `count` (default 2) live droplets that weigh most for it.
    private func place(_ count: Int?, kept: [String]?, role: String, what: String, in state: DesiredState) throws -> ([String], Int) {
        let count = count ?? Placement.defaultCount
        guard (1...16).contains(count) else { throw APIError(.invalid, "\(what): a count of \(count); give 1 to 16") }
        if let kept, !kept.isEmpty { return (kept, count) }
        return (Placement.choose(count, of: state.droplets.keys.filter(state.isLive), for: role), count)
    }

    private func checkDroplets(_ names: [String], role: String, of what: String, in state: DesiredState, allowNone: Bool) throws {
        guard allowNone || !names.isEmpty else { throw APIError(.invalid, "\(what) needs at least one of \(role)") }
        guard names.count <= 16 else { throw APIError(.invalid, "\(what) has \(names.count) \(role); at most 16") }
        guard Set(names).count == names.count else { throw APIError(.invalid, "\(what) names a droplet twice among its \(role)") }
        for name in names where state.droplets[name] == nil {
            throw APIError(.invalid, "\(what): no droplet \(name) (\(role))", details: ["missing": "Droplet/\(name)"])
        }
    }
}
