import CMizarABI
import CMizarLB
import MizarBPF
import MizarNet
import MizarPlugins

/// The lb built-in plugin: services (VIP:port of a VPC) spread over backends by Maglev
/// consistent hashing, with connection affinity, in NAT or passthrough mode
/// (docs/plugins.md#lb). Put it on both hooks: egress picks backends, ingress gives
/// replies of remote backends the VIP back.
public enum LB {
    public static let descriptor = PluginDescriptor(
        name: "lb", version: "1.0.0", object: LB_OBJECT, entry: "lb", hooks: [.egress, .ingress], priority: 60,
        maps: [
            PluginMapDescriptor(name: LB_SERVICES_MAP, type: "hash", key: lb_service_key.self, value: lb_service.self, maxEntries: tables),
            PluginMapDescriptor(name: LB_MAGLEV_MAP, type: "array", key: UInt32.self, value: lb_backend.self, maxEntries: tables * UInt32(LB_MAGLEV_SIZE)),
            PluginMapDescriptor(name: LB_BACKENDS_MAP, type: "hash", key: lb_backend_key.self, value: UInt32.self, maxEntries: UInt32(LB_MAX_BACKENDS) * UInt32(LB_GENERATIONS)),
            PluginMapDescriptor(name: LB_AFFINITY_MAP, type: "lru_hash", key: lb_flow_key.self, value: lb_affinity.self, maxEntries: UInt32(LB_TABLE_SIZE)),
            PluginMapDescriptor(name: LB_REVERSE_MAP, type: "lru_hash", key: lb_reverse_key.self, value: lb_reverse.self, maxEntries: UInt32(LB_TABLE_SIZE)),
            PluginMapDescriptor(name: LB_CONFIG_MAP, type: "array", key: UInt32.self, value: lb_config.self, maxEntries: 1),
        ],
        reasons: [Reason.noBackend.rawValue: "no-backend", Reason.rewrite.rawValue: "rewrite-failed", Reason.truncated.rawValue: "truncated"])

    /// Maglev tables (and so services) of both generations: the live one and the one being written.
    static let tables = UInt32(LB_MAX_SERVICES) * UInt32(LB_GENERATIONS)

    public enum Reason: Int, Sendable {
        case noBackend = 1, rewrite = 2, truncated = 3
    }

    public enum Mode: String, Codable, Sendable {
        /// The destination becomes the backend; replies get the VIP back.
        case nat
        /// The frame keeps the VIP and is steered to the backend's droplet (the backend owns the VIP).
        case passthrough
    }

    public enum IPProtocol: String, Codable, Sendable {
        case tcp, udp
        var number: UInt8 { self == .tcp ? 6 : 17 }
    }

    public struct Backend: Codable, Sendable, Hashable {
        public var ip: String
        public var port: UInt16
        /// Relative share of new connections (1-100).
        public var weight: Int

        public init(ip: String, port: UInt16, weight: Int = 1) {
            self.ip = ip
            self.port = port
            self.weight = weight
        }
    }

    public struct Service: Codable, Sendable, Hashable {
        public var vpc: UInt32
        public var vip: String
        public var port: UInt16
        public var `protocol`: IPProtocol
        public var mode: Mode
        public var backends: [Backend]

        public init(vpc: UInt32, vip: String, port: UInt16, protocol: IPProtocol = .tcp, mode: Mode = .nat, backends: [Backend]) {
            self.vpc = vpc
            self.vip = vip
            self.port = port
            self.protocol = `protocol`
            self.mode = mode
            self.backends = backends
        }
    }

    /// The services of a droplet. A service keeps its id by its position in `services`:
    /// change backends in place, and connections to the backends that stay keep them.
    /// Writing it switches every service, table and backend set at once (a generation switch:
    /// no packet meets a new service entry beside an old Maglev table).
    public struct Config: GenerationalConfiguration, Codable, Hashable {
        public var services: [Service]

        public init(services: [Service]) { self.services = services }

        func fail(_ why: String) -> PluginError { ConfigCheck("lb").fail(why) }

        public func validate() throws { _ = try compile() }

        public var generationMap: String { LB_CONFIG_MAP }

        public func generation(named value: [UInt8]) -> UInt32 { pluginField(value, at: MemoryLayout<lb_config>.offset(of: \.generation)!) }

        public func generation(ofKey key: [UInt8], in map: String) -> UInt32? {
            switch map {
            case LB_SERVICES_MAP:
                let at = MemoryLayout<lb_service_key>.offset(of: \.generation)!
                return key.count > at ? UInt32(key[at] & 1) : 0
            case LB_BACKENDS_MAP: return pluginField(key, at: MemoryLayout<lb_backend_key>.offset(of: \.service)!) >= UInt32(LB_MAX_SERVICES) ? 1 : 0
            case LB_MAGLEV_MAP: return pluginField(key, at: 0) >= UInt32(LB_MAX_SERVICES) * UInt32(LB_MAGLEV_SIZE) ? 1 : 0
            default: return nil
            }
        }

