import CMizarABI
import CMizarACL
import MizarBPF
import MizarNet
import MizarPlugins

/// The acl built-in plugin: stateful allow/deny rules per VPC, network, CIDRs, protocol,
/// ports and direction (docs/plugins.md#acl).
public enum ACL {
    public static let descriptor = PluginDescriptor(
        name: "acl", version: "1.0.0", object: ACL_OBJECT, entry: "acl", hooks: [.egress, .ingress, .transit], priority: 20,
        maps: [
            PluginMapDescriptor(name: ACL_RULES_MAP, type: "lpm_trie", key: acl_rules_key.self, value: acl_rule_list.self, maxEntries: UInt32(ACL_MAX_PREFIXES * ACL_GENERATIONS)),
            PluginMapDescriptor(name: ACL_ENDPOINTS_MAP, type: "hash", key: acl_endpoint_key.self, value: acl_endpoint_policy.self, maxEntries: UInt32(ACL_MAX_ENDPOINTS * ACL_GENERATIONS)),
            PluginMapDescriptor(name: ACL_CONNTRACK_MAP, type: "lru_hash", key: acl_flow_key.self, value: acl_flow.self, maxEntries: UInt32(ACL_CONNTRACK_SIZE)),
            PluginMapDescriptor(name: ACL_CONFIG_MAP, type: "array", key: UInt32.self, value: acl_config.self, maxEntries: 1),
        ],
        reasons: [Reason.rule.rawValue: "deny-rule", Reason.defaultPolicy.rawValue: "default-deny", Reason.truncated.rawValue: "truncated"])

    /// Drop reason codes in the plugin's counters.
    public enum Reason: Int, Sendable {
        case rule = 1, defaultPolicy = 2, truncated = 3
    }

    public enum Action: String, Codable, Sendable { case allow, deny }

    /// Traffic leaving an endpoint (egress hook) or arriving at it from the substrate (ingress hook).
    public enum Direction: String, Codable, Sendable, CaseIterable {
        case egress, ingress
        var c: UInt32 { self == .egress ? ACL_EGRESS.rawValue : ACL_INGRESS.rawValue }
    }

    public enum IPProtocol: String, Codable, Sendable {
        case any, tcp, udp, icmp
        var number: UInt8 {
            switch self {
            case .any: 0
            case .tcp: 6
            case .udp: 17
            case .icmp: 1
            }
        }
    }

    /// One rule. The first matching rule by priority (then by order given) decides.
    public struct Rule: Codable, Sendable, Hashable {
        /// Lower runs first.
        public var priority: Int
        public var vpc: UInt32
        /// The network (CIDR) of the endpoints the rule governs; nil for the whole VPC.
        public var network: String?
        public var direction: Direction
        public var source: String
        public var destination: String
        public var `protocol`: IPProtocol
        /// Destination ports for TCP/UDP, ICMP types for ICMP; nil for all.
        public var ports: ClosedRange<UInt16>?
        public var action: Action

        public init(priority: Int = 100, vpc: UInt32, network: String? = nil, direction: Direction, source: String = "0.0.0.0/0",
                    destination: String = "0.0.0.0/0", protocol: IPProtocol = .any, ports: ClosedRange<UInt16>? = nil, action: Action) {
            self.priority = priority
            self.vpc = vpc
            self.network = network
            self.direction = direction
            self.source = source
            self.destination = destination
            self.protocol = `protocol`
            self.ports = ports
            self.action = action
        }
    }

    /// An endpoint under policy, with what happens to traffic no rule matches. Endpoints
    /// without a policy are not filtered.
    public struct EndpointPolicy: Codable, Sendable, Hashable {
        public var vpc: UInt32
        public var ip: String
        public var defaultEgress: Action
        public var defaultIngress: Action

        public init(vpc: UInt32, ip: String, defaultEgress: Action = .allow, defaultIngress: Action = .deny) {
            self.vpc = vpc
            self.ip = ip
            self.defaultEgress = defaultEgress
            self.defaultIngress = defaultIngress
        }
    }

    /// The whole ACL of a droplet. Writing it replaces the rules and endpoint policies at
    /// once (a generation switch: no packet meets new rules beside old policies) and then
    /// forgets the flows allowed so far (they are judged again by the new rules).
    public struct Config: GenerationalConfiguration, Codable, Hashable {
        public var rules: [Rule]
        public var endpoints: [EndpointPolicy]
        /// Replies of an allowed flow pass while the flow was seen this recently (seconds).
        public var conntrackTimeoutSeconds: UInt32

