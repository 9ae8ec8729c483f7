import CMizarABI
import Foundation
import MizarBPF
import MizarPlugins
import Synchronization

/// What the core tells a chain about a frame (`struct mz_plugin_ctx`), as a test sets it.
public struct HarnessContext: Sendable, Equatable {
    public var vni: UInt32
    /// Host-side veth of the endpoint (sender at egress, receiver at ingress).
    public var ifindex: UInt32
    public var endpointIP: IPv4Address
    /// The endpoint network's prefix length (egress).
    public var networkPrefixLength: UInt8
    /// An ingress frame from outside the overlay (plain IPv4 to the droplet).
    public var external: Bool
    /// An ingress frame whose destination is in no network of the VPC (`MZ_CTX_UNKNOWN_DESTINATION`).
    public var unknownDestination = false
    /// An egress frame whose source is not the endpoint's address (`MZ_CTX_FOREIGN_SOURCE`).
    public var foreignSource = false

    public init(vni: UInt32 = 100, ifindex: UInt32 = 7, endpointIP: IPv4Address = IPv4Address(value: 0),
                networkPrefixLength: UInt8 = 24, external: Bool = false) {
        self.vni = vni
        self.ifindex = ifindex
        self.endpointIP = endpointIP
        self.networkPrefixLength = networkPrefixLength
        self.external = external
    }
}

/// How a frame left the chain.
public enum HarnessVerdict: String, Sendable, Equatable {
    /// Every plugin continued: the core would forward the frame.
    case forwarded
    /// A plugin dropped it.
    case dropped
    /// A plugin passed it to the kernel stack.
    case passed
    /// The harness refused the frame: it is not IPv4 (chains only see IPv4).
    case notIPv4
}

/// One frame's trip through a chain.
public struct HarnessResult: Sendable {
    public var verdict: HarnessVerdict
    /// The frame as it left (rewritten by the plugins).
    public var packet: [UInt8]
    /// For a forwarded frame: the context as the chain left it (vni, flags, steer_ip).
    public var context: mz_plugin_ctx?
    /// Nanoseconds per run, as the kernel measured (meaningful with `repeat` > 1).
    public var nanoseconds: UInt32

    /// The chain asked the core to send the frame out of the overlay (`MZ_CTX_LEAVE`).
    public var leaves: Bool { (context?.flags ?? 0) & UInt32(MZ_CTX_LEAVE) != 0 }
    /// A plugin vouched for the frame's foreign source (`MZ_CTX_SOURCE_VOUCHED`).
    public var vouched: Bool { (context?.flags ?? 0) & UInt32(MZ_CTX_SOURCE_VOUCHED) != 0 }
    /// The endpoint the chain steers the frame to (`MZ_CTX_STEER`), if any.
    public var steeredTo: IPv4Address? {
        guard let context, context.flags & UInt32(MZ_CTX_STEER) != 0 else { return nil }
        return IPv4Address(networkOrder: context.steer_ip)
    }
}

/// Runs plugin chains against frames in the real kernel (`BPF_PROG_TEST_RUN`), without a
/// droplet: register plugins, set a chain, run frames, look at verdicts, bytes and counters.
/// The chain is built by the same `PluginChains` a droplet uses.
public final class PluginHarness: @unchecked Sendable {
    public let chains: PluginChains
    private let object: BPFObject
    private let xdpEntry: BPFProgram
    private let tcEntry: BPFProgram
    private let input: BPFMap<UInt32, mz_plugin_ctx>
    private let output: BPFMap<UInt32, mz_plugin_ctx>

    /// - Parameter locator: where the harness object and the plugins' objects are found.
    public init(locator: BPFObjectLocator = BPFObjectLocator()) throws {
        object = try locator.open(MZ_HARNESS_OBJECT)
        try object.load()
        xdpEntry = try object.program(named: MZ_HARNESS_XDP_PROG)
        tcEntry = try object.program(named: MZ_HARNESS_TC_PROG)
        input = try BPFMap(object.map(named: MZ_HARNESS_INPUT_MAP))
        output = try BPFMap(object.map(named: MZ_HARNESS_OUTPUT_MAP))
        let host = try PluginHost(sharingMapsOf: object, points: [
            HookPoint(.ingress, .xdp, root: MZ_HARNESS_INGRESS_ROOT_MAP, continuation: MZ_HARNESS_CONTINUE_XDP_PROG, in: object),
            HookPoint(.egress, .xdp, root: MZ_HARNESS_EGRESS_ROOT_MAP, continuation: MZ_HARNESS_CONTINUE_XDP_PROG, in: object),
            HookPoint(.egress, .tc, root: MZ_HARNESS_EGRESS_ROOT_TC_MAP, continuation: MZ_HARNESS_CONTINUE_TC_PROG, in: object),
            HookPoint(.transit, .xdp, root: MZ_HARNESS_TRANSIT_ROOT_MAP, continuation: MZ_HARNESS_CONTINUE_XDP_PROG, in: object),
        ])
        chains = try PluginChains(host: host, locator: locator)
        chains.gracePeriod = .zero // nothing is in flight between test runs
        chains.objectFallback = true // an author's descriptor file may sit apart from the object it builds
    }

