import CMizarABI
import Foundation
import MizarBPF
import Yams

/// Where in the data plane a chain runs (DESIGN §5).
public enum PluginHook: String, Codable, Sendable, CaseIterable, Hashable {
    /// In the transit agent: the endpoint's frame, after admission (ARP, anti-spoofing),
    /// before routing and encapsulation.
    case egress
    /// In transit XDP: the decapsulated frame before local delivery, and plain IPv4
    /// addressed to the droplet (flagged external).
    case ingress
    /// In transit XDP of a divider: a frame between two networks of a VPC, still
    /// encapsulated (the context's offsets name the inner IPv4 header), before it goes on to
    /// a bouncer of its destination's network. XDP only. Inter-network policy lives here.
    case transit

    /// `enum mz_hook`.
    public var cValue: UInt32 {
        switch self {
        case .egress: MZ_HOOK_EGRESS.rawValue
        case .ingress: MZ_HOOK_INGRESS.rawValue
        case .transit: MZ_HOOK_TRANSIT.rawValue
        }
    }
}

/// A map a plugin object defines besides the chain's own (context, counters, chain array).
public struct PluginMapDescriptor: Codable, Sendable, Hashable {
    public var name: String
    /// libbpf's name of the map type: `hash`, `array`, `lru_hash`, `lpm_trie`, `percpu_array`, ...
    public var type: String
    public var keySize: Int
    public var valueSize: Int
    public var maxEntries: UInt32

    public init(name: String, type: String, keySize: Int, valueSize: Int, maxEntries: UInt32) {
        self.name = name
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
    }

    /// True when a map has this shape (libbpf's type name, sizes, capacity).
    public func matches(type: BPFMapType, keySize: Int, valueSize: Int, maxEntries: UInt32) -> Bool {
        self.type == type.description && self.keySize == keySize && self.valueSize == valueSize && self.maxEntries == maxEntries
    }

    /// The map of a C key and value type.
    public init<Key, Value>(name: String, type: String, key: Key.Type, value: Value.Type, maxEntries: UInt32) {
        self.init(name: name, type: type, keySize: MemoryLayout<Key>.size, valueSize: MemoryLayout<Value>.size, maxEntries: maxEntries)
    }
}

/// Everything the data plane needs to know of a plugin, as a built-in declares it in Swift
/// or a third party ships it in a YAML file beside its object (see docs/plugins.md).
public struct PluginDescriptor: Codable, Sendable, Hashable {
    /// Unique among a droplet's plugins; letters, digits, `-` and `_`.
    public var name: String
    public var version: String
    /// The plugin ABI the object was built for (`MZ_PLUGIN_ABI_VERSION`).
    public var abi: UInt32
    /// File name of the BPF object.
    public var object: String
    /// The function given to `MZ_PLUGIN`: the object holds `<entry>_xdp` and `<entry>_tc`.
    public var entry: String
    public var hooks: [PluginHook]
    /// Where the plugin goes in a chain when no position is given: lower runs first.
    public var priority: Int
    /// The plugin's own maps (configuration and state), checked against the object.
    public var maps: [PluginMapDescriptor]
    /// Directory of the object; nil to search the BPF object directories.
    public var directory: String?

    public init(name: String, version: String, abi: UInt32 = UInt32(MZ_PLUGIN_ABI_VERSION), object: String, entry: String,
                hooks: [PluginHook], priority: Int = 100, maps: [PluginMapDescriptor] = [], directory: String? = nil) {
        self.name = name
        self.version = version
        self.abi = abi
        self.object = object
        self.entry = entry
        self.hooks = hooks
        self.priority = priority
        self.maps = maps
        self.directory = directory
    }

    enum CodingKeys: String, CodingKey {
        case name, version, abi, object, entry, hooks, priority, maps
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        version = try c.decode(String.self, forKey: .version)
        abi = try c.decode(UInt32.self, forKey: .abi)
        object = try c.decode(String.self, forKey: .object)
        entry = try c.decodeIfPresent(String.self, forKey: .entry) ?? name
        hooks = try c.decode([PluginHook].self, forKey: .hooks)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? 100
        maps = try c.decodeIfPresent([PluginMapDescriptor].self, forKey: .maps) ?? []
        directory = nil
    }

    /// Reads a descriptor file (YAML, or JSON, which is YAML); the object is looked up
    /// beside it.
    public init(contentsOf path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PluginError(.invalidDescriptor, plugin: path, "cannot read the descriptor: \(error.localizedDescription)")
        }
        do {
            self = try YAMLDecoder().decode(PluginDescriptor.self, from: text)
        } catch {
            throw PluginError(.invalidDescriptor, plugin: path, "not a plugin descriptor: \(error)")
        }
        directory = (path as NSString).deletingLastPathComponent
        try validate()
    }

    /// The descriptor as YAML (what a third-party plugin ships).
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }

    /// Checks what can be checked without the object.
    public func validate() throws {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_"))
        guard !name.isEmpty, name.count <= 32, name.unicodeScalars.allSatisfy(allowed.contains) else {
            throw PluginError(.invalidDescriptor, plugin: name, "the name must be 1-32 letters, digits, '-' or '_'")
        }
        guard !hooks.isEmpty else { throw PluginError(.invalidDescriptor, plugin: name, "no hooks: give egress and/or ingress") }
        guard Set(hooks).count == hooks.count else { throw PluginError(.invalidDescriptor, plugin: name, "a hook is listed twice") }
        guard !entry.isEmpty, !object.isEmpty, !object.contains("/") else {
            throw PluginError(.invalidDescriptor, plugin: name, "entry and object must be given; object is a file name")
        }
        guard Set(maps.map(\.name)).count == maps.count else { throw PluginError(.invalidDescriptor, plugin: name, "a map is declared twice") }
    }
}
