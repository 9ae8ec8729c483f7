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
            for key in have.keys where wanted[key] == nil { try maps.droplets.delete(key) }
            // After the table, on every call (an earlier one may have written the table and
            // failed before this): the programs' per-CPU caches of it expire.
            if var config = try maps.droplet.lookup(0) {
                config.droplets_generation = Droplet.nextGeneration(after: config.droplets_generation)
                try maps.droplet.update(0, config)
            }
            // Paths towards a droplet that is not (or no longer with that MAC) in the table go.
            for (key, path) in try maps.directPath.entries() where wanted[path.droplet.ip] != DropletAddress(path.droplet) {
                try forgetDirectPath(key)
            }
        }
    }

    /// The generation after `generation` (0 is never one: an empty cache slot holds it).
    static func nextGeneration(after generation: UInt32) -> UInt32 { generation == UInt32.max ? 1 : generation + 1 }
}
