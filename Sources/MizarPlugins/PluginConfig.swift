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
