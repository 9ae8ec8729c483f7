import CMizarABI
import Foundation
import Logging
import MizarBPF

/// The plugin chains of one host (a droplet, or the SDK's harness): the registered
/// plugins, the live chain of each hook, and every change between chains (DESIGN §5).
///
/// A change (set, insert, remove, reorder, upgrade) is built beside the live chain: each
/// plugin instance is loaded for its position into a new chain array whose last position is
/// the core's continuation. Only when every hook point of the hook has its new chain does
/// one update of each root switch over; the old chain stays whole for `gracePeriod`, so
/// frames already in it finish on it. A change that fails anywhere leaves the live chain
/// as it was.
public final class PluginChains: @unchecked Sendable {
    public let host: PluginHost
    public let locator: BPFObjectLocator
    /// How long a replaced chain stays intact after the switch, and a replaced configuration's
    /// keys after `configure` switched away from them. A frame crosses a chain in
    /// microseconds (XDP and TC run to completion in softirq), so this is ample.
    public var gracePeriod: Duration = .milliseconds(20)
    /// Whether a descriptor read from a file may take its object from the BPF object
    /// directories when none lies beside it (`plugin check --bpf-dir`, the SDK's harness).
    /// A droplet does not: what a plugin directory holds is what it loads.
    public var objectFallback = false

    private let lock = NSLock()
    private var plugins: [String: RegisteredPlugin] = [:]
    private var live: [PluginHook: Generation] = [:]
    private var slots: [SlotKey: UInt32] = [:]
    private let stats: PerCPUMap<UInt32, mz_plugin_stats>
    private let logger: Logger
    /// Where plugin maps (`plugins/<plugin>/<map>`) and chain arrays (`chains/...`) are pinned.
    private let pins: BPFPinDirectory?
    /// Hooks whose roots hold a chain an earlier process built and pinned: live, but not
    /// known here until the next `setChain` replaces it.
    private var pinnedChains: Set<PluginHook> = []

    private struct SlotKey: Hashable {
        let hook: PluginHook
        let plugin: String
    }

    /// One chain, built for every hook point of its hook. Its objects keep the instances alive.
    private final class Generation {
        let names: [String]
        var heads: [(point: HookPoint, program: BPFProgram)] = []
        var arrays: [ProgramArray] = []
        var objects: [BPFObject] = []
        /// The arrays' pins: a chain outlives its process while pinned (an array nobody
        /// holds is emptied by the kernel, which would cut every frame in the chain short).
        var pinNames: [String] = []

        init(_ names: [String]) { self.names = names }
    }

    /// - Parameter pins: where plugin maps and chains are pinned so that they outlive the
    ///   process (configuration, conntrack, token buckets and the live chains survive a
    ///   restart); a chain found pinned there stays live until `setChain` replaces it.
    public init(host: PluginHost, locator: BPFObjectLocator = BPFObjectLocator(), pins: BPFPinDirectory? = nil,
                logger: Logger = Logger(label: "mizar.plugins")) throws {
        self.host = host
        self.locator = locator
        self.logger = logger
        self.pins = pins
        stats = try PerCPUMap(host.stats)
        if pins != nil {
            for hook in PluginHook.allCases where try host.active.lookup(hook.cValue) == 1 { pinnedChains.insert(hook) }
        }
    }

    deinit {
        // Pinned chains are meant to outlive the process.
        guard pins == nil else { return }
        for (hook, _) in live {
            try? host.active.update(hook.cValue, 0)
            for point in host.points(of: hook) { _ = try? point.root.clear(0) }
        }
    }

    // MARK: Plugins

    /// Registers a plugin after checking its object against the descriptor and having the
    /// verifier load both flavours; throws `PluginError` and registers nothing otherwise.
    public func register(_ descriptor: PluginDescriptor) throws {
        try lock.withLock {
            guard plugins[descriptor.name] == nil else {
                throw PluginError(.invalidDescriptor, plugin: descriptor.name, "already registered (version \(plugins[descriptor.name]!.descriptor.version)); use upgrade")
            }
            let plugin = try probe(descriptor)
            plugins[descriptor.name] = plugin
            logger.info("plugin registered", metadata: ["plugin": "\(descriptor.name)", "version": "\(descriptor.version)"])
        }
    }