        public init(rules: [Rule], endpoints: [EndpointPolicy], conntrackTimeoutSeconds: UInt32 = 300) {
            self.rules = rules
            self.endpoints = endpoints
            self.conntrackTimeoutSeconds = conntrackTimeoutSeconds
        }

        public func validate() throws {
            _ = try compile()
        }

        public var generationMap: String { ACL_CONFIG_MAP }

        public func generation(named value: [UInt8]) -> UInt32 { pluginField(value, at: MemoryLayout<acl_config>.offset(of: \.generation)!) }

        public func generation(ofKey key: [UInt8], in map: String) -> UInt32? {
            switch map {
            case ACL_RULES_MAP: pluginField(key, at: MemoryLayout<acl_rules_key>.offset(of: \.generation)!)
            case ACL_ENDPOINTS_MAP: pluginField(key, at: MemoryLayout<acl_endpoint_key>.offset(of: \.generation)!)
            default: nil
            }
        }

        public func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]] {
            let (lists, policies) = try compile(generation: generation)
            var config = acl_config()
            config.conntrack_timeout_ns = UInt64(conntrackTimeoutSeconds) * 1_000_000_000
            config.generation = generation
            return [
                ACL_RULES_MAP: lists.map { PluginMapEntry($0.key, $0.value) },
                ACL_ENDPOINTS_MAP: policies.map { PluginMapEntry($0.key, $0.value) },
                ACL_CONFIG_MAP: [PluginMapEntry(UInt32(0), config)],
                ACL_CONNTRACK_MAP: [],
            ]
        }

        /// Parses, checks and flattens the rules into the tables of include/acl.h.
        func compile(generation: UInt32 = 0) throws -> (lists: [(key: acl_rules_key, value: acl_rule_list)], policies: [(key: acl_endpoint_key, value: acl_endpoint_policy)]) {
            let parsed = try rules.enumerated().map { try CompiledRule($0.element, number: $0.offset) }
                .sorted { ($0.priority, $0.number) < ($1.priority, $1.number) }
            var lists: [(key: acl_rules_key, value: acl_rule_list)] = []
            let groups = Dictionary(grouping: parsed) { GroupKey(vpc: $0.vpc, direction: $0.direction) }
            for (group, members) in groups.sorted(by: { ($0.key.vpc, $0.key.direction.c) < ($1.key.vpc, $1.key.direction.c) }) {
                let byPrefix = Dictionary(grouping: members) { $0.remote }
                for prefix in byPrefix.keys.sorted(by: { ($0.address, $0.prefixLength) < ($1.address, $1.prefixLength) }) {
                    // Every rule whose remote CIDR holds this prefix: its ancestors' rules, and its own.
                    let covering = (0...prefix.prefixLength).flatMap { n in byPrefix[prefix.network(prefixLength: n)] ?? [] }
                        .sorted { ($0.priority, $0.number) < ($1.priority, $1.number) }
                    guard covering.count <= Int(ACL_MAX_RULES) else {
                        throw ConfigCheck("acl").fail("\(covering.count) rules of VPC \(group.vpc) \(group.direction) cover \(prefix); at most \(ACL_MAX_RULES) may overlap one remote prefix")
                    }
                    var key = acl_rules_key()
                    key.prefixlen = 96 + UInt32(prefix.prefixLength)
                    key.generation = generation & 1
                    key.vni = group.vpc
                    key.direction = group.direction.c
                    key.remote = prefix.address.networkOrder
                    var list = acl_rule_list()
                    list.count = UInt32(covering.count)
                    withUnsafeMutableBytes(of: &list.rules) { raw in
                        for (i, rule) in covering.enumerated() { raw.storeBytes(of: rule.c, toByteOffset: i * MemoryLayout<acl_rule>.stride, as: acl_rule.self) }
                    }
                    lists.append((key, list))
                }
            }
            let check = ConfigCheck("acl")
            guard lists.count <= Int(ACL_MAX_PREFIXES) else {
                throw check.fail("\(lists.count) distinct remote prefixes; the table holds \(ACL_MAX_PREFIXES)")
            }
            var policies: [(key: acl_endpoint_key, value: acl_endpoint_policy)] = []
            var seen = Set<String>()
            for policy in endpoints {
                let ip = try check.address(policy.ip, "endpoint")
                let vni = try check.vni(policy.vpc)
                guard seen.insert("\(vni)/\(ip)").inserted else { throw check.fail("endpoint \(ip) of VPC \(vni) has two policies") }
                var key = acl_endpoint_key()
                key.generation = generation & 1
                key.vni = vni
                key.ip = ip.networkOrder
                var value = acl_endpoint_policy()
                value.default_action = (policy.defaultEgress == .allow ? UInt8(ACL_ALLOW.rawValue) : 0, policy.defaultIngress == .allow ? UInt8(ACL_ALLOW.rawValue) : 0)
                policies.append((key, value))
            }
            guard policies.count <= Int(ACL_MAX_ENDPOINTS) else {
                throw check.fail("\(policies.count) endpoint policies; the table holds \(ACL_MAX_ENDPOINTS)")
            }
            return (lists, policies)
        }
    }

    struct GroupKey: Hashable {
        let vpc: UInt32
        let direction: Direction
    }

    /// A rule checked and reduced to what the kernel compares.
    struct CompiledRule {
        let priority: Int, number: Int, vpc: UInt32, direction: Direction
        let local: IPv4Interface, remote: IPv4Interface
        let c: acl_rule

        init(_ rule: Rule, number: Int) throws {
            func fail(_ why: String) -> PluginError { ConfigCheck("acl").fail("rule \(number + 1): \(why)") }
            func cidr(_ text: String) throws -> IPv4Interface {
                guard let parsed = IPv4Interface(cidrOrAddress: text) else { throw fail("\(text) is not a CIDR") }
                return parsed.network
            }
            guard (try? ConfigCheck("acl").vni(rule.vpc)) != nil else { throw fail("VPC \(rule.vpc) is not a 24-bit VNI") }
            let source = try cidr(rule.source), destination = try cidr(rule.destination)
            var local = rule.direction == .egress ? source : destination
            remote = rule.direction == .egress ? destination : source
            if let network = try rule.network.map(cidr) {
                // The endpoint side is both in the network and in the rule's CIDR: the narrower one.
                guard network.contains(local) || local.contains(network) else {
                    throw fail("\(rule.direction == .egress ? "source" : "destination") \(local) lies outside network \(network)")
                }
                if network.prefixLength > local.prefixLength { local = network }
            }
            if let ports = rule.ports, rule.protocol == .any { throw fail("ports \(ports) need a protocol (tcp, udp or icmp)") }
            if let ports = rule.ports, rule.protocol == .icmp, ports.upperBound > 255 { throw fail("ICMP types are 0-255") }
            priority = rule.priority
            self.number = number
            vpc = rule.vpc
            direction = rule.direction
            self.local = local
            var c = acl_rule()
            c.local = local.address.networkOrder
            c.local_mask = local.mask.bigEndian
            c.port_lo = rule.ports?.lowerBound ?? 0
            c.port_hi = rule.ports?.upperBound ?? UInt16.max
            c.protocol = rule.protocol.number
            c.action = rule.action == .allow ? UInt8(ACL_ALLOW.rawValue) : UInt8(ACL_DENY.rawValue)
            c.id = UInt16(truncatingIfNeeded: number + 1)
            self.c = c
        }
    }
}