        public func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]] {
            var entries = try compile(generation: generation)
            entries[LB_CONFIG_MAP] = [try generationEntry(generation)]
            return entries
        }

        /// The switch alone: no Maglev table is built to take a configuration away.
        public func generationEntry(_ generation: UInt32) throws -> PluginMapEntry {
            var config = lb_config()
            config.generation = generation
            return PluginMapEntry(UInt32(0), config)
        }

        /// The services' entries, Maglev tables and backend sets as `generation` (its low bit
        /// picks the key bit and the half of the tables).
        func compile(generation: UInt32 = 0) throws -> [String: [PluginMapEntry]] {
            guard services.count <= Int(LB_MAX_SERVICES) else { throw fail("\(services.count) services; at most \(LB_MAX_SERVICES)") }
            var serviceEntries: [PluginMapEntry] = [], slots: [PluginMapEntry] = [], current: [PluginMapEntry] = []
            var seen = Set<String>()
            for (id, service) in services.enumerated() {
                let check = ConfigCheck("lb")
                let vip = try check.address(service.vip, "VIP")
                _ = try check.vni(service.vpc)
                guard service.port > 0 else { throw fail("service \(vip): port 0") }
                guard seen.insert("\(service.vpc)/\(vip)/\(service.port)/\(service.protocol)").inserted else {
                    throw fail("service \(vip):\(service.port)/\(service.protocol) of VPC \(service.vpc) is defined twice")
                }
                var backends: [(ip: IPv4Address, port: UInt16, weight: Int)] = []
                for b in service.backends {
                    let ip = try check.address(b.ip, "backend of \(vip)")
                    guard ip.value != 0 else { throw fail("backend 0.0.0.0 of \(vip)") }
                    guard b.port > 0, (1...100).contains(b.weight) else { throw fail("backend \(ip):\(b.port) of \(vip): port must be set and weight 1-100") }
                    guard !backends.contains(where: { $0.ip == ip && $0.port == b.port }) else { throw fail("backend \(ip):\(b.port) is listed twice for \(vip)") }
                    guard service.mode == .nat || b.port == service.port else {
                        throw fail("passthrough backend \(ip):\(b.port) of \(vip): the frame keeps the VIP's port \(service.port), so must the backend")
                    }
                    backends.append((ip, b.port, b.weight))
                }
                var key = lb_service_key()
                key.vni = service.vpc
                key.vip = vip.networkOrder
                key.port = service.port.bigEndian
                key.protocol = service.protocol.number
                key.generation = UInt8(generation & 1)
                let table = UInt32(id) + (generation & 1) * UInt32(LB_MAX_SERVICES)
                var value = lb_service()
                value.id = UInt32(id)
                value.table = table
                value.mode = service.mode == .nat ? LB_MODE_NAT.rawValue : LB_MODE_PASSTHROUGH.rawValue
                // The same backend set gives the same value: affinities need no check.
                value.backend_set = UInt32(truncatingIfNeeded: Maglev.hash(backends.map { "\($0.ip):\($0.port)" }.sorted().joined(separator: ","), seed: 1))
                serviceEntries.append(PluginMapEntry(key, value))
                let maglev = try Maglev.table(names: backends.map { "\($0.ip):\($0.port)" }, weights: backends.map(\.weight), size: Int(LB_MAGLEV_SIZE))
                for (slot, index) in maglev.enumerated() {
                    var b = lb_backend()
                    b.ip = backends[index].ip.networkOrder
                    b.port = backends[index].port.bigEndian
                    slots.append(PluginMapEntry(table * UInt32(LB_MAGLEV_SIZE) + UInt32(slot), b))
                }
                for b in backends {
                    var k = lb_backend_key()
                    k.service = table
                    k.ip = b.ip.networkOrder
                    k.port = b.port.bigEndian
                    current.append(PluginMapEntry(k, UInt32(b.weight)))
                }
            }
            guard current.count <= Int(LB_MAX_BACKENDS) else { throw fail("\(current.count) backends; at most \(LB_MAX_BACKENDS)") }
            return [LB_SERVICES_MAP: serviceEntries, LB_MAGLEV_MAP: slots, LB_BACKENDS_MAP: current]
        }
    }
}

// What a configuration document may leave out takes the same defaults as the Swift initialisers
// (docs/plugins.md), so YAML and the API need only what matters.

extension LB.Backend {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(ip: try c.decode(String.self, forKey: .ip), port: try c.decode(UInt16.self, forKey: .port),
                  weight: try c.decodeIfPresent(Int.self, forKey: .weight) ?? 1)
    }
}

extension LB.Service {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vpc: try c.decode(UInt32.self, forKey: .vpc), vip: try c.decode(String.self, forKey: .vip), port: try c.decode(UInt16.self, forKey: .port),
                  protocol: try c.decodeIfPresent(LB.IPProtocol.self, forKey: .protocol) ?? .tcp, mode: try c.decodeIfPresent(LB.Mode.self, forKey: .mode) ?? .nat,
                  backends: try c.decode([LB.Backend].self, forKey: .backends))
    }
}
