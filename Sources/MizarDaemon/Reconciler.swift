import Foundation
import Logging
import MizarAPI
import MizarDataplane
import MizarNet
import MizarPlugins

/// Drives one `MizarDataplane.Droplet` towards the desired state. It remembers what it has
/// applied, by resource name, so that a change is applied as the difference from that:
/// `sync` for the resources one request touched, `syncAll` for everything (at start, and
/// to retry after a failure). Every step is idempotent.
final class Reconciler {
    let droplet: MizarDataplane.Droplet
    let localName: String
    let wiring: EndpointWiring
    let logger: Logger
    /// What local endpoints ask of shaper and nat, folded into their configurations and the chains.
    let requests: EndpointPluginRequests

    private var vpcs: [String: MizarDataplane.VPC] = [:]
    private var networks: [String: MizarDataplane.Network] = [:]
    /// Local endpoints plugged, with the spec they were plugged with.
    private var locals: [String: EndpointSpec] = [:]
    /// Local endpoints in a namespace: whether its default route goes through them.
    private(set) var defaultRoutes: [String: Bool] = [:]
    /// Remote endpoints written to the bouncer table.
    private var remotes: [String: EndpointID] = [:]
    private var configs: [String: JSONValue] = [:]
    /// The droplet table as last written (nil: not yet, rewrite it whole).
    private var knownDroplets: Set<DropletAddress>?
    /// Resources written to (or removed from) the data plane so far: the log of a start, and
    /// in cluster mode whether a change reached this droplet's tables.
    private(set) var writes = 0

    init(droplet: MizarDataplane.Droplet, localName: String, logger: Logger) {
        self.droplet = droplet
        self.localName = localName
        self.wiring = EndpointWiring(droplet: droplet)
        self.logger = logger
        self.requests = EndpointPluginRequests(localDroplet: localName)
    }

    /// How many endpoints are plugged here.
    var localCount: Int { locals.count }

    /// Brings every resource in line with `desired`; returns what could not be, and why (and logs it).
    @discardableResult
    func syncAll(_ desired: DesiredState) -> [ResourceReference: String] {
        var refs = Set<ResourceReference>()
        for kind in Kind.allCases { refs.formUnion(desired.references(kind)) }
        for name in vpcs.keys { refs.insert(.init(kind: .vpc, name: name)) }
        for name in networks.keys { refs.insert(.init(kind: .network, name: name)) }
        for name in locals.keys { refs.insert(.init(kind: .endpoint, name: name)) }
        for name in remotes.keys { refs.insert(.init(kind: .endpoint, name: name)) }
        for name in EndpointPluginRequests.plugins.union(configs.keys) { refs.insert(.init(kind: .pluginConfig, name: name)) }
        for hook in chainHooks { refs.insert(.init(kind: .pluginChain, name: hook)) }
        // All at once (remote endpoints go in one batch); should that fail, one resource at a
        // time, so that one failure does not hold back the others.
        do {
            try sync(Array(refs), desired, expand: false)
            return [:]
        } catch {
            logger.warning("reconcile of everything failed; retrying resource by resource", metadata: ["error": "\(error)"])
        }
        return retry(order(refs, desired), desired)
    }

    /// Applies each resource on its own; returns those that still fail, and why.
    func retry(_ refs: [ResourceReference], _ desired: DesiredState) -> [ResourceReference: String] {
        var failures: [ResourceReference: String] = [:]
        for ref in refs {
            do { try sync([ref], desired, expand: false) } catch {
                logger.error("cannot apply \(ref)", metadata: ["error": "\(error)"])
                failures[ref] = "\(error)"
            }
        }
        return failures
    }

    /// `refs` in the order they must be applied (removals first).
    func ordered(_ refs: some Sequence<ResourceReference>, _ desired: DesiredState) -> [ResourceReference] { order(Set(refs), desired) }