// What a configuration document may leave out takes the same defaults as the Swift initialisers
// (docs/plugins.md), so YAML and the API need only what matters.

extension ACL.Rule {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(priority: try c.decodeIfPresent(Int.self, forKey: .priority) ?? 100, vpc: try c.decode(UInt32.self, forKey: .vpc),
                  network: try c.decodeIfPresent(String.self, forKey: .network), direction: try c.decode(ACL.Direction.self, forKey: .direction),
                  source: try c.decodeIfPresent(String.self, forKey: .source) ?? "0.0.0.0/0",
                  destination: try c.decodeIfPresent(String.self, forKey: .destination) ?? "0.0.0.0/0",
                  protocol: try c.decodeIfPresent(ACL.IPProtocol.self, forKey: .protocol) ?? .any,
                  ports: try c.decodeIfPresent(ClosedRange<UInt16>.self, forKey: .ports), action: try c.decode(ACL.Action.self, forKey: .action))
    }
}

extension ACL.EndpointPolicy {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vpc: try c.decode(UInt32.self, forKey: .vpc), ip: try c.decode(String.self, forKey: .ip),
                  defaultEgress: try c.decodeIfPresent(ACL.Action.self, forKey: .defaultEgress) ?? .allow,
                  defaultIngress: try c.decodeIfPresent(ACL.Action.self, forKey: .defaultIngress) ?? .deny)
    }
}

extension ACL.Config {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(rules: try c.decodeIfPresent([ACL.Rule].self, forKey: .rules) ?? [],
                  endpoints: try c.decodeIfPresent([ACL.EndpointPolicy].self, forKey: .endpoints) ?? [],
                  conntrackTimeoutSeconds: try c.decodeIfPresent(UInt32.self, forKey: .conntrackTimeoutSeconds) ?? 300)
    }
}
