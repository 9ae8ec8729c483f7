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

/// A configuration written beside the live one and switched to at once (as Katran and Cilium
/// do). Generations count up; the plugin keys its configured maps by the generation's low
/// bit (so two fit side by side) and reads the live generation from `generationMap`, a
/// one-entry array. `PluginChains.configure` clears what an unfinished earlier write left
/// under the other bit, writes this configuration as the next generation, switches
/// `generationMap` over in one write, then (after the chains' grace period) deletes the old
/// generation and flushes. A packet meets either the old configuration or the new one,
/// never parts of both; a failure before the switch leaves the old one as it was. State
/// that remembers a generation (a conntrack entry) can keep the whole count, which never
/// comes back.
///
/// Maps must hold both generations at once. An array whose indices `generation(ofKey:in:)`
/// places holds generation 0 in its first half and 1 in its second (the lb's Maglev tables):
/// the next generation's half is written whole before the switch. Maps whose keys it does
/// not place are written in place before the switch.
public protocol GenerationalConfiguration: PluginConfiguration {
    /// The one-entry array (key 0) whose value names the live generation; written last.
    var generationMap: String { get }
    /// The generation a value of `generationMap` names (a zeroed value names 0).
    func generation(named value: [UInt8]) -> UInt32
    /// The low bit of the generation a key of `map` belongs to, or nil when the map is written in place.
    func generation(ofKey key: [UInt8], in map: String) -> UInt32?
    /// The entries of this configuration as `generation` (keys carrying its low bit), its
    /// `generationMap` entry naming the whole of it.
    func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]]
    /// The `generationMap` entry naming `generation`, as `mapEntries(generation:)` gives it
    /// (what taking this configuration away switches to, its generational maps empty). The
    /// default builds the whole configuration; a plugin whose tables are costly (the lb's
    /// Maglev tables) gives the entry alone.
    func generationEntry(_ generation: UInt32) throws -> PluginMapEntry
}

extension GenerationalConfiguration {
    /// Generation 0: what a raw write (`RawPluginConfiguration`) of this configuration holds.
    public func mapEntries() throws -> [String: [PluginMapEntry]] { try mapEntries(generation: 0) }

    public func generationEntry(_ generation: UInt32) throws -> PluginMapEntry {
        guard let entry = try mapEntries(generation: generation)[generationMap]?.first else {
            throw PluginError(.invalidConfig, plugin: "\(Self.self)", "the configuration gives \(generationMap) no entry")
        }
        return entry
    }
}

/// `base`'s generational maps, each one empty, as a generation of its own: what
/// `clearConfiguration` switches to. State (a conntrack, translations) is left alone.
struct EmptyGeneration: GenerationalConfiguration {
    let base: any GenerationalConfiguration
    var generationMap: String { base.generationMap }
    func validate() throws {}
    func generation(named value: [UInt8]) -> UInt32 { base.generation(named: value) }
    func generation(ofKey key: [UInt8], in map: String) -> UInt32? { base.generation(ofKey: key, in: map) }
    /// The switch naming `generation` alone: the writer empties every generational map left out.
    func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]] {
        [generationMap: [try base.generationEntry(generation)]]
    }
}

/// Reads a host-order `UInt32` at `offset` of a key or value (0 when it is too short).
public func pluginField(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    guard bytes.count >= offset + 4 else { return 0 }
    return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
}

/// Map entries as they are: for plugins whose typed configuration lives elsewhere (a third
/// party's own tool), and for tests and benchmarks.
public struct RawPluginConfiguration: PluginConfiguration {
    public var entries: [String: [PluginMapEntry]]

    public init(_ entries: [String: [PluginMapEntry]]) { self.entries = entries }

    public func validate() throws {}
    public func mapEntries() throws -> [String: [PluginMapEntry]] { entries }
}
