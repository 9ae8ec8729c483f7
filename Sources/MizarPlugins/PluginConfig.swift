import MizarNet

/// The checks plugin configurations share, with errors that name the plugin.
public struct ConfigCheck: Sendable {
    public let plugin: String

    public init(_ plugin: String) { self.plugin = plugin }

    public func fail(_ why: String) -> PluginError { PluginError(.invalidConfig, plugin: plugin, why) }

    /// A VPC's VNI: 24 bits, not 0.
    public func vni(_ value: UInt32) throws -> UInt32 {
        guard value > 0, value < 1 << 24 else { throw fail("VPC \(value) is not a 24-bit VNI") }
        return value
    }

    /// An IPv4 address; `what` names it in the error.
    public func address(_ text: String, _ what: String) throws -> IPv4Address {
        guard let ip = IPv4Address(text) else { throw fail("\(what) \(text) is not an IPv4 address") }
        return ip
    }

    /// A CIDR (or a bare address, as a /32) with its host bits cleared.
    public func network(_ text: String) throws -> IPv4Interface {
        guard let cidr = IPv4Interface(cidrOrAddress: text) else { throw fail("\(text) is not a CIDR") }
        return cidr.network
    }
}

/// One map entry as bytes: a key and a value encoded from their C types.
public struct PluginMapEntry: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }

    /// Encodes a key and value of the map's C types (from the plugin's shared header).
    public init<Key: BitwiseCopyable, Value: BitwiseCopyable>(_ key: Key, _ value: Value) {
        self.key = withUnsafeBytes(of: key) { Array($0) }
        self.value = withUnsafeBytes(of: value) { Array($0) }
    }
}

/// A plugin's typed configuration: user-facing rules that validate themselves and turn
/// into the entries of the plugin's maps.
public protocol PluginConfiguration: Sendable {
    /// Throws `PluginError(.invalidConfig, ...)` with a message the user can act on.
    func validate() throws
    /// What each configured map must hold afterwards, by map name; maps not named are left alone.
    func mapEntries() throws -> [String: [PluginMapEntry]]
}

/// Map entries as they are: for plugins whose typed configuration lives elsewhere (a third
/// party's own tool), and for tests and benchmarks.
public struct RawPluginConfiguration: PluginConfiguration {
    public var entries: [String: [PluginMapEntry]]

    public init(_ entries: [String: [PluginMapEntry]]) { self.entries = entries }

    public func validate() throws {}
    public func mapEntries() throws -> [String: [PluginMapEntry]] { entries }
}
