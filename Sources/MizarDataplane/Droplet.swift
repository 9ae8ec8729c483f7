import CMizarABI
import Foundation
import Logging
import MizarBPF
import MizarNet
import MizarPlugins

/// Where the transit agent runs on an endpoint's host-side veth.
public enum AgentHook: String, Sendable, CaseIterable {
    /// TC ingress (cls_bpf, direct action): the endpoint keeps TSO/GSO and checksum
    /// offload, the encapsulated skb is segmented after the agent. The default: TCP
    /// throughput needs it (docs/transit-agent.md).
    case tc
    /// Native XDP: cheapest per packet, but every segment crosses it alone and the
    /// endpoint's tx checksum offload must be off.
    case xdp
}

/// One droplet's data plane: transit XDP for its substrate interface, the transit agent
/// for its endpoints' veths, and the tables both share.
///
/// Programming goes through the table methods (`setVPC`, `setNetwork`, `setEndpoint`,
/// `plug`, and their removals); every removal takes away each entry it created.
/// The droplet's roles follow from the tables: it bounces a network when its address is
/// among the network's bouncers and divides a VPC when it is among the VPC's dividers.
public final class Droplet: @unchecked Sendable {
    /// This droplet on the underlay.
    public let address: DropletAddress
    /// The substrate interface and the namespace it lives in.
    public let interface: String
    public let ifindex: Int32
    public let netns: Netns
    /// Substrate MTU; endpoints get `mtu - MZ_MTU_OVERHEAD`.
    public let mtu: UInt32
    public let maps: DataplaneMaps
    public let transitProgram: BPFProgram
    /// The transit agent as an XDP program and as a TC classifier (see `AgentHook`).
    public let agentProgram: BPFProgram
    public let agentTCProgram: BPFProgram
    /// Where plugged endpoints get their transit agent.
    public let agentHook: AgentHook
    /// XDP_PASS program for the endpoint side of each veth.
    public let vethPeerProgram: BPFProgram
    /// The plugin chains of this droplet's hooks: egress in the transit agent (both of its
    /// entries), ingress in transit XDP (docs/plugins.md).
    public let plugins: PluginChains
    /// Where transit XDP is attached, once `attach` succeeded.
    public private(set) var attachedMode: XDPMode?
    /// Where maps, links and chains are pinned so that they outlive the process; nil keeps
    /// everything in the process (the data plane goes with it).
    public let pins: BPFPinDirectory?
    /// True when the tables were taken over from pins left by an earlier process.
    public let adoptedTables: Bool
    /// True when the programs too were taken over (the same objects as before): nothing was
    /// loaded, the attached programs keep running as they are.
    public let adoptedPrograms: Bool

    let objects: DropletObjects
    let transitStats: PerCPUMap<UInt32, mz_transit_stats>
    let agentStats: PerCPUMap<UInt32, mz_agent_stats>
    let logger: Logger
    let lock = NSLock()
    var state = TableState()
    private var transitLink: BPFLink?
    /// An older build's droplet index (`DropletObjects.legacyIndexPin`), written beside the
    /// new one while this process lives; unpinned once `attach` has swapped transit XDP.
    var legacyDropletIndex: BPFMap<UInt32, UInt64>?

    /// The largest MTU an endpoint of this droplet may use.
    public var endpointMTU: UInt32 { mtu - UInt32(MZ_MTU_OVERHEAD) }

