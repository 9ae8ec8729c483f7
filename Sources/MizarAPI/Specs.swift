import MizarAddresses

/// A droplet: a host's substrate interface on the underlay. transitd creates its own at
/// start (`status.local`); the others are the droplets its VPCs and networks name as
/// dividers and bouncers, and that remote endpoints live on.
public struct DropletSpec: ResourceSpec {
    public static let kind = Kind.droplet
    public var ip: IPv4Address
    public var mac: MACAddress

    public init(ip: IPv4Address, mac: MACAddress) {
        self.ip = ip
        self.mac = mac
    }

    public struct Status: Codable, Sendable, Hashable {
        /// True for the droplet this transitd runs on (it cannot be changed or deleted).
        public var local: Bool
        public var interface: String?
        public var mtu: UInt32?
        /// How transit XDP is attached: `native` or `generic`.
        public var xdpMode: String?
        /// Cluster mode: true while the droplet's transitd keeps its lease in etcd alive.
        public var live: Bool?
        public init(local: Bool, interface: String? = nil, mtu: UInt32? = nil, xdpMode: String? = nil, live: Bool? = nil) {
            self.local = local
            self.interface = interface
            self.mtu = mtu
            self.xdpMode = xdpMode
            self.live = live
        }
    }
}

/// A tenant network (VPC): its VNI and the droplets that divide it (route between its networks).
public struct VPCSpec: ResourceSpec {
    public static let kind = Kind.vpc
    /// 1 to 16777215, unique among VPCs.
    public var vni: VNI
    /// Droplet names; omitted, this droplet divides the VPC (in cluster mode, the
    /// controller places `dividerCount` of them). At most 16.
    public var dividers: [String]?
    /// Cluster mode: how many live droplets divide the VPC, placed (and re-placed when
    /// droplets come and go) by mizar-controller; default 2 when `dividers` is omitted, 1 to 16.
    public var dividerCount: Int?

    public init(vni: VNI, dividers: [String]? = nil, dividerCount: Int? = nil) {
        self.vni = vni
        self.dividers = dividers
        self.dividerCount = dividerCount
    }
}

/// A subnet of a VPC and the droplets that bounce it (hold its endpoint table).
public struct NetworkSpec: ResourceSpec {
    public static let kind = Kind.network
    /// The VPC's name.
    public var vpc: String
    /// Host bits must be zero; /8 to /30; networks of one VPC may not overlap.
    public var cidr: IPv4Interface
    /// Droplet names; omitted, this droplet bounces the network (in cluster mode, the
    /// controller places `bouncerCount` of them). 1 to 16.
    public var bouncers: [String]?
    /// Cluster mode: how many live droplets bounce the network, placed (and re-placed when
    /// droplets come and go) by mizar-controller; default 2 when `bouncers` is omitted, 1 to 16.
    public var bouncerCount: Int?

    public init(vpc: String, cidr: IPv4Interface, bouncers: [String]? = nil, bouncerCount: Int? = nil) {
        self.vpc = vpc
        self.cidr = cidr
        self.bouncers = bouncers
        self.bouncerCount = bouncerCount
    }

    public struct Status: Codable, Sendable, Hashable {
        public var vni: VNI
        /// The address every endpoint of the network uses as its gateway (the first host address).
        public var gateway: IPv4Address
        public var endpoints: Int
        public init(vni: VNI, gateway: IPv4Address, endpoints: Int) {
            self.vni = vni
            self.gateway = gateway
            self.endpoints = endpoints
        }
    }
}

/// Where the transit agent of a local endpoint runs (docs/transit-agent.md).
public enum AgentHook: String, Codable, Sendable, CaseIterable {
    case tc, xdp
}

/// An endpoint: a VM or container interface in a network. A local one (on this droplet) is
/// plugged: transitd gives it a veth (created with its peer inside `netns` when that is
/// given), the transit agent and its table entries. A remote one is written only to the
/// tables this droplet's roles need (it bounces the endpoint's network).
public struct EndpointSpec: ResourceSpec {
    public static let kind = Kind.endpoint
    /// The network's name.
    public var network: String
    /// Omitted, transitd takes the lowest free address of the network (and keeps it).
    public var ip: IPv4Address?
    /// Omitted, a local endpoint gets a random locally administered address.
    public var mac: MACAddress?
    /// The droplet hosting it; omitted, this droplet.
    public var droplet: String?
    /// Local endpoints: the network namespace (a path such as `/proc/PID/ns/net` or
    /// `/run/netns/NAME`) in which transitd creates the endpoint's side of the veth.
    public var netns: String?
    /// Local endpoints: the name of the endpoint's side inside `netns` (default `eth0`).
    public var interface: String?
    /// Local endpoints: the host-side veth. With `netns`, the name transitd gives it
    /// (default `mz` + 10 hex digits of the endpoint's name); without, an existing veth to plug.
    public var hostInterface: String?
    /// Local endpoints: `tc` (default) or `xdp`.
    public var agentHook: AgentHook?
    /// Local endpoints: rate limits the `shaper` plugin keeps for this endpoint (the CNI
    /// capability `bandwidth`). transitd adds them to the shaper's configuration and the
    /// shaper to the chains that need it.
    public var bandwidth: EndpointBandwidth?
    /// Local endpoints: ports of this droplet the `nat` plugin forwards to the endpoint (the
    /// CNI capability `portMappings`); transitd adds them to nat's forwards and nat to both chains.
    public var portMappings: [EndpointPortMapping]?

