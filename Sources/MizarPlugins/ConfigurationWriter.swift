import Foundation
import MizarBPF

/// Writes a checked configuration into one plugin's maps (`PluginChains.configure`, with
/// the chains' lock held). Either the whole configuration is in force afterwards or, when
/// a write is refused before it is, the previous one is.
struct ConfigurationWriter {
    let plugin: String
    /// The plugin's map of that name.
    let map: (String) throws -> RawMap
    /// The descriptor's map names, in its order.
    let order: [String]
    /// How long keys the new configuration no longer names stay after it is in force: a
    /// packet that read the old generation before the switch finishes on it (a policy gone
    /// from under it would read as "not filtered").
    let gracePeriod: Duration

    /// Writes maps in place: first every keyed map's new entries beside its old ones (in the
    /// descriptor's order), then arrays (where a switch such as a generation lives), then the
    /// keys the configuration no longer names, flushes (maps given no entries) last. A
    /// refused write before the stale keys go puts back every map written. Packets may meet
    /// one map's new entries beside another's old, never an emptied map mid-write. A raw
    /// write to a generational plugin is generation 0 written this way: an array it splits by
    /// generation is rewritten whole, so the live half of generation 1 is zeroed until the
    /// switch (use the typed configuration).
    func writeInPlace(_ wanted: [String: [PluginMapEntry]]) throws {
        var keyed: [(RawMap, [PluginMapEntry])] = [], arrays: [(RawMap, [PluginMapEntry])] = [], flushes: [RawMap] = []
        for (name, entries) in ordered(wanted) {
            let raw = try map(name)
            if entries.isEmpty { flushes.append(raw) } else if raw.handle.type == .array { arrays.append((raw, entries)) } else { keyed.append((raw, entries)) }
        }
        var written: [(RawMap, RawMap.Snapshot)] = [], stale: [(RawMap, [[UInt8]])] = [], current = ""
        do {
            for (raw, entries) in keyed {
                current = raw.handle.name
                let before = try raw.snapshot()
                written.append((raw, before))
                let keys = Set(entries.map(\.key))
                let old = before.keys.filter { !keys.contains($0) }
                if old.count + keys.count > Int(raw.handle.maxEntries) {
                    // No room for both: this map is rewritten stale keys first.
                    try raw.replaceAll(with: entries.map { ($0.key, $0.value) })
                    continue
                }
                for entry in entries { try raw.update(key: entry.key, value: entry.value) }
                stale.append((raw, old))
            }
            for (raw, entries) in arrays {
                current = raw.handle.name
                written.append((raw, try raw.snapshot()))
                try raw.replaceAll(with: entries.map { ($0.key, $0.value) })
            }
        } catch {
            try putBack(written, after: "writing map \(current): \(error)")
        }
        try clear(stale, flushes)
    }

