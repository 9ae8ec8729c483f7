import CMizarABI
import Foundation
import MizarBPF

/// The transit XDP program of a droplet's substrate interface, loaded, with its counters.
public final class TransitXDP: @unchecked Sendable {
    public let object: BPFObject
    public let program: BPFProgram
    /// One value per CPU holding every slot (`struct mz_transit_stats`).
    public let stats: PerCPUMap<UInt32, mz_transit_stats>

    /// Opens and loads `transit_xdp.bpf.o` from `locator`.
    public init(locator: BPFObjectLocator = BPFObjectLocator()) throws {
        object = try locator.open(MZ_TRANSIT_XDP_OBJECT)
        try object.load()
        program = try object.program(named: MZ_TRANSIT_XDP_PROG)
        stats = try PerCPUMap(object.map(named: MZ_TRANSIT_STATS_MAP))
    }

    /// Counters summed over CPUs, by slot.
    public func counters() throws -> TransitCounters {
        var result = TransitCounters()
        for var cpu in try stats.lookup(0) ?? [] {
            withUnsafeBytes(of: &cpu.slot) { raw in
                let slots = raw.bindMemory(to: mz_counter.self)
                for stat in TransitStat.allCases {
                    result[stat].packets += slots[Int(stat.rawValue)].packets
                    result[stat].bytes += slots[Int(stat.rawValue)].bytes
                }
            }
        }
        return result
    }
}

/// Packets and bytes.
public struct Counter: Sendable, Hashable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0

    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// The slots of transit XDP's counters (`enum mz_transit_stat`).
public enum TransitStat: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case nonIPv4, nonUDP, ipv4Fragment, nonGeneve, geneve
    case badEthernet, badIPv4, badUDP, badGeneve, badGeneveOption, geneveCritical, geneveProtocol, badInner
    case optionRTS, optionUnknown

    /// Counts options, beside the packet's outcome.
    public var isOption: Bool { rawValue >= MZ_TRANSIT_OPT_RTS.rawValue }

    public var description: String {
        switch self {
        case .nonIPv4: "non_ipv4"
        case .nonUDP: "non_udp"
        case .ipv4Fragment: "ipv4_fragment"
        case .nonGeneve: "non_geneve"
        case .geneve: "geneve"
        case .badEthernet: "bad_ethernet"
        case .badIPv4: "bad_ipv4"
        case .badUDP: "bad_udp"
        case .badGeneve: "bad_geneve"
        case .badGeneveOption: "bad_geneve_option"
        case .geneveCritical: "geneve_critical_option"
        case .geneveProtocol: "geneve_not_ethernet"
        case .badInner: "bad_inner_ethernet"
        case .optionRTS: "option_rts"
        case .optionUnknown: "option_unknown"
        }
    }
}

// The Swift enum must match the C enum slot for slot.
private let _slotsMatch: Void = {
    precondition(TransitStat.allCases.count == Int(MZ_TRANSIT_STAT_MAX.rawValue))
    precondition(TransitStat.optionRTS.rawValue == MZ_TRANSIT_OPT_RTS.rawValue)
    precondition(TransitStat.badInner.rawValue == MZ_TRANSIT_BAD_INNER.rawValue)
}()

/// Transit XDP's counters by slot.
public struct TransitCounters: Sendable, Equatable {
    private var values: [TransitStat: Counter] = [:]

    public init() { _ = _slotsMatch }

    public subscript(stat: TransitStat) -> Counter {
        get { values[stat] ?? Counter() }
        set { values[stat] = newValue }
    }

    /// Packets of every outcome slot: each packet lands in exactly one.
    public var totalPackets: UInt64 {
        TransitStat.allCases.filter { !$0.isOption }.reduce(0) { $0 + self[$1].packets }
    }

    /// What moved from `earlier` to `self`.
    public func delta(since earlier: TransitCounters) -> TransitCounters {
        var d = TransitCounters()
        for stat in TransitStat.allCases {
            d[stat] = Counter(packets: self[stat].packets &- earlier[stat].packets, bytes: self[stat].bytes &- earlier[stat].bytes)
        }
        return d
    }
}