    /// Replaces a registered plugin by another version: maps of the same shape carry over
    /// (configuration and state survive), and every chain holding it is rebuilt and switched.
    public func upgrade(_ descriptor: PluginDescriptor) throws {
        try lock.withLock {
            guard let old = plugins[descriptor.name] else {
                throw PluginError(.invalidChain, plugin: descriptor.name, "not registered; register it first")
            }
            let new = try probe(descriptor, inheriting: old)
            var registry = plugins
            registry[descriptor.name] = new
            let affected = live.filter { $0.value.names.contains(descriptor.name) }.map(\.key)
            for hook in affected where !descriptor.hooks.contains(hook) {
                throw PluginError(.invalidChain, plugin: descriptor.name, "version \(descriptor.version) has no \(hook) hook, but the \(hook) chain holds the plugin")
            }
            let built = try affected.map { ($0, try build($0, live[$0]!.names, registry)) }
            plugins = registry
            for (hook, generation) in built { try switchTo(hook, generation) }
            logger.info("plugin upgraded", metadata: ["plugin": "\(descriptor.name)", "from": "\(old.descriptor.version)", "to": "\(descriptor.version)"])
        }
    }

    /// Forgets a plugin that no chain holds.
    public func unregister(_ name: String) throws {
        try lock.withLock {
            guard plugins[name] != nil else { throw PluginError(.invalidChain, plugin: name, "not registered") }
            if let hook = live.first(where: { $0.value.names.contains(name) })?.key {
                throw PluginError(.invalidChain, plugin: name, "still in the \(hook) chain; remove it first")
            }
            plugins[name] = nil
        }
    }

    /// The registered plugins' descriptors, by name.
    public var descriptors: [PluginDescriptor] {
        lock.withLock { plugins.values.map(\.descriptor).sorted { $0.name < $1.name } }
    }

    // MARK: Chains

    /// The plugins of `hook`'s live chain, in order.
    public func chain(_ hook: PluginHook) -> [String] {
        lock.withLock { live[hook]?.names ?? [] }
    }

    /// True while `hook` runs a chain an earlier process pinned (replace it with `setChain`).
    public func runsPinnedChain(_ hook: PluginHook) -> Bool {
        lock.withLock { pinnedChains.contains(hook) }
    }

    /// Makes `names` the chain of `hook`, in that order (empty: no plugins, the core's inline path).
    public func setChain(_ hook: PluginHook, _ names: [String]) throws {
        try lock.withLock { try replace(hook, names) }
    }

    /// Inserts a plugin into `hook`'s chain at `index`, or by its priority when nil.
    public func insert(_ name: String, into hook: PluginHook, at index: Int? = nil) throws {
        try lock.withLock {
            var names = live[hook]?.names ?? []
            guard let plugin = plugins[name] else { throw PluginError(.invalidChain, plugin: name, "not registered") }
            let at = index ?? names.firstIndex { (plugins[$0]?.descriptor.priority ?? 0) > plugin.descriptor.priority } ?? names.count
            guard at >= 0, at <= names.count else { throw PluginError(.invalidChain, plugin: name, "position \(at) is outside the chain of \(names.count)") }
            names.insert(name, at: at)
            try replace(hook, names)
        }
    }

    /// Removes a plugin from `hook`'s chain.
    public func remove(_ name: String, from hook: PluginHook) throws {
        try lock.withLock {
            var names = live[hook]?.names ?? []
            guard let at = names.firstIndex(of: name) else { throw PluginError(.invalidChain, plugin: name, "not in the \(hook) chain") }
            names.remove(at: at)
            try replace(hook, names)
        }
    }

    // MARK: Configuration and counters