    /// Writes `config` as the generation the live one is not, beside it, switches its
    /// generation map over in one write, then deletes the old generation and flushes
    /// (`GenerationalConfiguration`). A packet meets the old configuration or the new one.
    func writeGeneration(_ config: any GenerationalConfiguration) throws {
        let zero = [UInt8](repeating: 0, count: 4)
        let switchMap = try map(config.generationMap)
        guard switchMap.handle.type == .array, switchMap.handle.maxEntries == 1 else {
            throw PluginError(.invalidConfig, plugin: plugin, "generation map \(config.generationMap) must be an array of one entry")
        }
        // Generations count up; keys carry the low bit, so two sets fit side by side.
        let next = config.generation(named: try switchMap.lookup(key: zero) ?? []) &+ 1, slot = next & 1
        let wanted = try config.mapEntries(generation: next)
        guard let switchEntry = wanted[config.generationMap]?.first, wanted[config.generationMap]?.count == 1,
              config.generation(named: switchEntry.value) == next else {
            throw PluginError(.invalidConfig, plugin: plugin, "the configuration must give \(config.generationMap) one entry naming generation \(next)")
        }
        try Self.check([switchEntry], for: switchMap.handle, plugin: plugin)
        var generational: [(name: String, map: RawMap, entries: [PluginMapEntry])] = [], inPlace: [String: [PluginMapEntry]] = [:]
        var halves: [(map: RawMap, slots: Range<Int>, entries: [PluginMapEntry])] = [], flushes: [RawMap] = []
        func isGenerational(_ name: String, _ handle: BPFMapHandle) -> Bool {
            config.generation(ofKey: [UInt8](repeating: 0, count: handle.keySize), in: name) != nil
        }
        // A generational map the configuration leaves out is emptied by the switch as well.
        var named = wanted
        for name in order where named[name] == nil && name != config.generationMap {
            if isGenerational(name, try map(name).handle) { named[name] = [] }
        }
        for (name, entries) in ordered(named) where name != config.generationMap {
            let raw = try map(name)
            try Self.check(entries, for: raw.handle, plugin: plugin)
            // Generational by map, not by entries: one given none is emptied by the switch, not flushed.
            if isGenerational(name, raw.handle) {
                guard entries.allSatisfy({ config.generation(ofKey: $0.key, in: name) == slot }) else {
                    throw PluginError(.invalidConfig, plugin: plugin, "entries for \(name) are not all keyed by generation \(next) (low bit \(slot))")
                }
                if raw.handle.type == .array {
                    let slots = try Self.half(slot, of: raw.handle, placedBy: { config.generation(ofKey: $0, in: name) }, plugin: plugin)
                    guard entries.allSatisfy({ slots.contains(Int(pluginField($0.key, at: 0))) }) else {
                        throw PluginError(.invalidConfig, plugin: plugin, "entries for \(name) lie outside generation \(next)'s slots \(slots)")
                    }
                    halves.append((raw, slots, entries))
                } else {
                    generational.append((name, raw, entries))
                }
            } else if entries.isEmpty {
                flushes.append(raw)
            } else {
                inPlace[name] = entries
            }
        }
        // What an unfinished earlier write left of `next` goes first (no packet reads it);
        // then the new generation must fit beside the live one.
        var old: [String: [[UInt8]]] = [:]
        for (name, raw, entries) in generational {
            let keys = try raw.keys()
            for key in keys where config.generation(ofKey: key, in: name) == slot { try raw.delete(key: key) }
            let live = keys.filter { config.generation(ofKey: $0, in: name) != slot }
            guard live.count + Set(entries.map(\.key)).count <= Int(raw.handle.maxEntries) else {
                throw PluginError(.invalidConfig, plugin: plugin, "\(entries.count) entries for \(name) do not fit beside the \(live.count) live ones (it holds \(raw.handle.maxEntries)); nothing was written")
            }
            old[name] = live
        }
        var written: [(RawMap, RawMap.Snapshot)] = []
        do {
            for (_, raw, entries) in generational {
                for entry in entries { try raw.update(key: entry.key, value: entry.value) }
            }
            // The next generation's half of an array, whole (no packet reads it before the switch).
            for (raw, slots, entries) in halves { try raw.replaceSlots(slots, with: entries.map { ($0.key, $0.value) }) }
            for (name, entries) in ordered(inPlace) {
                let raw = try map(name)
                written.append((raw, try raw.snapshot()))
                try raw.replaceAll(with: entries.map { ($0.key, $0.value) })
            }
            try switchMap.update(key: switchEntry.key, value: switchEntry.value)  // the kernel checks the slot
        } catch {
            // Not switched: the new generation is unreadable; it goes, and in-place maps come back.
            for (_, raw, entries) in generational {
                for entry in entries { _ = try? raw.delete(key: entry.key) }
            }
            try putBack(written, after: "writing generation \(next): \(error)")
        }
        // Switched: what packets no longer read goes, once a packet that read the old
        // generation is done with it (also when nothing goes: the next write rewrites the old half).
        try clear(generational.map { ($0.map, old[$0.name, default: []]) }, flushes, wait: true)
    }