    /// Registers `descriptor`, makes the chain of each of `hooks` exactly `[descriptor.name]`,
    /// and writes `configuration` when given.
    public convenience init(plugin descriptor: PluginDescriptor, hooks: [PluginHook], configuration: (any PluginConfiguration)? = nil,
                            locator: BPFObjectLocator = BPFObjectLocator()) throws {
        try self.init(locator: locator)
        try chains.register(descriptor)
        for hook in hooks { try chains.setChain(hook, [descriptor.name]) }
        if let configuration { try chains.configure(descriptor.name, configuration) }
    }

    /// Registers `descriptor` and makes `hook`'s chain exactly `[descriptor.name]`.
    public convenience init(plugin descriptor: PluginDescriptor, hook: PluginHook, locator: BPFObjectLocator = BPFObjectLocator()) throws {
        try self.init(plugin: descriptor, hooks: [hook], locator: locator)
    }

    /// Runs `frame` (Ethernet, IPv4) through `hook`'s chain in one of `hook.flavors` (TC
    /// exists at egress only, the transit agent's default entry; another flavour throws
    /// `PluginError(.invalidChain)`, never traps). At the transit hook the
    /// harness hands plugins the frame as it is (no Geneve around it).
    public func run(_ frame: [UInt8], hook: PluginHook, flavor: ProgramFlavor = .xdp, context: HarnessContext = HarnessContext(),
                    repeat count: UInt32 = 1) throws -> HarnessResult {
        guard hook.flavors.contains(flavor) else {
            throw PluginError(.invalidChain, plugin: chains.chain(hook).joined(separator: ","), "the \(hook) hook runs in XDP only; run it with flavor .xdp")
        }
        var start = mz_plugin_ctx()
        start.hook = hook.cValue
        start.flags = (context.external ? UInt32(MZ_CTX_EXTERNAL) : 0) | (context.unknownDestination ? UInt32(MZ_CTX_UNKNOWN_DESTINATION) : 0)
            | (context.foreignSource ? UInt32(MZ_CTX_FOREIGN_SOURCE) : 0)
        start.vni = context.vni
        start.ifindex = context.ifindex
        start.endpoint_ip = context.endpointIP.networkOrder
        start.net_plen = context.networkPrefixLength
        try input.update(0, start)
        try output.update(0, mz_plugin_ctx())
        let raw = flavor == .xdp ? try xdpEntry.testRun(packet: frame, repeat: count) : try tcEntry.testRunSKB(packet: frame, repeat: count)
        let verdict: HarnessVerdict
        switch (flavor, raw.returnValue) {
        case (.xdp, UInt32(MZ_HARNESS_XDP_FORWARD)), (.tc, UInt32(MZ_HARNESS_TC_FORWARD)): verdict = .forwarded
        case (.xdp, XDPAction.drop.rawValue), (.tc, TCAction.shot.rawValue): verdict = .dropped
        case (.xdp, XDPAction.pass.rawValue), (.tc, TCAction.ok.rawValue): verdict = .passed
        default: verdict = .notIPv4
        }
        return HarnessResult(verdict: verdict, packet: raw.packet, context: verdict == .forwarded ? try output.lookup(0) : nil,
                             nanoseconds: raw.nanosecondsPerRun)
    }

    /// A plugin's counters at `hook`.
    public func counters(_ plugin: String, at hook: PluginHook) throws -> PluginCounters {
        try chains.counters(plugin, at: hook)
    }
}

extension PluginHarness {
    /// Calls `send` on this thread, over and over, while `change` runs on another (a
    /// configuration switched under traffic), and rethrows what `change` threw. `send` gets
    /// the run's number and says whether the frame met what it must not (a rule half
    /// switched, a wrong backend). Returns how many frames were sent and how many of those
    /// met it. Switches wait the chains' usual grace period (20 ms) meanwhile, as on a
    /// droplet: packets are in flight here.
    public func whileChanging(_ change: @escaping @Sendable () throws -> Void, send: (Int) throws -> Bool) throws -> (sent: Int, met: Int) {
        let quiet = chains.gracePeriod
        chains.gracePeriod = .milliseconds(20)
        defer { chains.gracePeriod = quiet }
        let done = Atomic<Bool>(false)
        let failure = Mutex<(any Error)?>(nil)
        let changer = Thread {
            do { try change() } catch { failure.withLock { $0 = error } }
            done.store(true, ordering: .releasing)
        }
        changer.start()
        defer { while !done.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.001) } }  // a throwing `send` waits too
        var sent = 0, met = 0
        while !done.load(ordering: .acquiring) {
            if try send(sent) { met += 1 }
            sent += 1
        }
        try failure.withLock { if let error = $0 { throw error } }
        return (sent, met)
    }
}

/// `base` with its switch entry at a slot the one-entry generation map lacks: the kernel
/// refuses the switch after the new generation was written beside the live one. A plugin's
/// tests configure it to check that a refused switch changes nothing packets see.
public struct RefusedSwitch<Base: GenerationalConfiguration>: GenerationalConfiguration {
    public let base: Base

    public init(_ base: Base) { self.base = base }

    public var generationMap: String { base.generationMap }
    public func validate() throws { try base.validate() }
    public func generation(named value: [UInt8]) -> UInt32 { base.generation(named: value) }
    public func generation(ofKey key: [UInt8], in map: String) -> UInt32? { base.generation(ofKey: key, in: map) }
    public func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]] {
        var entries = try base.mapEntries(generation: generation)
        entries[generationMap] = entries[generationMap]?.map { PluginMapEntry(key: [5, 0, 0, 0], value: $0.value) }
        return entries
    }
}