    /// Applies the resources named (and those that depend on a droplet named) as `desired`
    /// has them; a resource `desired` lacks is taken away.
    func sync(_ refs: [ResourceReference], _ desired: DesiredState, expand: Bool = true) throws {
        var all = Set(refs)
        if expand {
            for ref in refs where ref.kind == .droplet {
                for r in desired.vpcs.values where r.spec.dividers?.contains(ref.name) == true { all.insert(r.reference) }
                for r in desired.networks.values where r.spec.bouncers?.contains(ref.name) == true { all.insert(r.reference) }
                for r in desired.endpoints.values where r.spec.droplet == ref.name { all.insert(r.reference) }
            }
            // A network whose bouncers changed changes which of its endpoints this droplet holds.
            for ref in refs where ref.kind == .network {
                for name in desired.endpointsByNetwork[ref.name] ?? [] { all.insert(.init(kind: .endpoint, name: name)) }
            }
        }
        // An endpoint that asks (or asked) something of shaper or nat changes their configuration and the chains.
        if all.contains(where: { $0.kind == .endpoint && EndpointPluginRequests.touched(desired.endpoints[$0.name]?.spec, locals[$0.name]) }) {
            for plugin in EndpointPluginRequests.plugins { all.insert(.init(kind: .pluginConfig, name: plugin)) }
            for hook in chainHooks { all.insert(.init(kind: .pluginChain, name: hook)) }
        }
        if all.contains(where: { $0.kind == .droplet }) { try syncKnownDroplets(desired) }
        var remoteBatch: [MizarDataplane.Endpoint] = []
        var remoteNames: [(String, EndpointID)] = []
        for ref in order(all, desired) {
            if ref.kind == .endpoint, let ep = desired.endpoints[ref.name], ep.spec.droplet != localName {
                // Remote endpoints are written together (one batch) after the removals.
                if let entry = try remoteEntry(ep, desired) {
                    remoteBatch.append(entry)
                    remoteNames.append((ep.name, entry.id))
                } else {
                    try removeRemote(ep.name)
                }
                try unplugLocal(ref.name)
                continue
            }
            try syncOne(ref, desired)
        }
        if !remoteBatch.isEmpty {
            for (name, id) in remoteNames where remotes[name] != nil && remotes[name] != id { try removeRemote(name) }
            try droplet.setEndpoints(remoteBatch)
            writes += remoteBatch.count
            for (name, id) in remoteNames { remotes[name] = id }
        }
    }

    /// Removals first (dependents before what they use), then additions in kind order.
    private func order(_ refs: Set<ResourceReference>, _ desired: DesiredState) -> [ResourceReference] {
        // Only the kind order matters (dependents go before what they use, and come after it).
        var gone = Array(repeating: [ResourceReference](), count: Kind.allCases.count), present = gone
        for ref in refs {
            if desired.contains(ref) { present[ref.kind.order].append(ref) } else { gone[ref.kind.order].append(ref) }
        }
        return Array(gone.reversed().joined()) + Array(present.joined())
    }

    private func address(of name: String, _ desired: DesiredState) throws -> DropletAddress {
        guard let d = desired.droplets[name] else { throw APIError(.invalid, "no droplet \(name)") }
        return DropletAddress(ip: d.spec.ip, mac: d.spec.mac)
    }

    /// The droplet table (who may send Geneve here) holds exactly the desired droplets.
    private func syncKnownDroplets(_ desired: DesiredState) throws {
        // A droplet whose lease lapsed leaves the table: direct paths towards it go with it.
        let addresses = Set(desired.droplets.values.filter { desired.isLive($0.name) }.map { DropletAddress(ip: $0.spec.ip, mac: $0.spec.mac) })
        guard addresses != knownDroplets else { return }
        try droplet.setKnownDroplets(Array(addresses))
        knownDroplets = addresses
        writes += 1
    }

    private func syncOne(_ ref: ResourceReference, _ desired: DesiredState) throws {
        switch ref.kind {
        case .droplet:
            break // The droplet table is written whole before the loop (syncKnownDroplets).
        case .vpc:
            if let r = desired.vpcs[ref.name] {
                let vpc = MizarDataplane.VPC(vni: r.spec.vni, dividers: try desired.alive(r.spec.dividers ?? []).map { try address(of: $0, desired) })
                if let old = vpcs[ref.name], old.vni != vpc.vni { try droplet.removeVPC(old.vni) }
                if vpcs[ref.name] != vpc {
                    try droplet.setVPC(vpc)
                    writes += 1
                }
                vpcs[ref.name] = vpc
            } else if let old = vpcs.removeValue(forKey: ref.name) {
                try droplet.removeVPC(old.vni)
            }
        case .network:
            if let r = desired.networks[ref.name], let vpc = desired.vpcs[r.spec.vpc] {
                let net = MizarDataplane.Network(vni: vpc.spec.vni, cidr: r.spec.cidr, bouncers: try desired.bouncers(of: r).map { try address(of: $0, desired) })
                if let old = networks[ref.name], old.id != net.id { try droplet.removeNetwork(old.id) }
                if networks[ref.name] != net {
                    try droplet.setNetwork(net)
                    writes += 1
                }
                networks[ref.name] = net
            } else if let old = networks.removeValue(forKey: ref.name) {
                try droplet.removeNetwork(old.id)
            }
        case .endpoint:
            if let ep = desired.endpoints[ref.name] {
                try removeRemote(ref.name)
                try plugLocal(ep, desired)
            } else {
                try unplugLocal(ref.name)
                try removeRemote(ref.name)
            }
        case .pluginConfig:
            if let config = try requests.configuration(of: ref.name, in: desired) {
                guard configs[ref.name] != config else { return }
                // A configure that fails may have written part of its maps: forget what was
                // there, so that putting the old configuration back rewrites it whole.
                configs[ref.name] = nil
                try droplet.plugins.configure(ref.name, try LivePluginCatalog.configuration(config, of: ref.name))
                configs[ref.name] = config
                writes += 1
            } else if let old = configs[ref.name] {
                // Empty every map the configuration filled (a generation switch for the built-ins);
                // forgotten only once done, so a clear that fails is tried again.
                try droplet.plugins.clearConfiguration(ref.name, try LivePluginCatalog.configuration(old, of: ref.name))
                configs[ref.name] = nil
            }
        case .pluginChain:
            guard let hook = PluginHook(rawValue: ref.name) else { return }
            let wanted = try requests.chain(ref.name, in: desired)
            // A chain an earlier process pinned runs until it is replaced by one built here.
            if droplet.plugins.chain(hook) != wanted || droplet.plugins.runsPinnedChain(hook) {
                try droplet.plugins.setChain(hook, wanted)
                writes += 1
            }
        }
    }

