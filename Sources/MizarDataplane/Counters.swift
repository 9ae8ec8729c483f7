import CMizarABI
import MizarBPF

/// The slots of a per-CPU statistics array whose one value is `struct { mz_counter slot[MAX]; }`.
public protocol CounterSlot: RawRepresentable<UInt32>, CaseIterable, Hashable, Sendable, CustomStringConvertible where AllCases == [Self] {
    /// The C enum's `*_STAT_MAX`: `allCases` holds this many slots.
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

/// A slot as the C list (`MZ_TRANSIT_STATS`, `MZ_AGENT_STATS`) describes it: its name, what
/// the program does with the packets counted there, and what it counts.
public struct SlotInfo: Sendable, Hashable {
    public let name: String
    /// The verdict of the packets counted there; nil for an event (counted beside an outcome).
    public let action: XDPAction?
    public let doc: String

    init(_ info: mz_stat_info) {
        name = info.name.map { String(cString: $0) } ?? "?"
        doc = info.doc.map { String(cString: $0) } ?? ""
        action = switch info.kind {
        case MZ_STAT_PASS: .pass
        case MZ_STAT_TX: .tx
        case MZ_STAT_REDIRECT: .redirect
        case MZ_STAT_DROP: .drop
        default: nil
        }
    }
}

/// A slot whose name, verdict and meaning come from its row in a C X-macro list.
public protocol DescribedSlot: CounterSlot {
    init(rawValue: UInt32)
    static var infos: [SlotInfo] { get }
}

extension DescribedSlot {
    public static var allCases: [Self] { (0..<slotCount).map(Self.init(rawValue:)) }
    public var info: SlotInfo { Self.infos[Int(rawValue)] }
    public var isEvent: Bool { info.action == nil }
    /// The verdict the program gives packets of this outcome (nil for events).
    public var action: XDPAction? { info.action }
    public var description: String { info.name }
    /// The slot with this name, as counters print it.
    public init?(named name: String) {
        guard let slot = Self.allCases.first(where: { $0.info.name == name }) else { return nil }
        self = slot
    }
}

/// The slots of transit XDP's counters (`MZ_TRANSIT_STATS` in transit_xdp.h).
public struct TransitStat: DescribedSlot {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    init(_ stat: mz_transit_stat) { rawValue = stat.rawValue }

    public static let slotCount = MZ_TRANSIT_STAT_MAX.rawValue
    public static let infos = (0..<slotCount).map { SlotInfo(mz_transit_stat_info($0)) }

