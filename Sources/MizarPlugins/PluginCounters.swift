import CMizarABI
import MizarBPF

/// What a plugin decided (`enum mz_verdict`): the slots of its counters.
public enum PluginVerdict: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case `continue`, drop, pass
    /// Continued, but the next position was empty, so the frame was dropped. A chain the
    /// manager built never has a gap: any count here is a bug.
    case aborted

    public var description: String {
        switch self {
        case .continue: "continue"
        case .drop: "drop"
        case .pass: "pass"
        case .aborted: "aborted"
        }
    }
}

/// One (hook, plugin)'s counters, summed over CPUs.
public struct PluginCounters: Sendable, Equatable, CustomStringConvertible {
    public var verdicts: [PluginVerdict: Counter] = [:]
    /// Drops by the plugin's reason code (0..15).
    public var dropReasons: [Counter] = Array(repeating: Counter(), count: Int(MZ_PLUGIN_DROP_REASONS))
    /// The names its descriptor gives the reason codes (`PluginDescriptor.reasons`).
    public var reasonNames: [Int: String] = [:]

    public init(reasonNames: [Int: String] = [:]) { self.reasonNames = reasonNames }

    public subscript(verdict: PluginVerdict) -> Counter { verdicts[verdict] ?? Counter() }

    /// Drops under the reason the descriptor names `reason` (or `invalid-verdict`); nil when there is no such name.
    public func dropped(_ reason: String) -> Counter? {
        dropReasons.indices.first { reasonName($0) == reason }.map { dropReasons[$0] }
    }

    /// The name of reason `code`: declared, `invalid-verdict` for 15, or `reasonN`.
    public func reasonName(_ code: Int) -> String { reasonNames[code] ?? Self.defaultReasonName(code) }

    /// What an undeclared code is called: 15 is where the chain counts a plugin's invalid verdict.
    public static func defaultReasonName(_ code: Int) -> String { code == Int(MZ_PLUGIN_DROP_REASONS) - 1 ? "invalid-verdict" : "reason\(code)" }

    /// Reasons with drops, by name (declared, or `reasonN`), in code order.
    public var namedDrops: [(reason: String, counter: Counter)] {
        dropReasons.enumerated().filter { $0.element.packets > 0 }.map { (reasonName($0.offset), $0.element) }
    }

    /// Frames the plugin judged (aborted ones are also counted as continued).
    public var packets: UInt64 { self[.continue].packets + self[.drop].packets + self[.pass].packets }

    public func delta(since earlier: PluginCounters) -> PluginCounters {
        var d = PluginCounters(reasonNames: reasonNames)
        for v in PluginVerdict.allCases {
            d.verdicts[v] = Counter(packets: self[v].packets &- earlier[v].packets, bytes: self[v].bytes &- earlier[v].bytes)
        }
        for i in dropReasons.indices {
            d.dropReasons[i] = Counter(packets: dropReasons[i].packets &- earlier.dropReasons[i].packets,
                                       bytes: dropReasons[i].bytes &- earlier.dropReasons[i].bytes)
        }
        return d
    }

    public var description: String {
        var parts = PluginVerdict.allCases.filter { self[$0].packets > 0 }.map { "\($0)=\(self[$0].packets)" }
        for (reason, c) in namedDrops { parts.append("\(reason)=\(c.packets)") }
        return parts.isEmpty ? "-" : parts.joined(separator: " ")
    }

    static func read(_ map: PerCPUMap<UInt32, mz_plugin_stats>, slot: UInt32) throws -> PluginCounters {
        var result = PluginCounters()
        for cpu in try map.lookup(slot) ?? [] {
            withUnsafeBytes(of: cpu) { raw in
                let size = MemoryLayout<mz_counter>.size
                for v in PluginVerdict.allCases {
                    let c = raw.loadUnaligned(fromByteOffset: Int(v.rawValue) * size, as: mz_counter.self)
                    result.verdicts[v, default: Counter()].packets += c.packets
                    result.verdicts[v, default: Counter()].bytes += c.bytes
                }
                let base = Int(MZ_VERDICT_MAX.rawValue) * size
                for i in result.dropReasons.indices {
                    let c = raw.loadUnaligned(fromByteOffset: base + i * size, as: mz_counter.self)
                    result.dropReasons[i].packets += c.packets
                    result.dropReasons[i].bytes += c.bytes
                }
            }
        }
        return result
    }
}
