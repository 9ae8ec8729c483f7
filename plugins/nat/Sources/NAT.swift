import CMizarABI
import CMizarNAT
import MizarBPF
import MizarNet
import MizarPlugins

/// The nat built-in plugin: SNAT/masquerade for endpoints reaching outside the overlay and
/// DNAT port forwarding from the droplet to endpoints (docs/plugins.md#nat). Put it on both
/// hooks: egress translates endpoint traffic, ingress translates what comes back.
public enum NAT {
    public static let descriptor = PluginDescriptor(
        name: "nat", version: "1.0.0", object: NAT_OBJECT, entry: "nat", hooks: [.egress, .ingress], priority: 80,
        maps: [
            PluginMapDescriptor(name: NAT_EXTERNAL_MAP, type: "lpm_trie", key: nat_external_key.self, value: UInt32.self, maxEntries: UInt32(NAT_MAX_PREFIXES * NAT_GENERATIONS)),
            PluginMapDescriptor(name: NAT_FORWARDS_MAP, type: "hash", key: nat_forward_key.self, value: nat_endpoint.self, maxEntries: UInt32(NAT_MAX_FORWARDS * NAT_GENERATIONS)),
            PluginMapDescriptor(name: NAT_FLOWS_MAP, type: "hash", key: nat_flow_key.self, value: nat_flow.self, maxEntries: UInt32(NAT_TABLE_SIZE)),
            PluginMapDescriptor(name: NAT_REVERSE_MAP, type: "hash", key: nat_reverse_key.self, value: nat_translation.self, maxEntries: UInt32(NAT_TABLE_SIZE)),
            PluginMapDescriptor(name: NAT_CONFIG_MAP, type: "array", key: UInt32.self, value: nat_config.self, maxEntries: UInt32(NAT_GENERATIONS)),
            PluginMapDescriptor(name: NAT_GENERATION_MAP, type: "array", key: UInt32.self, value: nat_generation.self, maxEntries: 1),
        ],
        reasons: [Reason.noPort.rawValue: "no-free-port", Reason.truncated.rawValue: "truncated", Reason.rewrite.rawValue: "rewrite-failed",
                  Reason.fragment.rawValue: "fragment", Reason.tableFull.rawValue: "table-full", Reason.stale.rawValue: "stale"])

    /// Drop reason codes in the plugin's counters.
    public enum Reason: Int, Sendable {
        case noPort = 1, truncated = 2, rewrite = 3, fragment = 4
        /// No room for a new translation: the tables never evict one in use.
        case tableFull = 5
        /// An external frame matched half a translation (its other half gone): never delivered.
        case stale = 6
    }

    public enum IPProtocol: String, Codable, Sendable {
        case tcp, udp
        var number: UInt8 { self == .tcp ? 6 : 17 }
    }

    /// Which destinations of a VPC are outside the overlay (masqueraded). The longest
    /// matching prefix decides: list the overlay's own ranges under `except`.
    public struct Masquerade: Codable, Sendable, Hashable {
        public var vpc: UInt32
        public var destinations: [String]
        public var except: [String]

        public init(vpc: UInt32, destinations: [String] = ["0.0.0.0/0"], except: [String] = []) {
            self.vpc = vpc
            self.destinations = destinations
            self.except = except
        }
    }

    /// A droplet port forwarded to an endpoint's port.
    public struct Forward: Codable, Sendable, Hashable {
        public var `protocol`: IPProtocol
        public var port: UInt16
        public var vpc: UInt32
        public var endpoint: String
        public var endpointPort: UInt16

        public init(protocol: IPProtocol, port: UInt16, vpc: UInt32, endpoint: String, endpointPort: UInt16) {
            self.protocol = `protocol`
            self.port = port
            self.vpc = vpc
            self.endpoint = endpoint
            self.endpointPort = endpointPort
        }
    }

    /// The NAT of one droplet. Writing it keeps established translations and switches the
    /// settings, masquerade prefixes and forwards at once (a generation switch: no packet
    /// meets new forwards beside old settings).
    public struct Config: GenerationalConfiguration, Codable, Hashable {
        /// The droplet's address: sources are rewritten to it, forwards listen on it.
        public var externalIP: String
        /// Ports SNAT allocates from.
        public var ports: ClosedRange<UInt16>
        public var masquerade: [Masquerade]
        public var forwards: [Forward]
        /// A translation unused this long (either way) is removed, both halves at once; its
        /// port is free again only then.
        public var idleSeconds: UInt32

        public init(externalIP: String, ports: ClosedRange<UInt16> = 20000...59999, masquerade: [Masquerade] = [], forwards: [Forward] = [],
                    idleSeconds: UInt32 = UInt32(NAT_DEFAULT_IDLE_SECONDS)) {
            self.externalIP = externalIP
            self.ports = ports
            self.masquerade = masquerade
            self.forwards = forwards
            self.idleSeconds = idleSeconds
        }

        func fail(_ why: String) -> PluginError { ConfigCheck("nat").fail(why) }

        public func validate() throws { _ = try mapEntries() }

        public var generationMap: String { NAT_GENERATION_MAP }