    /// Loads the programs and tables of a droplet and records its identity in them.
    /// Nothing is attached yet: see `attach(mode:)`.
    ///
    /// - Parameters:
    ///   - directPathMaxAge: how long a learned direct path is used without being refreshed;
    ///     zero turns the direct path off (everything passes the bouncers).
    ///   - pins: where to pin maps, links and chains (`/sys/fs/bpf/mizar/<interface>`): given, the
    ///     data plane outlives this process and a later `Droplet` on the same pins takes over
    ///     its tables, plugin state and attachments without a gap (docs/transitd.md).
    public init(address: DropletAddress, interface: String, ifindex: Int32, mtu: UInt32, netns: Netns = .host,
                limits: DropletLimits = DropletLimits(), directPathMaxAge: Duration = .seconds(30), agentHook: AgentHook = .tc,
                locator: BPFObjectLocator = BPFObjectLocator(), pins: BPFPinDirectory? = nil,
                logger: Logger = Logger(label: "mizar.dataplane")) throws {
        guard mtu > UInt32(MZ_MTU_OVERHEAD) + 68 else {
            throw DataplaneError(.invalidArgument, "substrate MTU \(mtu) leaves no room for the \(MZ_MTU_OVERHEAD)-byte overlay overhead")
        }
        self.address = address
        self.interface = interface
        self.ifindex = ifindex
        self.mtu = mtu
        self.netns = netns
        self.logger = logger
        self.agentHook = agentHook

        self.pins = pins
        objects = try DropletObjects(locator: locator, limits: limits, pins: pins)
        adoptedTables = objects.adoptedTables
        if !adoptedTables { state.endpointsBound = 0 }  // fresh tables: empty
        adoptedPrograms = objects.adoptedPrograms
        maps = try DataplaneMaps(objects.map)
        legacyDropletIndex = try objects.legacyDropletIndex.map { try BPFMap($0) }
        transitProgram = objects.program(MZ_TRANSIT_XDP_PROG)
        agentProgram = objects.program(MZ_TRANSIT_AGENT_PROG)
        agentTCProgram = objects.program(MZ_TRANSIT_AGENT_TC_PROG)
        vethPeerProgram = objects.program(MZ_VETH_PEER_PROG)
        transitStats = try PerCPUMap(objects.map(MZ_TRANSIT_STATS_MAP))
        agentStats = try PerCPUMap(objects.map(MZ_AGENT_STATS_MAP))
        let host = try PluginHost(context: objects.map(MZ_PLUGIN_CTX_MAP), stats: objects.map(MZ_PLUGIN_STATS_MAP),
                                  active: objects.map(MZ_CHAIN_ACTIVE_MAP),
                                  trace: [MZ_TRACE_EVENTS_MAP: objects.map(MZ_TRACE_EVENTS_MAP), MZ_TRACE_LOST_MAP: objects.map(MZ_TRACE_LOST_MAP)], points: [
            HookPoint(hook: .ingress, flavor: .xdp, root: try ProgramArray(objects.map(MZ_INGRESS_ROOT_MAP)), continuation: objects.program(MZ_INGRESS_CONTINUE_PROG)),
            HookPoint(hook: .transit, flavor: .xdp, root: try ProgramArray(objects.map(MZ_TRANSIT_ROOT_MAP)), continuation: objects.program(MZ_TRANSIT_CONTINUE_PROG)),
            HookPoint(hook: .egress, flavor: .tc, root: try ProgramArray(objects.map(MZ_EGRESS_ROOT_TC_MAP)), continuation: objects.program(MZ_EGRESS_CONTINUE_TC_PROG)),
            HookPoint(hook: .egress, flavor: .xdp, root: try ProgramArray(objects.map(MZ_EGRESS_ROOT_MAP)), continuation: objects.program(MZ_EGRESS_CONTINUE_PROG)),
        ])
        plugins = try PluginChains(host: host, locator: locator, pins: pins, logger: logger)

        var config = mz_droplet()
        config.`self` = address.c
        config.ifindex = UInt32(ifindex)
        config.mtu = mtu
        let ms = directPathMaxAge.components.seconds * 1000 + directPathMaxAge.components.attoseconds / 1_000_000_000_000_000
        config.direct_path_max_age_ms = UInt32(clamping: ms)
        // A droplet knows itself; the others come from the control plane (`setKnownDroplets`).
        try maps.droplets.update(address.ip.networkOrder, address.c)
        // Adopted tables keep their droplets; an index pinned by an older build may be missing.
        try writeDropletIndex(try maps.droplets.keys())
        try maps.droplet.update(0, config)
        try noteDirectPathBaseline()
    }

    /// Opens the droplet of `interface` in `netns`: its index, MAC, MTU and (unless given) first IPv4 address.
    public convenience init(interface: String, in netns: Netns = .host, ip: IPv4Address? = nil, limits: DropletLimits = DropletLimits(),
                            directPathMaxAge: Duration = .seconds(30), agentHook: AgentHook = .tc,
                            locator: BPFObjectLocator = BPFObjectLocator(), pins: BPFPinDirectory? = nil,
                            logger: Logger = Logger(label: "mizar.dataplane")) throws {
        let socket = try RouteSocket(in: netns)
        let link = try socket.link(named: interface)
        guard let mac = link.mac else { throw DataplaneError(.invalidArgument, "\(interface) has no MAC address: not an Ethernet device") }
        guard let ip = try ip ?? socket.addresses(of: link.index).first?.address else {
            throw DataplaneError(.invalidArgument, "\(interface) has no IPv4 address; give the droplet's IP explicitly")
        }
        try self.init(address: DropletAddress(ip: ip, mac: mac), interface: interface, ifindex: link.index, mtu: link.mtu,
                      netns: netns, limits: limits, directPathMaxAge: directPathMaxAge, agentHook: agentHook, locator: locator,
                      pins: pins, logger: logger)
    }

