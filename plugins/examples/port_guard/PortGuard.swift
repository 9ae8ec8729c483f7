import MizarPluginSDK

/// port_guard: drops TCP and UDP frames to configured destination ports. Its descriptor
/// (the same as port_guard.plugin.yaml: a test keeps them equal) and its typed configuration.
public enum PortGuard {
    public static let descriptor = PluginDescriptor(
        name: "port_guard", version: "1.0.0", object: "port_guard.bpf.o", entry: "port_guard",
        hooks: [.egress, .ingress], priority: 50,
        maps: [PluginMapDescriptor(name: "port_guard_ports", type: "hash", keySize: 2, valueSize: 1, maxEntries: 1024)],
        reasons: [1: "blocked-port", 2: "truncated"])

    /// The protocols a port is blocked for.
    public enum Protocols: String, Codable, Sendable {
        case tcp, udp, both

        /// The map's value: the IP protocol number, 0 for both.
        var value: UInt8 {
            switch self {
            case .tcp: 6
            case .udp: 17
            case .both: 0
            }
        }
    }

    /// The destination ports to drop frames to. Written whole: ports left out are unblocked.
    public struct Config: PluginConfiguration, Codable, Equatable {
        public var blocked: [UInt16: Protocols]

        public init(blocked: [UInt16: Protocols]) { self.blocked = blocked }

        public func validate() throws {
            if blocked[0] != nil { throw PluginError(.invalidConfig, plugin: descriptor.name, "port 0 is not a port") }
            let capacity = descriptor.maps[0].maxEntries
            if blocked.count > Int(capacity) { throw PluginError(.invalidConfig, plugin: descriptor.name, "at most \(capacity) ports") }
        }

        public func mapEntries() throws -> [String: [PluginMapEntry]] {
            [descriptor.maps[0].name: blocked.map { PluginMapEntry($0.key.bigEndian, $0.value.value) }]
        }
    }
}