    // MARK: Endpoints

    /// The bouncer-table entry of a remote endpoint when this droplet bounces its network (or
    /// is about to) and the endpoint's droplet is alive.
    private func remoteEntry(_ ep: MizarAPI.Endpoint, _ desired: DesiredState) throws -> MizarDataplane.Endpoint? {
        guard let net = desired.networks[ep.spec.network], desired.bouncers(of: net, pending: true).contains(localName),
              let vpc = desired.vpcs[net.spec.vpc], let ip = ep.spec.ip, let mac = ep.spec.mac, let host = ep.spec.droplet, desired.isLive(host) else { return nil }
        return MizarDataplane.Endpoint(vni: vpc.spec.vni, ip: ip, mac: mac, droplet: try address(of: host, desired))
    }

    /// True when remote endpoint `name` is in this droplet's bouncer table.
    func holdsRemote(_ name: String) -> Bool { remotes[name] != nil }

    private func removeRemote(_ name: String) throws {
        guard let id = remotes[name] else { return }
        try droplet.removeEndpoint(id)
        remotes[name] = nil
        writes += 1
    }

    private func plugLocal(_ ep: MizarAPI.Endpoint, _ desired: DesiredState) throws {
        if let old = locals[ep.name] {
            guard old != ep.spec else { return }
            try unplugLocal(ep.name)
        }
        guard let net = desired.networks[ep.spec.network], let vpc = desired.vpcs[net.spec.vpc] else {
            throw APIError(.invalid, "endpoint \(ep.name): its network is not in place")
        }
        // Checked here too, not only at admission: in cluster mode the spec may come from etcd.
        if ep.spec.hostInterface == droplet.interface || ep.spec.hostInterface == "lo" {
            throw APIError(.invalid, "endpoint \(ep.name): \(ep.spec.hostInterface!) is the droplet's own interface")
        }
        if let path = ep.spec.netns, let here = try? droplet.netns.identity, let there = try? Netns(path).identity, here == there {
            throw APIError(.invalid, "endpoint \(ep.name): \(path) is the droplet's own namespace, not a container's")
        }
        defaultRoutes[ep.name] = try wiring.plug(ep.spec, name: ep.name, vni: vpc.spec.vni, cidr: net.spec.cidr)
        locals[ep.name] = ep.spec
        writes += 1
    }

    private func unplugLocal(_ name: String) throws {
        guard let old = locals[name] else { return }
        try wiring.unplug(old, name: name, vni: vniOf(old))
        locals[name] = nil
        defaultRoutes[name] = nil
    }

    /// Removes what a process killed mid-plug left half made (before `syncAll`, which plugs again).
    func pruneUnfinished(_ desired: DesiredState) throws -> Int {
        let veths = try wiring.pruneUnfinished(keeping: Set(desired.endpoints.values.compactMap(\.spec.hostInterface)))
        if !veths.isEmpty { logger.info("removed veths left half made", metadata: ["veths": "\(veths)"]) }
        return veths.count
    }

    /// Deletes table entries nobody asked for (left in pinned tables by an earlier process
    /// while the store changed); returns how many.
    func pruneStale() throws -> Int {
        var keep = Set(remotes.values)
        for spec in locals.values {
            if let vni = networks[spec.network]?.vni, let ip = spec.ip { keep.insert(EndpointID(vni: vni, ip: ip)) }
        }
        let veths = try wiring.pruneVeths(keeping: Set(locals.keys))
        if !veths.isEmpty { logger.info("removed veths of endpoints no longer wanted", metadata: ["veths": "\(veths)"]) }
        return try droplet.pruneTables(keepingEndpoints: keep) + veths.count
    }

    private func vniOf(_ spec: EndpointSpec) -> VNI? {
        networks[spec.network]?.vni
    }
}
