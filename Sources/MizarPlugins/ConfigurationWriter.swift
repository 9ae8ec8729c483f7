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

    /// Writes maps in place, in the descriptor's order and flushes (maps given no entries)
    /// last, so state is cleared only once the new rules are whole. A refused write puts
    /// back every map written; packets may meet one map's new entries beside another's old.
    func writeInPlace(_ wanted: [String: [PluginMapEntry]]) throws {
        var written: [(RawMap, RawMap.Snapshot)] = []
        for (mapName, entries) in ordered(wanted) {
            let raw = try map(mapName)
            do {
                // A flush is not put back (state judged afresh is never looser than the rules).
                if !entries.isEmpty { written.append((raw, try raw.snapshot())) }
                try raw.replaceAll(with: entries.map { ($0.key, $0.value) })
            } catch {
                try putBack(written, after: "writing map \(mapName): \(error)")
            }
        }
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
        let next: UInt32 = config.generation(named: try switchMap.lookup(key: zero) ?? []) == 0 ? 1 : 0
        let wanted = try config.mapEntries(generation: next)
        guard let switchEntry = wanted[config.generationMap]?.first, wanted[config.generationMap]?.count == 1,
              config.generation(named: switchEntry.value) == next else {
            throw PluginError(.invalidConfig, plugin: plugin, "the configuration must give \(config.generationMap) one entry naming generation \(next)")
        }
        var generational: [(name: String, map: RawMap, entries: [PluginMapEntry])] = [], inPlace: [String: [PluginMapEntry]] = [:]
        var flushes: [String] = []
        for (name, entries) in ordered(wanted) where name != config.generationMap {
            let raw = try map(name)
            if entries.isEmpty {
                flushes.append(name)
            } else if raw.handle.type == .array || entries.contains(where: { config.generation(ofKey: $0.key, in: name) == nil }) {
                inPlace[name] = entries
            } else if entries.allSatisfy({ config.generation(ofKey: $0.key, in: name) == next }) {
                generational.append((name, raw, entries))
            } else {
                throw PluginError(.invalidConfig, plugin: plugin, "entries for \(name) are not all of generation \(next)")
            }
        }
        // What an unfinished earlier write left of `next` goes first (no packet reads it);
        // then the new generation must fit beside the live one.
        var old: [String: [[UInt8]]] = [:]
        for (name, raw, entries) in generational {
            let keys = try raw.keys()
            for key in keys where config.generation(ofKey: key, in: name) == next { try raw.delete(key: key) }
            let live = keys.filter { config.generation(ofKey: $0, in: name) != next }
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
        // Switched: what packets no longer read goes.
        var left: [String] = []
        for (name, raw, _) in generational where (try? old[name, default: []].forEach { try raw.delete(key: $0) }) == nil { left.append(name) }
        for name in flushes where (try? map(name).replaceAll(with: [])) == nil { left.append(name) }
        guard left.isEmpty else {
            throw PluginError(.system, plugin: plugin, "the new configuration is in force, but clearing \(left.joined(separator: ", ")) failed: apply it again to finish")
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
