import Foundation
import Logging
import MizarAPI
import MizarBPF
import MizarCluster
import MizarDataplane
import MizarNet
import MizarNAT
import MizarPlugins

/// transitd's core: the desired state (store + memory), admission and the reconciler that
/// owns the droplet. One actor, so requests are applied one at a time, in order.
///
/// A change is admitted (validated, defaults filled), applied to the data plane, then
/// committed to the store; when the data plane refuses it, what was applied is put back
/// and nothing is stored. A request is acknowledged only after its commit. In cluster mode
/// the commit is an etcd transaction and the local store a cache (Daemon+Cluster.swift).
public actor Daemon {
    public static let version = mizarVersion

    public let config: DaemonConfig
    public let localName: String
    let store: Store
    /// Held for the daemon's life: one transitd per state directory.
    let lock: StateLock
    let dataplane: MizarDataplane.Droplet
    let reconciler: Reconciler
    let admission: Admission
    let logger: Logger
    var desired = DesiredState()
    /// Resources the data plane could not take, and why (retried by `retryFailures`).
    var failures: [ResourceReference: String] = [:]
    /// The `GET /v1/trace` that streams (one at a time), and how many were opened.
    var activeTrace: (id: UInt64, weak: WeakTrace)?
    var traceCount: UInt64 = 0
    /// Cluster mode: etcd and what this droplet has seen of it (nil: the local store alone).
    let cluster: ClusterLink?
    var clusterState = ClusterState()
    /// Cluster mode: what the change in flight has altered in `desired` while etcd has not
    /// committed it yet, each reference with what it was before. Reads answer with that, so
    /// nobody sees a change that may still be refused or undone.
    var uncommitted: [ResourceReference: AnyResource?] = [:]
    /// Cluster mode: changes wait on etcd, so they take turns explicitly (the actor alone would interleave them).
    let changes = AsyncMutex()
    /// transitd's own metrics (API requests, and in cluster mode etcd requests and pushes): one set for every listener.
    public nonisolated let metrics = APIMetrics()

    /// Opens the store, loads and attaches the data plane on the configured interface and
    /// registers the plugins; `start()` then reconciles. On the first start (an empty store) it creates VPC `vpc0` (VNI 1) and network
    /// `net0` (10.20.0.0/16) with this droplet as divider and bouncer.
    public init(config: DaemonConfig, logger: Logger) throws {
        guard let interface = config.interface, !interface.isEmpty else {
            throw APIError(.invalid, "no interface: give --interface IFNAME or `interface:` in the configuration file")
        }
        self.config = config
        self.logger = logger
        let name = config.name ?? ProcessInfo.processInfo.hostName.lowercased()
        if let problem = ObjectMeta.problem(with: name) { throw APIError(.invalid, "droplet name: \(problem) (give --name)") }
        localName = name
        lock = try StateLock(directory: config.stateDir)
        store = try Store(directory: config.stateDir, durable: config.etcd?.isEmpty ?? true)
        if let owner = try store.meta("droplet"), owner != name {
            throw APIError(.conflict, "\(config.stateDir) holds the state of droplet \(owner): start with --name \(owner), or give another --state-dir")
        }
        try store.setMeta("droplet", name)
        let hook: MizarDataplane.AgentHook = config.agentHook == .xdp ? .xdp : .tc
        let pins = try BPFPinDirectory(path: config.bpffs + "/" + interface)
        guard (0...86400).contains(config.directPathMaxAge) else { throw APIError(.invalid, "directPathMaxAge \(config.directPathMaxAge): give 0 to 86400 seconds") }
        dataplane = try MizarDataplane.Droplet(interface: interface, directPathMaxAge: .seconds(config.directPathMaxAge), agentHook: hook,
                                               locator: BPFObjectLocator(explicit: config.bpfDir), pins: pins, logger: logger)
        for builtIn in BuiltInPlugin.all.values.sorted(by: { $0.descriptor.name < $1.descriptor.name }) {
            try dataplane.plugins.register(builtIn.descriptor)
        }
        let (registered, errors) = dataplane.plugins.discover(in: PluginDirectory(config.pluginDir))
        for error in errors { logger.warning("plugin refused", metadata: ["error": "\(error)"]) }
        if !registered.isEmpty { logger.info("third-party plugins registered", metadata: ["plugins": "\(registered)"]) }
        reconciler = Reconciler(droplet: dataplane, localName: name, logger: logger)
        cluster = try ClusterLink(config: config, metrics: metrics)
        admission = Admission(localDroplet: name, substrate: interface, dropletNetns: dataplane.netns, catalog: LivePluginCatalog(chains: dataplane.plugins),
                              clustered: cluster != nil)
    }

    /// Loads the stored desired state and brings the kernel in line with it.
    public func start() async throws {
        let clock = ContinuousClock(), began = clock.now
        let stored = try store.load()
        let decoded = clock.now
        for resource in stored.sorted(by: { $0.kind < $1.kind }) { desired.put(resource) }
        // Cluster mode: etcd's state replaces the cache when etcd answers; else the cache serves until it does.
        if cluster != nil { await loadClusterSnapshot() }
        try bootstrap()
        if cluster != nil {
            try await refuseTakenName()
            await registerInCluster()
            await ensureClusterSecret()
        }
        let loaded = clock.now
        logger.debug("store loaded", metadata: ["decode": "\(decoded - began)", "index": "\(loaded - decoded)"])
        // Tables first (taken over from pins, they already hold all of it), then the
        // programs: the transit XDP link is updated in place, atomically.
        // A trace an earlier process left on (it died mid-stream) ends here.
        try? dataplane.setTracing(nil)
        let unfinished = try reconciler.pruneUnfinished(desired)
        failures = reconciler.syncAll(desired)
        let pruned = try reconciler.pruneStale() + unfinished
        try dataplane.attach()
        logger.info("transitd ready", metadata: [
            "store": "\(loaded - began)", "reconcile": "\(clock.now - loaded)",
            "adopted": "\(dataplane.adoptedTables)", "programs": dataplane.adoptedPrograms ? "adopted" : "loaded", "written": "\(reconciler.writes)", "pruned": "\(pruned)",
            "droplet": "\(localName)", "address": "\(dataplane.address)", "xdp": "\(dataplane.attachedMode.map { "\($0)" } ?? "-")",
            "endpoints": "\(desired.count(.endpoint))", "unapplied": "\(failures.count)",
        ])
    }

    /// Records this droplet (its address may have changed) and, on the first start, the default VPC and network.
    private func bootstrap() throws {
        let me = AnyResource.droplet(MizarAPI.Droplet(name: localName, spec: DropletSpec(ip: dataplane.address.ip, mac: dataplane.address.mac)))
        var request = ApplyRequest()
        if desired.resource(me.reference) != me {
            desired.remove(me.reference)
            request.apply.append(me)
        }
        // A cluster's VPCs and networks are the operator's: nothing is made for it.
        let first = try store.meta("initialized") == nil && cluster == nil
        if first {
            request.apply.append(.vpc(MizarAPI.VPC(name: "vpc0", spec: VPCSpec(vni: 1))))
            request.apply.append(.network(MizarAPI.Network(name: "net0", spec: NetworkSpec(vpc: "vpc0", cidr: IPv4Interface("10.20.0.0/16")!))))
        }
        let changes = try admission.admit(request, to: &desired)
        try store.commit(upserts: changes.upserts, deletes: changes.deletes)
        if first { try store.setMeta("initialized", ISO8601DateFormatter().string(from: Date())) }
    }

    // MARK: Changes

    /// Validates and applies a request: all of it or nothing.
    public func apply(_ request: ApplyRequest) async throws -> ApplyResult {
        if let cluster { return try await applyToCluster(request, cluster) }
        let changes = try admission.admit(request, to: &desired)
        guard !changes.previous.isEmpty else { return ApplyResult(items: changes.items) }
        do {
            try reconciler.sync(changes.refs, desired)
            try store.commit(upserts: changes.upserts, deletes: changes.deletes)
        } catch {
            rollBack(changes)
            throw APIError.from(error)
        }
        for ref in changes.refs { failures[ref] = nil }
        return ApplyResult(items: changes.items)
    }

    /// Takes a change the data plane or the store refused out of the desired state and the data plane.
    func rollBack(_ changes: Admission.Changes) {
        admission.undo(changes, in: &desired)
        do { try reconciler.sync(changes.refs, desired) } catch {
            logger.error("could not put back the data plane after a refused change", metadata: ["error": "\(error)"])
            for ref in changes.refs { failures[ref] = "\(error)" }
        }
    }

    /// Creates or replaces one resource; returns it as stored, with its status, and whether it
    /// was created. With `onlyIfAbsent` (HTTP `If-None-Match: *`), one that exists is left as
    /// it is: 412 `exists`.
    public func put(_ resource: AnyResource, onlyIfAbsent: Bool = false) async throws -> (AnyResource, created: Bool) {
        if onlyIfAbsent, committed(resource.reference) != nil {
            throw APIError(.exists, "\(resource.reference) exists", details: ["exists": "\(resource.kind.rawValue)/\(resource.name)"])
        }
        // Cluster mode checks again inside its turn, after catching up with any host that raced it.
        let request = ApplyRequest(apply: [resource])
        let result = if let cluster, onlyIfAbsent { try await applyToCluster(request, cluster, createOnly: true) } else { try await apply(request) }
        return (try get(resource.reference), result.items.first?.action == "created")
    }

    /// Retries, one by one, what the data plane could not take.
    public func retryFailures() {
        guard !failures.isEmpty else { return }
        failures = reconciler.retry(reconciler.ordered(failures.keys, desired), desired)
    }

    /// Frees NAT translations idle past their time (both halves at once), so that a full
    /// table empties as flows end; run every 10 seconds.
    public func sweepPluginState() {
        let chains = reconciler.droplet.plugins
        guard chains.descriptors.contains(where: { $0.name == NAT.descriptor.name }) else { return }
        do {
            let removed = try NAT.sweep(chains)
            if removed > 0 { logger.debug("nat translations swept", metadata: ["entries": "\(removed)"]) }
        } catch {
            logger.warning("nat sweep failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Reads

    public func get(_ ref: ResourceReference) throws -> AnyResource {
        guard let resource = committed(ref) else { throw APIError(.notFound, "no \(ref.kind.rawValue) \(ref.name)") }
        return withStatus(resource)
    }

    /// Every resource of `kind` as committed, sorted by name.
    public func list(_ kind: Kind) -> [AnyResource] {
        guard uncommitted.keys.contains(where: { $0.kind == kind }) else { return desired.list(kind).map(withStatus) }
        let pending = Set(uncommitted.keys)
        let committed = desired.list(kind).filter { !pending.contains($0.reference) } + uncommitted.filter { $0.key.kind == kind }.compactMap(\.value)
        return committed.sorted { $0.name < $1.name }.map(withStatus)
    }

    /// `ref` as committed: as it was before the change in flight, if that touches it.
    func committed(_ ref: ResourceReference) -> AnyResource? {
        if let before = uncommitted[ref] { return before }
        return desired.resource(ref)
    }

    /// The kernel's view of a local endpoint against its spec (CNI CHECK).
    public func check(endpoint name: String) throws -> EndpointCheck {
        guard case .endpoint(let endpoint)? = committed(ResourceReference(kind: .endpoint, name: name)) else { throw APIError(.notFound, "no endpoint \(name)") }
        guard endpoint.spec.droplet == localName, let net = desired.networks[endpoint.spec.network] else {
            throw APIError(.invalid, "endpoint \(name) is not on this droplet")
        }
        return EndpointWiring(droplet: dataplane).inspect(endpoint.spec, name: name, cidr: net.spec.cidr)
    }

    private func withStatus(_ resource: AnyResource) -> AnyResource {
        switch resource {
        case .droplet(var r):
            let local = r.name == localName
            r.status = DropletSpec.Status(local: local, interface: local ? dataplane.interface : nil, mtu: local ? dataplane.mtu : nil,
                                          xdpMode: local ? dataplane.attachedMode.map { "\($0)" } : nil,
                                          live: cluster == nil ? nil : clusterState.live.contains(r.name))
            return .droplet(r)
        case .network(var r):
            if let vpc = desired.vpcs[r.spec.vpc] {
                r.status = NetworkSpec.Status(vni: vpc.spec.vni, gateway: r.spec.cidr.gateway, endpoints: desired.endpointsByNetwork[r.name]?.count ?? 0)
            }
            return .network(r)
        case .endpoint(var r):
            if let net = desired.networks[r.spec.network], let vpc = desired.vpcs[net.spec.vpc], let ip = r.spec.ip {
                let local = r.spec.droplet == localName
                r.status = EndpointSpec.Status(vni: vpc.spec.vni, local: local, address: net.spec.cidr.with(address: ip),
                                               gateway: net.spec.cidr.gateway, mtu: local ? dataplane.endpointMTU : nil,
                                               attachment: local ? r.spec.hostInterface.flatMap { dataplane.attachments[$0] } : nil,
                                               defaultRoute: local ? reconciler.defaultRoutes[r.name] : nil)
            }
            return .endpoint(r)
        default:
            return resource
        }
    }

    public func bouncers() -> [BouncerRole] {
        let live = { (name: String) in self.cluster == nil ? nil : self.desired.isLive(name) }
        let networks = list(.network).compactMap { if case .network(let n) = $0 { n } else { nil } }
        return networks.flatMap { net in
            let named = net.spec.bouncers ?? []
            let pending = (desired.pendingBouncers[net.name] ?? []).subtracting(named).sorted()
            return named.map { BouncerRole(network: net.name, droplet: $0, local: $0 == localName, live: live($0), pending: cluster == nil ? nil : false) }
                + pending.map { BouncerRole(network: net.name, droplet: $0, local: $0 == localName, live: live($0), pending: true) }
        }
    }

    public func dividers() -> [DividerRole] {
        list(.vpc).compactMap { if case .vpc(let v) = $0 { v } else { nil } }.flatMap { vpc in
            (vpc.spec.dividers ?? []).map { DividerRole(vpc: vpc.name, droplet: $0, local: $0 == localName, live: cluster == nil ? nil : desired.isLive($0)) }
        }
    }

    public func health() -> Health {
        var checks: [String: String] = [:]
        // Asked of the kernel, not remembered: the interface or the program may be gone.
        let attached = try? dataplane.netns.perform { try XDP.query(ifindex: dataplane.ifindex) }
        if let attached, attached.programID != 0, attached.programID == (try? dataplane.transitProgram.id) {
            checks["transitXDP"] = "ok (\(attached.mode.map { "\($0)" } ?? "?"))"
        } else {
            checks["transitXDP"] = "transit XDP is not attached to \(dataplane.interface)"
        }
        do { _ = try store.count(); checks["store"] = "ok" } catch { checks["store"] = "\(error)" }
        if cluster != nil { checks["cluster"] = clusterHealth() }
        let links = Set(((try? RouteSocket(in: dataplane.netns).links()) ?? []).map(\.name))
        let plugged = Set(dataplane.localEndpoints.map(\.hostInterface)).intersection(links)
        let missing = desired.endpoints.values.filter { $0.spec.droplet == localName && !plugged.contains($0.spec.hostInterface ?? "") }
        checks["endpoints"] = missing.isEmpty ? "ok" : "\(missing.count) not plugged: \(missing.prefix(5).map(\.name).joined(separator: ", "))"
        checks["reconcile"] = failures.isEmpty ? "ok"
            : "\(failures.count) unapplied: " + failures.sorted { $0.key.description < $1.key.description }.prefix(3).map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        return Health(healthy: checks.values.allSatisfy { $0.hasPrefix("ok") }, checks: checks)
    }

    public func status() -> DaemonStatus {
        let me = (try? get(ResourceReference(kind: .droplet, name: localName))).flatMap { if case .droplet(let d) = $0 { d } else { nil } }
        var resources: [String: Int] = [:]
        for kind in Kind.allCases { resources[kind.rawValue] = desired.count(kind) }
        let chains = Dictionary(uniqueKeysWithValues: PluginHook.allCases.map { ($0.rawValue, dataplane.plugins.chain($0)) })
        let clusterStatus = cluster.map {
            ClusterStatus(etcd: $0.client.endpoints, revision: clusterState.revision, live: clusterState.live.sorted(), registered: clusterState.registered,
                          maxResourcesPerRequest: ClusterLink.maxResources)
        }
        return DaemonStatus(version: Daemon.version, droplet: me!, resources: resources, localEndpoints: reconciler.localCount,
                            chains: chains, health: health(), cluster: clusterStatus)
    }

    // MARK: Plugins and counters

    public func plugins() -> [PluginInfo] {
        dataplane.plugins.descriptors.sorted { $0.name < $1.name }.map { d in
            PluginInfo(name: d.name, version: d.version, abi: d.abi, hooks: d.hooks.map(\.rawValue), priority: d.priority, object: d.object,
                       builtIn: BuiltInPlugin.all[d.name] != nil,
                       maps: d.maps.map { "\($0.name) \($0.type) key=\($0.keySize) value=\($0.valueSize) entries=\($0.maxEntries)" },
                       activeIn: PluginHook.allCases.filter { dataplane.plugins.chain($0).contains(d.name) }.map(\.rawValue),
                       reasons: d.reasons.isEmpty ? nil : d.reasons)
        }
    }

    public func plugin(_ name: String) throws -> PluginInfo {
        guard let info = plugins().first(where: { $0.name == name }) else { throw APIError(.notFound, "no plugin \(name) is registered") }
        return info
    }

    /// Registers what the plugin directory holds that is not registered yet.
    public func discoverPlugins() -> DiscoverResult {
        let (registered, errors) = dataplane.plugins.discover(in: PluginDirectory(config.pluginDir))
        return DiscoverResult(registered: registered, errors: errors.map { "\($0)" })
    }

    public func counters() throws -> Counters {
        func values<S>(_ c: SlotCounters<S>) -> [String: CounterValue] {
            var out: [String: CounterValue] = [:]
            for slot in S.allCases where c[slot].packets > 0 { out["\(slot)"] = CounterValue(packets: c[slot].packets, bytes: c[slot].bytes) }
            return out
        }
        var plugins: [String: [String: [String: CounterValue]]] = [:]
        for hook in PluginHook.allCases {
            for name in dataplane.plugins.chain(hook) {
                let c = try dataplane.plugins.counters(name, at: hook)
                var out: [String: CounterValue] = [:]
                for v in PluginVerdict.allCases where c[v].packets > 0 { out["\(v)"] = CounterValue(packets: c[v].packets, bytes: c[v].bytes) }
                for (reason, r) in c.namedDrops { out[reason] = CounterValue(packets: r.packets, bytes: r.bytes) }
                plugins[hook.rawValue, default: [:]][name] = out
            }
        }
        var endpoints: [String: [String: CounterValue]] = [:]
        for (id, c) in try dataplane.endpointCounters() {
            var out: [String: CounterValue] = [:]
            for (key, value) in [("sent", c.sent), ("received", c.received), ("dropped", c.dropped)] where value.packets > 0 {
                out[key] = CounterValue(packets: value.packets, bytes: value.bytes)
            }
            for (slot, n) in c.drops where n > 0 { out["\(slot)"] = CounterValue(packets: n, bytes: 0) }
            endpoints[desired.endpointName(vni: id.vni.rawValue, ip: id.ip) ?? "\(id.vni.rawValue)/\(id.ip)"] = out
        }
        return Counters(transit: values(try dataplane.transitCounters()), agent: values(try dataplane.agentCounters()), plugins: plugins,
                        endpoints: endpoints)
    }

    // MARK: Exit

    /// Without `cleanup` nothing happens: maps, links and chains are pinned and the data
    /// plane runs on. With it, every endpoint (and the veths transitd made), the chains, the
    /// programs and the pins are taken away; the store keeps the desired state for the next start.
    public func shutdown() {
        // Veths retired by recent deletes go before the process does.
        defer { VethReaper.shared.drain() }
        guard config.cleanup else { return }
        var empty = DesiredState()
        if let me = desired.droplets[localName] { empty.put(.droplet(me)) }
        let refs = Kind.allCases.flatMap(desired.references)
        do {
            try reconciler.sync(refs, empty, expand: false)
            try dataplane.removeAll()
        } catch {
            logger.error("cleanup incomplete", metadata: ["error": "\(error)"])
        }
    }
}

/// An exclusive `flock` on `<state-dir>/transitd.lock`, held while the process lives: a second
/// transitd on the same state refuses to start before it touches anything.
final class StateLock: Sendable {
    private let fd: Int32

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        fd = open(directory + "/transitd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw APIError(.internal, "cannot open \(directory)/transitd.lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw APIError(.conflict, "another transitd runs on \(directory) (its transitd.lock is held)")
        }
    }

    deinit { close(fd) }
}