    public init(network: String, ip: IPv4Address? = nil, mac: MACAddress? = nil, droplet: String? = nil, netns: String? = nil,
                interface: String? = nil, hostInterface: String? = nil, agentHook: AgentHook? = nil, bandwidth: EndpointBandwidth? = nil,
                portMappings: [EndpointPortMapping]? = nil) {
        self.network = network
        self.ip = ip
        self.mac = mac
        self.droplet = droplet
        self.netns = netns
        self.interface = interface
        self.hostInterface = hostInterface
        self.agentHook = agentHook
        self.bandwidth = bandwidth
        self.portMappings = portMappings
    }

    /// True when every field this spec gives equals `other`'s: a request that repeats what
    /// is stored (with the defaults transitd filled in) changes nothing.
    public func isSatisfied(by other: EndpointSpec) -> Bool {
        network == other.network && (ip == nil || ip == other.ip) && (mac == nil || mac == other.mac)
            && (droplet == nil || droplet == other.droplet) && (netns == nil || netns == other.netns)
            && (interface == nil || interface == other.interface) && (hostInterface == nil || hostInterface == other.hostInterface)
            && (agentHook == nil || agentHook == other.agentHook) && (bandwidth == nil || bandwidth == other.bandwidth)
            && (portMappings == nil || portMappings == other.portMappings)
    }

    public struct Status: Codable, Sendable, Hashable {
        public var vni: VNI
        public var local: Bool
        /// The address and prefix the endpoint has inside its namespace, and its gateway.
        public var address: IPv4Interface
        public var gateway: IPv4Address
        /// Local endpoints: the MTU of the veth (substrate MTU less the overlay's overhead).
        public var mtu: UInt32?
        /// Local endpoints: how the agent is attached (`tc`, `xdp native`, ...); nil while not plugged.
        public var attachment: String?
        /// Local endpoints in a namespace: true when the namespace's default route goes through
        /// this endpoint (a namespace's first interface gets it); nil while not plugged.
        public var defaultRoute: Bool?
        public init(vni: VNI, local: Bool, address: IPv4Interface, gateway: IPv4Address, mtu: UInt32? = nil, attachment: String? = nil,
                    defaultRoute: Bool? = nil) {
            self.vni = vni
            self.local = local
            self.address = address
            self.gateway = gateway
            self.mtu = mtu
            self.attachment = attachment
            self.defaultRoute = defaultRoute
        }
    }
}

/// Rate limits of an endpoint, in the CNI `bandwidth` capability's units: rates in bits per
/// second, bursts in bits. `ingress` is what the endpoint receives from other droplets,
/// `egress` what it sends. A direction without a rate is not limited.
public struct EndpointBandwidth: Codable, Sendable, Hashable {
    public var ingressRate: UInt64?
    public var ingressBurst: UInt64?
    public var egressRate: UInt64?
    public var egressBurst: UInt64?

    public init(ingressRate: UInt64? = nil, ingressBurst: UInt64? = nil, egressRate: UInt64? = nil, egressBurst: UInt64? = nil) {
        self.ingressRate = ingressRate
        self.ingressBurst = ingressBurst
        self.egressRate = egressRate
        self.egressBurst = egressBurst
    }
}

/// A port of the droplet forwarded to an endpoint (the CNI `portMappings` capability).
public struct EndpointPortMapping: Codable, Sendable, Hashable {
    /// The droplet's port (1-65535), unique per protocol among the droplet's mappings.
    public var hostPort: UInt16
    /// The endpoint's port.
    public var containerPort: UInt16
    /// `tcp` (default) or `udp`.
    public var `protocol`: String?
    /// Empty, `0.0.0.0` or the droplet's address: the nat plugin forwards on the droplet's address.
    public var hostIP: String?

    public init(hostPort: UInt16, containerPort: UInt16, protocol: String? = nil, hostIP: String? = nil) {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }
}

/// The plugin chain of one hook: its name is the hook (`egress` or `ingress`).
public struct PluginChainSpec: ResourceSpec {
    public static let kind = Kind.pluginChain
    /// Plugin names in the order frames cross them; empty for no chain.
    public var plugins: [String]

    public init(plugins: [String]) { self.plugins = plugins }
}

/// A plugin's configuration: its name is the plugin's, its spec the plugin's own document
/// (the built-ins' are in docs/plugins.md), kept as it was given.
public struct PluginConfigSpec: ResourceSpec {
    public static let kind = Kind.pluginConfig
    public var config: JSONValue

    public init(config: JSONValue) { self.config = config }

    public init(from decoder: any Decoder) throws { config = try JSONValue(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try config.encode(to: encoder) }
}

/// The hooks a chain may be set on.
public let chainHooks = ["egress", "ingress", "transit"]