    /// Once the new configuration is in force: deletes keys it no longer names, then flushes.
    private func clear(_ stale: [(RawMap, [[UInt8]])], _ flushes: [RawMap], wait: Bool = false) throws {
        if wait || stale.contains(where: { !$0.1.isEmpty }) { sleepBlocking(gracePeriod) }
        var left: [String] = []
        for (raw, keys) in stale where (try? keys.forEach { try raw.delete(key: $0) }) == nil { left.append(raw.handle.name) }
        for raw in flushes where (try? raw.replaceAll(with: [])) == nil { left.append(raw.handle.name) }
        guard left.isEmpty else {
            throw PluginError(.system, plugin: plugin, "the new configuration is in force, but clearing \(left.joined(separator: ", ")) failed: apply it again to finish")
        }
    }

    /// The slots of generation `slot` in a generational array: the first half holds
    /// generation 0, the second generation 1, as `generation` must place its indices.
    static func half(_ slot: UInt32, of handle: BPFMapHandle, placedBy generation: ([UInt8]) -> UInt32?, plugin: String) throws -> Range<Int> {
        let half = Int(handle.maxEntries) / 2
        func index(_ i: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(i), Array.init) }
        guard handle.keySize == 4, handle.maxEntries % 2 == 0, generation(index(0)) == 0, generation(index(half - 1)) == 0,
              generation(index(half)) == 1, generation(index(2 * half - 1)) == 1 else {
            throw PluginError(.invalidConfig, plugin: plugin, "generational array \(handle.name) must hold generation 0 in its first half and 1 in its second")
        }
        return slot == 0 ? 0..<half : half..<2 * half
    }

    /// Throws `.invalidConfig` unless `entries` have the map's key and value sizes and fit it.
    static func check(_ entries: [PluginMapEntry], for handle: BPFMapHandle, plugin: String) throws {
        for entry in entries where entry.key.count != handle.keySize || entry.value.count != handle.valueSize {
            throw PluginError(.invalidConfig, plugin: plugin, "an entry for \(handle.name) has a \(entry.key.count)-byte key and \(entry.value.count)-byte value; the map takes \(handle.keySize) and \(handle.valueSize)")
        }
        guard entries.count <= Int(handle.maxEntries) else {
            throw PluginError(.invalidConfig, plugin: plugin, "\(entries.count) entries for \(handle.name), which holds \(handle.maxEntries)")
        }
    }

    /// Maps in the descriptor's order, flushes last.
    private func ordered(_ wanted: [String: [PluginMapEntry]]) -> [(key: String, value: [PluginMapEntry])] {
        wanted.sorted { a, b in
            (a.value.isEmpty ? 1 : 0, order.firstIndex(of: a.key) ?? order.count) < (b.value.isEmpty ? 1 : 0, order.firstIndex(of: b.key) ?? order.count)
        }
    }

    /// Puts back what was written, newest first, and throws `why` with how that went.
    private func putBack(_ written: [(RawMap, RawMap.Snapshot)], after why: String) throws -> Never {
        let unrestored = written.reversed().compactMap { map, before in (try? map.restore(before)) == nil ? map.handle.name : nil }
        guard unrestored.isEmpty else {
            throw PluginError(.system, plugin: plugin, "\(why); putting the previous configuration back failed for \(unrestored.joined(separator: ", ")): apply a configuration again")
        }
        throw PluginError(.system, plugin: plugin, "\(why); the previous configuration is back in place")
    }
}

/// Blocks the calling thread for `duration` (chain and configuration changes run under the
/// chains' lock, off any event loop).
func sleepBlocking(_ duration: Duration) {
    let (seconds, atto) = duration.components
    Thread.sleep(forTimeInterval: Double(seconds) + Double(atto) / 1e18)
}
