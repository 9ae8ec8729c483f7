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
    /// octet, names the first droplet ending in it and whether others do (`MZ_DROPLET_SLOT_SHARED`).
    func writeDropletIndex(_ droplets: [UInt32]) throws {
        var slots = [mz_droplet_slot](repeating: mz_droplet_slot(), count: Int(MZ_DROPLET_INDEX_SLOTS))
        for ip in droplets.sorted() {
            let i = Int(UInt32(bigEndian: ip) & UInt32(MZ_DROPLET_INDEX_SLOTS - 1))
            // MZ_DROPLET_SLOT_WORD: the address in the low half, flags in the high.
            slots[i].word = slots[i].word == 0 ? UInt64(MZ_DROPLET_SLOT_KNOWN) << 32 | UInt64(ip) : slots[i].word | UInt64(MZ_DROPLET_SLOT_SHARED) << 32
        }
        try maps.dropletIndex.update(batch: slots.enumerated().map { (key: UInt32($0.offset), value: $0.element) })
    }
}
