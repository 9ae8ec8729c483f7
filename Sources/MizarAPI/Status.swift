import MizarAddresses

/// `GET /v1/health`: whether the data plane is in place and the store is open.
public struct Health: Codable, Sendable, Hashable {
    /// True when every check passes.
    public var healthy: Bool
    /// Check name (`transitXDP`, `store`, `endpoints`, `reconcile`) to a short finding, starting "ok" when it passes.
    public var checks: [String: String]

    public init(healthy: Bool, checks: [String: String]) {
        self.healthy = healthy
        self.checks = checks
    }
}

/// `GET /v1/status`: the daemon, its droplet and how much it holds.
public struct DaemonStatus: Codable, Sendable, Hashable {
    public var version: String
    public var droplet: Droplet
    /// Resources of each kind in the store, by kind name.
    public var resources: [String: Int]
    /// Endpoints plugged on this droplet.
    public var localEndpoints: Int
    /// The chain of each hook.
    public var chains: [String: [String]]
    public var health: Health
    /// Cluster mode only: the cluster store as this transitd sees it.
    public var cluster: ClusterStatus?

    public init(version: String, droplet: Droplet, resources: [String: Int], localEndpoints: Int, chains: [String: [String]], health: Health,
                cluster: ClusterStatus? = nil) {
        self.version = version
        self.droplet = droplet
        self.resources = resources
        self.localEndpoints = localEndpoints
        self.chains = chains
        self.health = health
        self.cluster = cluster
    }
}

/// A transitd's view of the cluster store (docs/cluster.md).
public struct ClusterStatus: Codable, Sendable, Hashable {
    /// The etcd members' client URLs.
    public var etcd: [String]
    /// The last revision applied here.
    public var revision: Int64
    /// Droplets whose lease is alive.
    public var live: [String]
    /// True while this droplet's registration and lease are current.
    public var registered: Bool
    /// The most resources one API request may carry (each request is one etcd transaction).
    public var maxResourcesPerRequest: Int

    public init(etcd: [String], revision: Int64, live: [String], registered: Bool, maxResourcesPerRequest: Int) {
        self.etcd = etcd
        self.revision = revision
        self.live = live
        self.registered = registered
        self.maxResourcesPerRequest = maxResourcesPerRequest
    }
}

/// A plugin transitd knows: a built-in or one discovered in the plugin directory.
public struct PluginInfo: Codable, Sendable, Hashable {
    public var name: String
    public var version: String
    public var abi: UInt32
    public var hooks: [String]
    public var priority: Int
    public var object: String
    public var builtIn: Bool
    /// The plugin's maps: name, type, key and value sizes, entries.
    public var maps: [String]
    /// Hooks whose chain holds the plugin now.
    public var activeIn: [String]
    /// Its drop reasons' names by code ("1": "blocked-port"); the keys of its drops in `Counters`.
    public var reasons: [Int: String]?

    public init(name: String, version: String, abi: UInt32, hooks: [String], priority: Int, object: String, builtIn: Bool, maps: [String],
                activeIn: [String], reasons: [Int: String]? = nil) {
        self.name = name
        self.version = version
        self.abi = abi
        self.hooks = hooks
        self.priority = priority
        self.object = object
        self.builtIn = builtIn
        self.maps = maps
        self.activeIn = activeIn
        self.reasons = reasons
    }
}

/// `POST /v1/plugins/discover`: what a scan of the plugin directory registered and refused.
public struct DiscoverResult: Codable, Sendable, Hashable {
    public var registered: [String]
    public var errors: [String]

    public init(registered: [String], errors: [String]) {
        self.registered = registered
        self.errors = errors
    }
}

/// A packet and byte count.
public struct CounterValue: Codable, Sendable, Hashable {
    public var packets: UInt64
    public var bytes: UInt64

    public init(packets: UInt64, bytes: UInt64) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// `GET /v1/counters`: the data plane's counters, summed over CPUs; slots that are zero are left out.
public struct Counters: Codable, Sendable, Hashable {
    /// Transit XDP on the substrate interface, by slot name.
    public var transit: [String: CounterValue]
    /// The transit agents of every local endpoint, by slot name.
    public var agent: [String: CounterValue]
    /// Per hook, per plugin of its chain: verdict, and drop reason (its declared name, else
    /// `reasonN`), to count.
    public var plugins: [String: [String: [String: CounterValue]]]
    /// Per local endpoint (by name): `sent`, `received`, `dropped` and its drops by reason (the
    /// agent's slot names); zeros left out.
    public var endpoints: [String: [String: CounterValue]]?

    /// The verdicts among a plugin's counts (the rest are its drop reasons, counted beside `drop`).
    public static let pluginVerdicts = ["continue", "drop", "pass", "aborted"]

    public init(transit: [String: CounterValue], agent: [String: CounterValue], plugins: [String: [String: [String: CounterValue]]],
                endpoints: [String: [String: CounterValue]]? = nil) {
        self.transit = transit
        self.agent = agent
        self.plugins = plugins
        self.endpoints = endpoints
    }
}

/// A bouncer role: a droplet holding the endpoint table of a network.
public struct BouncerRole: Codable, Sendable, Hashable {
    public var network: String
    public var droplet: String
    public var local: Bool
    /// Cluster mode: whether the droplet's lease is alive (a lapsed one is left out of every table).
    public var live: Bool?
    /// Cluster mode: true while the droplet fills the network's endpoint table, before the network names it.
    public var pending: Bool?

    public init(network: String, droplet: String, local: Bool, live: Bool? = nil, pending: Bool? = nil) {
        self.network = network
        self.droplet = droplet
        self.local = local
        self.live = live
        self.pending = pending
    }
}

/// A divider role: a droplet routing between the networks of a VPC.
public struct DividerRole: Codable, Sendable, Hashable {
    public var vpc: String
    public var droplet: String
    public var local: Bool
    /// Cluster mode: whether the droplet's lease is alive.
    public var live: Bool?

    public init(vpc: String, droplet: String, local: Bool, live: Bool? = nil) {
        self.vpc = vpc
        self.droplet = droplet
        self.local = local
        self.live = live
    }
}

/// `GET /v1/endpoints/{name}/check`: transitd's look at a local endpoint as the kernel holds
/// it (what CNI CHECK asks): its veth, the interface inside its namespace with the MAC and
/// address, and the transit agent.
public struct EndpointCheck: Codable, Sendable, Hashable {
    /// True when nothing is missing.
    public var healthy: Bool
    /// What is missing or different, for a person; empty when healthy.
    public var problems: [String]
    /// True when the endpoint's namespace (or, without one, its veth) is gone: the container is.
    public var gone: Bool

    public init(healthy: Bool, problems: [String], gone: Bool = false) {
        self.healthy = healthy
        self.problems = problems
        self.gone = gone
    }
}
