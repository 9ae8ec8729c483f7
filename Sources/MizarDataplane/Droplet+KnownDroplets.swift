import CMizarABI
import MizarNet

extension Droplet {
    /// The droplets of the cluster this droplet accepts Geneve from (itself included).
    public func knownDroplets() throws -> [DropletAddress] {
        try maps.droplets.entries().map { DropletAddress($0.value) }.sorted { $0.ip < $1.ip }
    }

    /// Makes `droplets` (and this droplet) the droplets of the cluster: transit XDP accepts
    /// Geneve only from their addresses, learns a direct path only to one of them with its MAC,
    /// and the agent keeps endpoints' frames that leave the overlay away from them (DESIGN §6).
    /// New and changed entries are written before stale ones go, so a droplet that stays is
    /// never refused in between; paths learned towards a droplet that went are forgotten.
    public func setKnownDroplets(_ droplets: [DropletAddress]) throws {
        var wanted: [UInt32: DropletAddress] = [address.ip.networkOrder: address]
        for droplet in droplets {
            guard droplet.ip.value != 0 else { throw DataplaneError(.invalidArgument, "0.0.0.0 is not a droplet's address") }
            if let other = wanted[droplet.ip.networkOrder], other != droplet {
                throw DataplaneError(.invalidArgument, "droplet \(droplet.ip) is given with two MACs (\(other.mac), \(droplet.mac))")
            }
            wanted[droplet.ip.networkOrder] = droplet
        }
        try lock.withLock {
            let present = try maps.droplets.entries()
            var have: [UInt32: DropletAddress] = [:]
            for (key, value) in present { have[key] = DropletAddress(value) }
            for (key, droplet) in wanted where have[key] != droplet { try maps.droplets.update(key, droplet.c) }
            // The index names droplets the table holds: written between the table's additions and its removals.
            try writeDropletIndex(Array(wanted.keys))
            for key in have.keys where wanted[key] == nil { try maps.droplets.delete(key) }
            // Paths towards a droplet that is not (or no longer with that MAC) in the table go.
            for (key, path) in try maps.directPath.entries() where wanted[path.droplet.ip] != DropletAddress(path.droplet) {
                try forgetDirectPath(key)
            }
        }
    }

    /// Makes `droplet_index` name `droplets` (network-order addresses): each slot, by the last
    /// octet, names the first droplet ending in it, or says others end in it too
    /// (`MZ_DROPLET_SLOT_SHARED`: the programs ask `droplets`, which holds them all by now).
    func writeDropletIndex(_ droplets: [UInt32]) throws {
        var wanted = (0..<Int(MZ_DROPLET_INDEX_SLOTS)).map(Droplet.emptyDropletSlot)
        for ip in droplets.sorted() {
            let i = Int(UInt32(bigEndian: ip) & UInt32(MZ_DROPLET_INDEX_SLOTS - 1))
            wanted[i] = wanted[i] == Droplet.emptyDropletSlot(i) ? UInt64(ip) : wanted[i] | Droplet.sharedSlot
        }
        try writeLegacyDropletIndex(wanted)
        // The kernel copies the index whole but does not promise each word in one store, so a
        // changed slot goes through the shared flag: old|S, new|S, new. Each step changes the
        // flag's byte alone or the address under the flag: a packet racing a write reads the
        // old or the new droplet, or asks `droplets` (holding both by now), never a mix of two.
        let current = try dropletIndexSlots()
        guard current.count == wanted.count else { return try maps.dropletIndex.update(0, Droplet.dropletIndex(wanted)) }
        let steps = [zip(current, wanted).map { $0 == $1 ? $0 : $0 | Droplet.sharedSlot },
                     zip(current, wanted).map { $0 == $1 ? $0 : $1 | Droplet.sharedSlot }, wanted]
        var written = current
        for step in steps where step != written {
            try maps.dropletIndex.update(0, Droplet.dropletIndex(step))
            written = step
        }
    }

    /// What slot `i` of `droplet_index` holds when no droplet ends in its octet (`MZ_DROPLET_SLOT_EMPTY`).
    public static func emptyDropletSlot(_ i: Int) -> UInt64 { i == 0 ? 0xffff_ffff : 0 }
    static let sharedSlot = UInt64(MZ_DROPLET_SLOT_SHARED) << 32

    /// The words of `droplet_index`, by slot (the last octet of an address): what the
    /// programs' per-packet check reads.
    public func dropletIndexSlots() throws -> [UInt64] {
        guard let index = try maps.dropletIndex.lookup(0) else { return [] }
        return withUnsafeBytes(of: index.slot) { raw in
            (0..<Int(MZ_DROPLET_INDEX_SLOTS)).map { raw.load(fromByteOffset: $0 * 8, as: UInt64.self) }
        }
    }

    private static func dropletIndex(_ slots: [UInt64]) -> mz_droplet_index {
        var index = mz_droplet_index()
        withUnsafeMutableBytes(of: &index.slot) { raw in
            for (i, word) in slots.enumerated() { raw.storeBytes(of: word, toByteOffset: i * 8, as: UInt64.self) }
        }
        return index
    }

    /// An older build's programs, attached until `attach` swaps them, read their own index: an
    /// array map pinned as `droplet_index`, a slot per octet with the address in the low half
    /// and 1 (a droplet) or 3 (shared) in the high. Written in that form, one word straight to
    /// the next: the kernel stores each 8-byte element of an array in one go, and that format
    /// compares the address under the shared flag, so passes through it would not help.
    private func writeLegacyDropletIndex(_ slots: [UInt64]) throws {
        guard let legacy = legacyDropletIndex else { return }
        try legacy.update(batch: slots.enumerated().map { i, word in
            let known: UInt64 = word == Droplet.emptyDropletSlot(i) ? 0 : 1 << 32 | word & 0xffff_ffff
            return (key: UInt32(i), value: word & Droplet.sharedSlot != 0 ? known | 2 << 32 : known)
        })
    }
}