        public func generation(named value: [UInt8]) -> UInt32 { pluginField(value, at: MemoryLayout<nat_generation>.offset(of: \.generation)!) }

        public func generation(ofKey key: [UInt8], in map: String) -> UInt32? {
            switch map {
            case NAT_CONFIG_MAP: pluginField(key, at: 0) >= UInt32(NAT_GENERATIONS) / 2 ? 1 : 0  // a generation's settings: one slot a half
            case NAT_EXTERNAL_MAP: pluginField(key, at: MemoryLayout<nat_external_key>.offset(of: \.generation)!)
            case NAT_FORWARDS_MAP: key.count == MemoryLayout<nat_forward_key>.size ? UInt32(key[MemoryLayout<nat_forward_key>.offset(of: \.generation)!] & 1) : 0
            default: nil
            }
        }

        /// The settings at `generation`'s slot, the prefixes and forwards keyed by its low bit,
        /// and the switch naming it.
        public func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]] {
            let check = ConfigCheck("nat")
            let external = try check.address(externalIP, "external IP")
            guard external.value != 0 else { throw fail("external IP 0.0.0.0 is not the droplet's address") }
            guard ports.lowerBound >= 1024 else { throw fail("SNAT ports \(ports) reach into the well-known ports; start at 1024 or above") }
            var config = nat_config()
            config.external_ip = external.networkOrder
            config.port_min = ports.lowerBound
            config.port_max = ports.upperBound
            guard (1...86_400).contains(idleSeconds) else { throw fail("idleSeconds \(idleSeconds) is not 1 to 86400") }
            config.idle_seconds = idleSeconds
            config.generation = generation
            let bit = generation & 1

            var prefixes: [PluginMapEntry] = [], seen = Set<String>()
            for m in masquerade {
                _ = try check.vni(m.vpc)
                for (list, value) in [(m.destinations, UInt32(1)), (m.except, UInt32(0))] {
                    for text in list {
                        let cidr = try check.network(text)
                        guard seen.insert("\(m.vpc)/\(cidr)").inserted else { throw fail("\(cidr) is listed twice for VPC \(m.vpc)") }
                        var key = nat_external_key()
                        key.prefixlen = 64 + UInt32(cidr.prefixLength)
                        key.generation = bit
                        key.vni = m.vpc
                        key.dst = cidr.address.networkOrder
                        prefixes.append(PluginMapEntry(key, value))
                    }
                }
            }
            var forwardEntries: [PluginMapEntry] = [], listening = Set<String>()
            for f in forwards {
                let ip = try check.address(f.endpoint, "endpoint")
                guard f.port > 0, f.endpointPort > 0 else { throw fail("port 0 cannot be forwarded") }
                _ = try check.vni(f.vpc)
                guard !ports.contains(f.port) else { throw fail("forwarded port \(f.port) lies in the SNAT range \(ports)") }
                guard listening.insert("\(f.protocol)/\(f.port)").inserted else { throw fail("\(f.protocol) port \(f.port) is forwarded twice") }
                var key = nat_forward_key()
                key.protocol = f.protocol.number
                key.generation = UInt8(bit)
                key.port = f.port.bigEndian
                var ep = nat_endpoint()
                ep.vni = f.vpc
                ep.ip = ip.networkOrder
                ep.port = f.endpointPort.bigEndian
                forwardEntries.append(PluginMapEntry(key, ep))
            }
            guard prefixes.count <= Int(NAT_MAX_PREFIXES) else { throw fail("\(prefixes.count) masquerade prefixes; at most \(NAT_MAX_PREFIXES)") }
            guard forwardEntries.count <= Int(NAT_MAX_FORWARDS) else { throw fail("\(forwardEntries.count) forwards; at most \(NAT_MAX_FORWARDS)") }
            var live = nat_generation()
            live.generation = generation
            return [NAT_CONFIG_MAP: [PluginMapEntry(bit, config)], NAT_EXTERNAL_MAP: prefixes, NAT_FORWARDS_MAP: forwardEntries,
                    NAT_GENERATION_MAP: [PluginMapEntry(UInt32(0), live)]]
        }
    }
}

// What a configuration document may leave out takes the same defaults as the Swift initialisers
// (docs/plugins.md), so YAML and the API need only what matters.

extension NAT.Masquerade {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vpc: try c.decode(UInt32.self, forKey: .vpc), destinations: try c.decodeIfPresent([String].self, forKey: .destinations) ?? ["0.0.0.0/0"],
                  except: try c.decodeIfPresent([String].self, forKey: .except) ?? [])
    }
}

extension NAT.Config {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(externalIP: try c.decode(String.self, forKey: .externalIP),
                  ports: try c.decodeIfPresent(ClosedRange<UInt16>.self, forKey: .ports) ?? 20000...59999,
                  masquerade: try c.decodeIfPresent([NAT.Masquerade].self, forKey: .masquerade) ?? [],
                  forwards: try c.decodeIfPresent([NAT.Forward].self, forKey: .forwards) ?? [],
                  idleSeconds: try c.decodeIfPresent(UInt32.self, forKey: .idleSeconds) ?? UInt32(NAT_DEFAULT_IDLE_SECONDS))
    }
}