    /// Attaches transit XDP to the substrate interface. `.native` is tried first; when the
    /// driver lacks native XDP the program runs in generic mode, which is logged and kept in
    /// `attachedMode` (mode `.native` given explicitly never falls back).
    /// With pins, a transit XDP link pinned by an earlier process is taken over and its
    /// program replaced in one atomic update (no frame sees the interface without one).
    public func attach(mode: XDPMode = .auto) throws {
        try lock.withLock {
            guard transitLink == nil else { throw DataplaneError(.invalidState, "transit XDP is already attached to \(interface)") }
            let (link, used) = try attachXDP(transitProgram, ifindex: ifindex, in: netns, mode: mode, what: "transit XDP on \(interface)",
                                             pin: Droplet.transitLinkPin)
            transitLink = link
            attachedMode = used
            // Transit XDP is swapped, and so are the agents that were plugged again: the old
            // index's pin goes. It is still written while this process lives, for an older
            // agent a failed plug left on its veth.
            if legacyDropletIndex != nil { _ = try? pins?.subdirectory("maps").unpin(DropletObjects.legacyIndexPin) }
        }
    }

    /// Detaches every program this droplet attached (transit XDP and the agents of plugged
    /// endpoints) and removes their pins. Tables stay as they are.
    public func detach() {
        lock.withLock {
            try? transitLink?.detach()
            _ = try? pins?.subdirectory("links").unpin(Droplet.transitLinkPin)
            transitLink = nil
            attachedMode = nil
            for local in state.locals.values { local.detach() }
        }
    }

    /// Detaches everything, takes the chains down and removes every pin: nothing of this
    /// droplet is left in the kernel once the process ends.
    public func removeAll() throws {
        try plugins.setChain(.egress, [])
        try plugins.setChain(.ingress, [])
        detach()
        try pins?.removeAll()
    }

    static let transitLinkPin = "transit_xdp"

    /// Transit XDP's counters, summed over CPUs.
    public func transitCounters() throws -> TransitCounters { try .read(transitStats) }

    /// The transit agents' counters (all endpoints of the droplet), summed over CPUs.
    public func agentCounters() throws -> AgentCounters { try .read(agentStats) }

    /// Attaches `program` in `netns`, native first unless a mode is forced. With pins, the
    /// link is pinned as `links/<pin>`; a link already pinned there is taken over and
    /// updated to `program` atomically.
    func attachXDP(_ program: BPFProgram, ifindex: Int32, in netns: Netns, mode: XDPMode, what: String, pin: String?) throws -> (BPFLink, XDPMode) {
        guard let pin, let links = try pins?.subdirectory("links") else { return try attachXDP(program, ifindex: ifindex, in: netns, mode: mode, what: what) }
        if links.contains(pin) {
            do {
                let link = try links.openLink(pin)
                try link.update(to: program)
                let used = try netns.perform { try XDP.query(ifindex: ifindex) }.mode ?? .native
                return (link, used)
            } catch {
                // The device went away since (its link is severed): attach afresh.
                logger.warning("pinned XDP link unusable; attaching anew", metadata: ["what": "\(what)", "error": "\(error)"])
                try links.unpin(pin)
            }
        }
        let (link, used) = try attachXDP(program, ifindex: ifindex, in: netns, mode: mode, what: what)
        try links.pin(link, as: pin)
        return (link, used)
    }

    private func attachXDP(_ program: BPFProgram, ifindex: Int32, in netns: Netns, mode: XDPMode, what: String) throws -> (BPFLink, XDPMode) {
        try netns.perform {
            guard mode == .auto else { return (try XDP.attach(program, ifindex: ifindex, mode: mode), mode) }
            do {
                return (try XDP.attach(program, ifindex: ifindex, mode: .native), .native)
            } catch {
                logger.warning("native XDP impossible, running generic (slow path)", metadata: ["what": "\(what)", "error": "\(error)"])
                return (try XDP.attach(program, ifindex: ifindex, mode: .generic), .generic)
            }
        }
    }
}

extension Droplet {
    /// Another copy of one of the droplet's objects, or of a variant built from the same
    /// source (`<name>_<variant>.bpf.o`, make bench's baselines), loaded over its tables
    /// (`DataplaneMaps`); every other map (counters, chain roots, chain context) is the
    /// copy's own. Benchmarks compare variants of a program on the very same tables.
    public func loadCopy(of objectFile: String, variant: String? = nil) throws -> BPFObject {
        let file = variant.map { objectFile.replacingOccurrences(of: ".bpf.o", with: "_\($0).bpf.o") } ?? objectFile
        let object = try plugins.locator.open(file)
        for name in DataplaneMaps.names { try object.reuseMap(name, from: objects.map(name)) }
        try object.load()
        return object
    }
}
