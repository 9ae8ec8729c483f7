import CMizarABI
import MizarBPF

/// The program type a chain is built of: a hook point's root and continuation decide it.
public enum ProgramFlavor: String, Sendable, CaseIterable {
    case xdp, tc

    /// The program `MZ_PLUGIN(entry)` compiles for this flavour.
    func program(of entry: String) -> String { entry + "_" + rawValue }
}

/// One place a hook's chain runs: the root its core tail-calls (key 0) and the core's
/// continuation that takes the last position of every chain built for it.
public struct HookPoint: Sendable {
    public let hook: PluginHook
    public let flavor: ProgramFlavor
    public let root: ProgramArray
    public let continuation: BPFProgram

    public init(hook: PluginHook, flavor: ProgramFlavor, root: ProgramArray, continuation: BPFProgram) {
        self.hook = hook
        self.flavor = flavor
        self.root = root
        self.continuation = continuation
    }

    /// The hook point whose root map and continuation program `object` defines under these names.
    public init(_ hook: PluginHook, _ flavor: ProgramFlavor, root: String, continuation: String, in object: BPFObject) throws {
        self.init(hook: hook, flavor: flavor, root: try ProgramArray(object.map(named: root)), continuation: try object.program(named: continuation))
    }
}

/// What a core offers its plugins: the shared context and counter maps, and its hook
/// points. A droplet is one host; the SDK's harness is another.
public struct PluginHost: Sendable {
    public let context: BPFMapHandle
    public let stats: BPFMapHandle
    /// `mz_chain_active`: tells the core which hooks have a chain, so that the others skip it.
    public let active: BPFMap<UInt32, UInt32>
    public let points: [HookPoint]

    /// The trace ring and its lost-event count, by name: plugins built with them emit into these.
    public let trace: [String: BPFMapHandle]

    public init(context: BPFMapHandle, stats: BPFMapHandle, active: BPFMapHandle, trace: [String: BPFMapHandle] = [:], points: [HookPoint]) throws {
        self.context = context
        self.stats = stats
        self.active = try BPFMap(active)
        self.trace = trace
        self.points = points
    }

    /// A host whose shared maps are those `object` defines (`mz_plugin_ctx`, `mz_plugin_stats`, `mz_chain_active`,
    /// and the trace ring with its lost-event count).
    public init(sharingMapsOf object: BPFObject, points: [HookPoint]) throws {
        var trace: [String: BPFMapHandle] = [:]
        for name in traceMaps where object.mapNames.contains(name) { trace[name] = try object.map(named: name) }
        try self.init(context: object.map(named: MZ_PLUGIN_CTX_MAP), stats: object.map(named: MZ_PLUGIN_STATS_MAP),
                      active: object.map(named: MZ_CHAIN_ACTIVE_MAP), trace: trace, points: points)
    }

    func points(of hook: PluginHook) -> [HookPoint] { points.filter { $0.hook == hook } }
}