    public static let nonIPv4 = Self(MZ_TRANSIT_NON_IPV4), nonUDP = Self(MZ_TRANSIT_NON_UDP)
    public static let ipv4Fragment = Self(MZ_TRANSIT_IPV4_FRAGMENT), nonGeneve = Self(MZ_TRANSIT_NON_GENEVE)
    public static let notForDroplet = Self(MZ_TRANSIT_NOT_FOR_DROPLET)
    public static let delivered = Self(MZ_TRANSIT_DELIVERED), bounced = Self(MZ_TRANSIT_BOUNCED)
    public static let divided = Self(MZ_TRANSIT_DIVIDED), fallback = Self(MZ_TRANSIT_FALLBACK)
    public static let badEthernet = Self(MZ_TRANSIT_BAD_ETH), badIPv4 = Self(MZ_TRANSIT_BAD_IPV4), badUDP = Self(MZ_TRANSIT_BAD_UDP)
    public static let badGeneve = Self(MZ_TRANSIT_BAD_GENEVE), badGeneveOption = Self(MZ_TRANSIT_BAD_GENEVE_OPT)
    public static let geneveCritical = Self(MZ_TRANSIT_GENEVE_CRITICAL), geneveProtocol = Self(MZ_TRANSIT_GENEVE_PROTO)
    public static let badInner = Self(MZ_TRANSIT_BAD_INNER), innerNonIPv4 = Self(MZ_TRANSIT_INNER_NON_IPV4)
    public static let innerTTL = Self(MZ_TRANSIT_INNER_TTL)
    public static let geneveFromUnknownSource = Self(MZ_TRANSIT_GENEVE_FROM_UNKNOWN_SOURCE)
    public static let chainUnavailable = Self(MZ_TRANSIT_CHAIN_UNAVAILABLE)
    public static let unknownEndpoint = Self(MZ_TRANSIT_UNKNOWN_ENDPOINT), noNetwork = Self(MZ_TRANSIT_NO_NETWORK)
    public static let noBouncer = Self(MZ_TRANSIT_NO_BOUNCER), stale = Self(MZ_TRANSIT_STALE)
    public static let outerTTL = Self(MZ_TRANSIT_OUTER_TTL), notLocal = Self(MZ_TRANSIT_NOT_LOCAL)
    public static let optionRTS = Self(MZ_TRANSIT_OPT_RTS), optionUnknown = Self(MZ_TRANSIT_OPT_UNKNOWN)
    public static let learned = Self(MZ_TRANSIT_LEARNED), learnedNew = Self(MZ_TRANSIT_LEARNED_NEW)
    public static let rtsUnknownDroplet = Self(MZ_TRANSIT_RTS_UNKNOWN_DROPLET)
    public static let ingressChain = Self(MZ_TRANSIT_INGRESS_CHAIN), transitChain = Self(MZ_TRANSIT_TRANSIT_CHAIN)
}

/// The slots of the transit agent's counters (`MZ_AGENT_STATS` in transit_agent.h).
public struct AgentStat: DescribedSlot {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    init(_ stat: mz_agent_stat) { rawValue = stat.rawValue }

    public static let slotCount = MZ_AGENT_STAT_MAX.rawValue
    public static let infos = (0..<slotCount).map { SlotInfo(mz_agent_stat_info($0)) }

    public static let local = Self(MZ_AGENT_LOCAL), toBouncer = Self(MZ_AGENT_TO_BOUNCER), direct = Self(MZ_AGENT_DIRECT)
    public static let toDivider = Self(MZ_AGENT_TO_DIVIDER), arpReplied = Self(MZ_AGENT_ARP_REPLIED)
    public static let leftOverlay = Self(MZ_AGENT_LEFT_OVERLAY)
    public static let spoofedMAC = Self(MZ_AGENT_SPOOFED_MAC), spoofedIP = Self(MZ_AGENT_SPOOFED_IP)
    public static let badEthernet = Self(MZ_AGENT_BAD_ETH), badIPv4 = Self(MZ_AGENT_BAD_IPV4), badARP = Self(MZ_AGENT_BAD_ARP)
    public static let unsupported = Self(MZ_AGENT_UNSUPPORTED), broadcast = Self(MZ_AGENT_BROADCAST)
    public static let ttlExpired = Self(MZ_AGENT_TTL_EXPIRED), tooBig = Self(MZ_AGENT_TOO_BIG), arpIgnored = Self(MZ_AGENT_ARP_IGNORED)
    public static let underlayRefused = Self(MZ_AGENT_UNDERLAY_REFUSED)
    public static let unknownPort = Self(MZ_AGENT_UNKNOWN_PORT), noRoute = Self(MZ_AGENT_NO_ROUTE)
    public static let noBouncer = Self(MZ_AGENT_NO_BOUNCER), noDivider = Self(MZ_AGENT_NO_DIVIDER)
    public static let encapFailed = Self(MZ_AGENT_ENCAP_FAILED), chainUnavailable = Self(MZ_AGENT_CHAIN_UNAVAILABLE)
    public static let egressChain = Self(MZ_AGENT_EGRESS_CHAIN)
}

public typealias TransitCounters = SlotCounters<TransitStat>
public typealias AgentCounters = SlotCounters<AgentStat>
