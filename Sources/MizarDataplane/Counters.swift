import CMizarABI
import MizarBPF

/// The slots of a per-CPU statistics array whose one value is `struct { mz_counter slot[MAX]; }`.
public protocol CounterSlot: RawRepresentable<UInt32>, CaseIterable, Hashable, Sendable, CustomStringConvertible where AllCases == [Self] {
    /// The C enum's `*_STAT_MAX`: the Swift cases must match it slot for slot.
    static var slotCount: UInt32 { get }
    /// Counted beside the packet's outcome rather than as one.
    var isEvent: Bool { get }
}

/// Counters by slot, summed over CPUs.
public struct SlotCounters<Slot: CounterSlot>: Sendable, Equatable, CustomStringConvertible {
    private var values: [Slot: Counter] = [:]

    public init() {}

    public subscript(slot: Slot) -> Counter {
        get { values[slot] ?? Counter() }
        set { values[slot] = newValue }
    }

    /// Packets of every outcome slot: each packet lands in exactly one.
    public var totalPackets: UInt64 {
        Slot.allCases.filter { !$0.isEvent }.reduce(0) { $0 + self[$1].packets }
    }

    /// What moved from `earlier` to `self`.
    public func delta(since earlier: SlotCounters) -> SlotCounters {
        var d = SlotCounters()
        for slot in Slot.allCases {
            d[slot] = Counter(packets: self[slot].packets &- earlier[slot].packets, bytes: self[slot].bytes &- earlier[slot].bytes)
        }
        return d
    }

    /// Non-zero slots as `name=packets`, in slot order.
    public var description: String {
        Slot.allCases.filter { self[$0].packets > 0 }.map { "\($0)=\(self[$0].packets)" }.joined(separator: " ")
    }

    /// Reads and sums the single value of a per-CPU statistics array.
    static func read<Value: BitwiseCopyable>(_ map: PerCPUMap<UInt32, Value>) throws -> SlotCounters {
        precondition(Slot.allCases.count == Int(Slot.slotCount) && MemoryLayout<Value>.size == Int(Slot.slotCount) * MemoryLayout<mz_counter>.size,
                     "\(Slot.self) does not match its C enum")
        var result = SlotCounters()
        for cpu in try map.lookup(0) ?? [] {
            withUnsafeBytes(of: cpu) { raw in
                for slot in Slot.allCases {
                    let c = raw.loadUnaligned(fromByteOffset: Int(slot.rawValue) * MemoryLayout<mz_counter>.size, as: mz_counter.self)
                    result[slot].packets += c.packets
                    result[slot].bytes += c.bytes
                }
            }
        }
        return result
    }
}

/// The slots of transit XDP's counters (`enum mz_transit_stat`).
public enum TransitStat: UInt32, CounterSlot {
    case nonIPv4, nonUDP, ipv4Fragment, nonGeneve, notForDroplet
    case delivered, bounced, divided, fallback
    case badEthernet, badIPv4, badUDP, badGeneve, badGeneveOption, geneveCritical, geneveProtocol, badInner, innerNonIPv4, innerTTL
    case unknownEndpoint, noNetwork, noBouncer, stale, outerTTL, notLocal
    case optionRTS, optionUnknown, learned, ingressChain

    public static var slotCount: UInt32 { MZ_TRANSIT_STAT_MAX.rawValue }
    public var isEvent: Bool { rawValue >= MZ_TRANSIT_OPT_RTS.rawValue }

    /// The verdict transit XDP gives packets of this outcome.
    public var action: XDPAction? {
        switch self {
        case .nonIPv4, .nonUDP, .ipv4Fragment, .nonGeneve, .notForDroplet: .pass
        // Not known to be overlay traffic: the stack judges (and counts) malformed IP itself.
        case .badEthernet, .badIPv4, .badUDP: .pass
        case .delivered: .redirect
        case .bounced, .divided, .fallback: .tx
        case .optionRTS, .optionUnknown, .learned, .ingressChain: nil
        default: .drop
        }
    }

    public var description: String {
        switch self {
        case .nonIPv4: "non_ipv4"
        case .nonUDP: "non_udp"
        case .ipv4Fragment: "ipv4_fragment"
        case .nonGeneve: "non_geneve"
        case .notForDroplet: "not_for_droplet"
        case .delivered: "delivered"
        case .bounced: "bounced"
        case .divided: "divided"
        case .fallback: "fallback_to_bouncer"
        case .badEthernet: "bad_ethernet"
        case .badIPv4: "bad_ipv4"
        case .badUDP: "bad_udp"
        case .badGeneve: "bad_geneve"
        case .badGeneveOption: "bad_geneve_option"
        case .geneveCritical: "geneve_critical_option"
        case .geneveProtocol: "geneve_not_ethernet"
        case .badInner: "bad_inner"
        case .innerNonIPv4: "inner_non_ipv4"
        case .innerTTL: "inner_ttl_zero"
        case .unknownEndpoint: "unknown_endpoint"
        case .noNetwork: "no_network"
        case .noBouncer: "no_bouncer"
        case .stale: "stale_endpoint"
        case .outerTTL: "outer_ttl_expired"
        case .notLocal: "not_local_after_plugins"
        case .optionRTS: "option_rts"
        case .optionUnknown: "option_unknown"
        case .learned: "direct_path_learned"
        case .ingressChain: "ingress_chain"
        }
    }
}

/// The slots of the transit agent's counters (`enum mz_agent_stat`).
public enum AgentStat: UInt32, CounterSlot {
    case local, toBouncer, direct, toDivider, arpReplied, leftOverlay
    case spoofedMAC, spoofedIP, badEthernet, badIPv4, badARP, unsupported, broadcast, ttlExpired, tooBig, arpIgnored
    case unknownPort, noRoute, noBouncer, noDivider, encapFailed
    case egressChain

    public static var slotCount: UInt32 { MZ_AGENT_STAT_MAX.rawValue }
    public var isEvent: Bool { rawValue >= MZ_AGENT_EGRESS_CHAIN.rawValue }

    /// The verdict the agent gives packets of this outcome (nil for events).
    public var action: XDPAction? {
        switch self {
        case .local, .toBouncer, .direct, .toDivider, .leftOverlay: .redirect
        case .arpReplied: .tx
        case .egressChain: nil
        default: .drop
        }
    }

    public var description: String {
        switch self {
        case .local: "local"
        case .toBouncer: "to_bouncer"
        case .direct: "direct_path"
        case .toDivider: "to_divider"
        case .arpReplied: "arp_replied"
        case .leftOverlay: "left_overlay"
        case .spoofedMAC: "spoofed_mac"
        case .spoofedIP: "spoofed_ip"
        case .badEthernet: "bad_ethernet"
        case .badIPv4: "bad_ipv4"
        case .badARP: "bad_arp"
        case .unsupported: "unsupported_protocol"
        case .broadcast: "broadcast"
        case .ttlExpired: "ttl_expired"
        case .tooBig: "too_big"
        case .arpIgnored: "arp_ignored"
        case .unknownPort: "unknown_port"
        case .noRoute: "no_route"
        case .noBouncer: "no_bouncer"
        case .noDivider: "no_divider"
        case .encapFailed: "encap_failed"
        case .egressChain: "egress_chain"
        }
    }
}

public typealias TransitCounters = SlotCounters<TransitStat>
public typealias AgentCounters = SlotCounters<AgentStat>
