import MizarPluginSDK

/// The port_guard example plugin: its descriptor and its typed configuration.
public enum PortGuard {
    public static let descriptor = PluginDescriptor(
        name: "port_guard", version: "1.0.0", object: "port_guard.bpf.o", entry: "port_guard",
        hooks: [.egress, .ingress], priority: 50,
        maps: [PluginMapDescriptor(name: "port_guard_ports", type: "hash", keySize: 2, valueSize: 4, maxEntries: 1024)])

    /// Ports to drop, each with the reason code its drops are counted under.
    public struct Config: PluginConfiguration, Codable, Equatable {
        public var blocked: [UInt16: UInt32]

        public init(blocked: [UInt16: UInt32]) { self.blocked = blocked }

        public func validate() throws {
            if let port = blocked.keys.first(where: { $0 == 0 }) {
                throw PluginError(.invalidConfig, plugin: "port_guard", "port \(port) is not a port")
            }
            if let (port, reason) = blocked.first(where: { $0.value == 0 || $0.value > 14 }) {
                throw PluginError(.invalidConfig, plugin: "port_guard", "reason \(reason) for port \(port): use 1-14 (15 means truncated)")
            }
            if blocked.count > 1024 { throw PluginError(.invalidConfig, plugin: "port_guard", "at most 1024 ports") }
        }

        public func mapEntries() throws -> [String: [PluginMapEntry]] {
            ["port_guard_ports": blocked.map { PluginMapEntry($0.key.bigEndian, $0.value) }]
        }
    }
}
