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

    /// The program flavours a chain at this hook runs: TC and XDP at `egress` (the agent
    /// comes in both), XDP elsewhere. A plugin's tests run each.
    public var flavors: [ProgramFlavor] { self == .egress ? [.xdp, .tc] : [.xdp] }
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
    /// Names of the plugin's drop reasons by code (0...15), as `mz_drop(pkt, code)` counts
    /// them: counters, mizarctl and the API show the name. Codes left out show as `reasonN`.
    public var reasons: [Int: String]
    /// Directory of the object; nil to search the BPF object directories.
    public var directory: String?

    public init(name: String, version: String, abi: UInt32 = UInt32(MZ_PLUGIN_ABI_VERSION), object: String, entry: String,
                hooks: [PluginHook], priority: Int = 100, maps: [PluginMapDescriptor] = [], reasons: [Int: String] = [:],
                directory: String? = nil) {
        self.name = name
        self.version = version
        self.abi = abi
        self.object = object
        self.entry = entry
        self.hooks = hooks
        self.priority = priority
        self.maps = maps
        self.reasons = reasons
        self.directory = directory
    }

    enum CodingKeys: String, CodingKey {
        case name, version, abi, object, entry, hooks, priority, maps, reasons
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
        reasons = [:]
        // Read as text first, so that a code that is no number is said as such, and 1 and 01 are one code.
        for (code, reason) in try c.decodeIfPresent([String: String].self, forKey: .reasons) ?? [:] {
            guard let number = Int(code), (0..<Int(MZ_PLUGIN_DROP_REASONS)).contains(number) else {
                throw PluginError(.invalidDescriptor, plugin: name, "reason code \(code) (\(reason)): codes are 0-\(MZ_PLUGIN_DROP_REASONS - 2)")
            }
            guard reasons.updateValue(reason, forKey: number) == nil else {
                throw PluginError(.invalidDescriptor, plugin: name, "reason code \(number) is given twice")
            }
        }
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
        // Absolute, so that a bare file name's object is looked up in the current directory, not in `/`.
        directory = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent().path
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
        guard !hooks.isEmpty else { throw PluginError(.invalidDescriptor, plugin: name, "no hooks: give egress, ingress and/or transit") }
        guard Set(hooks).count == hooks.count else { throw PluginError(.invalidDescriptor, plugin: name, "a hook is listed twice") }
        guard !entry.isEmpty, !object.isEmpty, !object.contains("/") else {
            throw PluginError(.invalidDescriptor, plugin: name, "entry and object must be given; object is a file name")
        }
        guard Set(maps.map(\.name)).count == maps.count else { throw PluginError(.invalidDescriptor, plugin: name, "a map is declared twice") }
        try validateReasons()
    }

    /// Reason names are counter keys: lower-case words joined by `-` starting with a letter,
    /// unique, never a verdict (`drop`, ...) nor `reasonN`, for codes 0...14. Code 15 is where
    /// the chain counts a plugin that returned no verdict (`invalid-verdict`): it is not a plugin's.
    private func validateReasons() throws {
        let codes = 0..<Int(MZ_PLUGIN_DROP_REASONS) - 1
        let verdicts = Set(PluginVerdict.allCases.map(\.description))
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789-")
        for (code, reason) in reasons.sorted(by: { $0.key < $1.key }) {
            guard codes.contains(code) else {
                throw PluginError(.invalidDescriptor, plugin: name, "reason code \(code) (\(reason)): codes are 0-\(codes.upperBound - 1)")
            }
            guard let first = reason.unicodeScalars.first, CharacterSet.lowercaseLetters.contains(first), reason.count <= 32,
                  reason.unicodeScalars.allSatisfy(allowed.contains), !reason.hasSuffix("-"),
                  !verdicts.contains(reason), !(reason.hasPrefix("reason") && reason.dropFirst(6).allSatisfy(\.isNumber)) else {
                throw PluginError(.invalidDescriptor, plugin: name,
                                  "reason \(code) '\(reason)': use 1-32 lower-case letters, digits and '-', starting with a letter (not a verdict name or reasonN)")
            }
        }
        guard Set(reasons.values).count == reasons.count else { throw PluginError(.invalidDescriptor, plugin: name, "a reason name is used twice") }
    }

    /// The name of drop reason `code`: declared, `invalid-verdict` for 15, or `reasonN`.
    public func reasonName(_ code: Int) -> String { reasons[code] ?? PluginCounters.defaultReasonName(code) }
}