    /// Validates a configuration and writes it: each named map ends up holding exactly the
    /// given entries; maps not named are left alone. A `GenerationalConfiguration` is
    /// written beside the live one and switched to in one write, so packets meet the old
    /// configuration or the new, never parts of both. Any other is written in place: new
    /// entries beside old ones first (descriptor order, arrays last), stale keys after,
    /// flushes (a map given no entries, such as a conntrack) last. Should the kernel refuse
    /// a write before the new configuration is in force, the previous one is left (or put
    /// back) as it was.
    public func configure(_ name: String, _ config: any PluginConfiguration) throws {
        try config.validate()
        // A generation's entries are made and checked by its writer (once: the lb's are 65,537 a service).
        let wanted = config is any GenerationalConfiguration ? [:] : try config.mapEntries()
        try lock.withLock {
            guard let plugin = plugins[name] else { throw PluginError(.invalidConfig, plugin: name, "not registered") }
            for (mapName, entries) in wanted { try ConfigurationWriter.check(entries, for: try plugin.map(mapName), plugin: name) }
            let writer = ConfigurationWriter(plugin: name, map: { RawMap(try plugin.map($0)) }, order: plugin.descriptor.maps.map(\.name), gracePeriod: gracePeriod)
            if let generational = config as? any GenerationalConfiguration {
                try writer.writeGeneration(generational)
            } else {
                try writer.writeInPlace(wanted)
            }
        }
    }

    /// Takes a plugin's configuration `old` away: every map it fills ends up empty. A
    /// `GenerationalConfiguration` is switched to an empty next generation (packets meet all
    /// of `old` or none of it, and the generations keep counting up; state such as a
    /// conntrack is left, as the next configuration's switch leaves it); any other is
    /// flushed map by map.
    public func clearConfiguration(_ name: String, _ old: any PluginConfiguration) throws {
        if let generational = old as? any GenerationalConfiguration {
            try configure(name, EmptyGeneration(base: generational))
        } else {
            try configure(name, RawPluginConfiguration(try old.mapEntries().mapValues { _ in [] }))
        }
    }

    /// A plugin's map, for typed access by the plugin's own library.
    public func map(_ name: String, of plugin: String) throws -> BPFMapHandle {
        try lock.withLock {
            guard let p = plugins[plugin] else { throw PluginError(.invalidConfig, plugin: plugin, "not registered") }
            return try p.map(name)
        }
    }

    /// The counters of `plugin` at `hook` (zero when it never ran there).
    public func counters(_ plugin: String, at hook: PluginHook) throws -> PluginCounters {
        let (slot, reasons) = lock.withLock { (slots[SlotKey(hook: hook, plugin: plugin)], plugins[plugin]?.descriptor.reasons ?? [:]) }
        guard let slot else { return PluginCounters(reasonNames: reasons) }
        var counters = try PluginCounters.read(stats, slot: slot)
        counters.reasonNames = reasons
        return counters
    }

    /// The object file `plugin` was loaded from.
    public func objectPath(_ plugin: String) -> String? { lock.withLock { plugins[plugin]?.path } }

    /// The (hook, plugin) whose counters (and trace events) use `slot`, if any.
    public func owner(ofSlot slot: UInt32) -> (hook: PluginHook, plugin: String, reasons: [Int: String])? {
        lock.withLock {
            slots.first { $0.value == slot }.map { ($0.key.hook, $0.key.plugin, plugins[$0.key.plugin]?.descriptor.reasons ?? [:]) }
        }
    }

    // MARK: Building

    /// Opens and verifies a descriptor's object in both flavours, outside any live chain.
    private func probe(_ descriptor: PluginDescriptor, inheriting old: RegisteredPlugin? = nil) throws -> RegisteredPlugin {
        let plugin = try RegisteredPlugin(descriptor, locator: locator, fallback: objectFallback)
        if let old { plugin.inherit(from: old) }
        for flavor in ProgramFlavor.allCases {
            let scratch = try ProgramArray.create(name: "probe_chain", capacity: UInt32(MZ_PLUGIN_CHAIN_SLOTS))
            _ = try plugin.instance(flavor: flavor, position: 0, slot: 0, chain: scratch, host: host,
                                    pins: old == nil ? try pinDirectory(of: descriptor.name) : nil)
        }
        return plugin
    }

