import MizarPlugins

/// Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights: each backend
/// walks its own permutation of the table's slots and claims the next free one, weight
/// times per round. Removing a backend frees its slots; the others keep nearly all of theirs.
public enum Maglev {
    /// The table: for each slot, the index of its backend in `names`. Empty when `names` is.
    /// Throws for weights that do not match the names one for one or are not positive, and for
    /// a table of fewer than two slots with backends to place.
    public static func table(names: [String], weights: [Int], size: Int) throws -> [Int] {
        guard names.count == weights.count, weights.allSatisfy({ $0 > 0 }) else {
            throw PluginError(.invalidConfig, plugin: "lb", "Maglev needs one positive weight per backend: \(names.count) backends, weights \(weights)")
        }
        guard !names.isEmpty else { return [] }
        guard size >= 2 else { throw PluginError(.invalidConfig, plugin: "lb", "a Maglev table of \(size) slots cannot place backends") }
        let offsets = names.map { Int(hash($0, seed: 0xcbf2_9ce4_8422_2325) % UInt64(size)) }
        let skips = names.map { Int(hash($0, seed: 0x9e37_79b9_7f4a_7c15) % UInt64(size - 1)) + 1 }
        var next = [Int](repeating: 0, count: names.count)
        var table = [Int](repeating: -1, count: size)
        var filled = 0
        while true {
            for i in names.indices {
                for _ in 0..<weights[i] {
                    var slot = (offsets[i] + next[i] * skips[i]) % size
                    while table[slot] >= 0 {
                        next[i] += 1
                        slot = (offsets[i] + next[i] * skips[i]) % size
                    }
                    table[slot] = i
                    next[i] += 1
                    filled += 1
                    if filled == size { return table }
                }
            }
        }
    }

    /// FNV-1a over the name, mixed with a seed: stable across runs and processes.
    static func hash(_ name: String, seed: UInt64) -> UInt64 {
        var h = seed
        for byte in name.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return h
    }
}