    /// Validates and builds `names` for `hook`, then switches to it. Called with the lock held.
    private func replace(_ hook: PluginHook, _ names: [String]) throws {
        for name in names {
            guard let plugin = plugins[name] else { throw PluginError(.invalidChain, plugin: name, "not registered") }
            guard plugin.descriptor.hooks.contains(hook) else {
                throw PluginError(.invalidChain, plugin: name, "has no \(hook) hook (it declares \(plugin.descriptor.hooks.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        guard Set(names).count == names.count else { throw PluginError(.invalidChain, plugin: names.joined(separator: ","), "a plugin appears twice in the chain") }
        guard names.count <= Int(MZ_PLUGIN_MAX_CHAIN) else {
            throw PluginError(.invalidChain, plugin: names.joined(separator: ","), "\(names.count) plugins; a chain holds at most \(MZ_PLUGIN_MAX_CHAIN)")
        }
        let generation = names.isEmpty ? nil : try build(hook, names, plugins)
        try switchTo(hook, generation)
    }

    /// Loads every instance of a chain for every hook point of `hook`; nothing live changes.
    private func build(_ hook: PluginHook, _ names: [String], _ registry: [String: RegisteredPlugin]) throws -> Generation {
        let generation = Generation(names)
        for point in host.points(of: hook) {
            let array = try ProgramArray.create(name: "chain_\(hook.rawValue)", capacity: UInt32(MZ_PLUGIN_CHAIN_SLOTS))
            var head: BPFProgram?
            for (position, name) in names.enumerated() {
                let (object, program) = try registry[name]!.instance(flavor: point.flavor, position: UInt32(position),
                                                                     slot: try slot(hook, name), chain: array, host: host,
                                                                     pins: try pinDirectory(of: name))
                generation.objects.append(object)
                try array.set(UInt32(position), to: program)
                head = head ?? program
            }
            try array.set(UInt32(names.count), to: point.continuation)
            if let chains = try pins?.subdirectory("chains") {
                let pin = "\(hook.rawValue)-\(point.flavor.rawValue)-\(UUID().uuidString.prefix(8).lowercased())"
                try chains.pin(array.handle, as: pin)
                generation.pinNames.append(pin)
            }
            generation.arrays.append(array)
            generation.heads.append((point, head!))
        }
        return generation
    }

    /// Points each root of `hook` at the new chain (one atomic update each), then lets the
    /// old chain drain before it is released. Should a root refuse, the roots go back.
    private func switchTo(_ hook: PluginHook, _ generation: Generation?) throws {
        let old = live[hook]
        func point(_ root: HookPoint, at gen: Generation?) throws {
            if let head = gen?.heads.first(where: { $0.point.root.handle.id == root.root.handle.id })?.program {
                try root.root.set(0, to: head)
            } else {
                try root.root.clear(0)
            }
        }
        do {
            // The core skips a hook whose flag is off: on only once the roots hold the chain,
            // off before they are emptied.
            if generation == nil { try host.active.update(hook.cValue, 0) }
            for root in host.points(of: hook) { try point(root, at: generation) }
            if generation != nil { try host.active.update(hook.cValue, 1) }
        } catch {
            for root in host.points(of: hook) { try? point(root, at: old) }
            try? host.active.update(hook.cValue, old == nil ? 0 : 1)
            throw PluginError(.system, plugin: generation?.names.joined(separator: ",") ?? "-", "switching the \(hook) chain: \(error)")
        }
        live[hook] = generation
        logger.info("chain switched", metadata: ["hook": "\(hook)", "chain": "\(generation?.names ?? [])"])
        if let chains = try? pins?.subdirectory("chains") {
            // The old chain's pins go (frames in flight hold its programs); so do those of
            // a chain an earlier process left.
            let keep = Set(generation?.pinNames ?? [])
            for name in (try? chains.names()) ?? [] where name.hasPrefix(hook.rawValue + "-") && !keep.contains(name) { _ = try? chains.unpin(name) }
            pinnedChains.remove(hook)
        }
        if old != nil { sleepBlocking(gracePeriod) }
    }

    /// Where a plugin's maps are pinned: `plugins/<name>` below the host's pins.
    private func pinDirectory(of plugin: String) throws -> BPFPinDirectory? {
        try pins?.subdirectory("plugins").subdirectory(plugin)
    }

    /// The counter slot of (hook, plugin), allocated on first use and kept for good.
    private func slot(_ hook: PluginHook, _ name: String) throws -> UInt32 {
        let key = SlotKey(hook: hook, plugin: name)
        if let slot = slots[key] { return slot }
        guard slots.count < Int(MZ_PLUGIN_STATS_SLOTS) else {
            throw PluginError(.invalidChain, plugin: name, "all \(MZ_PLUGIN_STATS_SLOTS) counter slots are taken")
        }
        let slot = UInt32(slots.count)
        slots[key] = slot
        return slot
    }
}
