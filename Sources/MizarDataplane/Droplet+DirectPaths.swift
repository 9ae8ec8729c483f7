import CMizarABI

/// The direct-path cache (`direct_path`, an LRU hash transit XDP fills from RTS options) as
/// user space sees it: the paths it holds, the ones removed with their endpoint or droplet,
/// and the ones the kernel evicted to make room, which nothing reports by itself.
struct DirectPathTally {
    /// Paths learned new less paths held, when this process took the tables: what went before it.
    var baseline: UInt64?
    /// Paths this process removed (their endpoint or droplet went).
    var removed: UInt64 = 0
    /// The last count reported: a counter never goes back.
    var reported: UInt64 = 0
}

extension Droplet {
    /// The direct paths learned from RTS options: which droplet each endpoint was last seen behind.
    public func learnedPaths() throws -> [EndpointID: DropletAddress] {
        var result: [EndpointID: DropletAddress] = [:]
        for (key, value) in try maps.directPath.entries() { result[EndpointID(key)] = DropletAddress(value.droplet) }
        return result
    }

    /// Paths the kernel evicted from the full cache since this process took the tables: those
    /// transit XDP learned for an endpoint the cache did not hold (`direct_path_new`), less
    /// those held now and those removed here. Never decreases; a path learned between the two
    /// reads is counted a scrape late.
    public func directPathEvictions() throws -> UInt64 {
        try lock.withLock {
            if state.directPaths.baseline == nil { try noteDirectPathBaseline() }
            let learned = try transitCounters()[.learnedNew].packets
            let held = UInt64(try maps.directPath.count())
            let gone = learned &- state.directPaths.baseline! &- state.directPaths.removed
            // Wrapped below zero: a path learned after the counters were read is held already.
            let evicted = gone > held ? gone - held : 0
            state.directPaths.reported = max(state.directPaths.reported, evicted)
            return state.directPaths.reported
        }
    }

    /// Takes what the cache lost before now as lost before this process (called with `lock` held, at start).
    func noteDirectPathBaseline() throws {
        let held = UInt64(try maps.directPath.count())
        state.directPaths.baseline = try transitCounters()[.learnedNew].packets &- held
    }

    /// Removes a learned path (with `lock` held), counted apart from evictions.
    func forgetDirectPath(_ key: mz_endpoint_key) throws {
        if try maps.directPath.delete(key) { state.directPaths.removed &+= 1 }
    }

    /// Deletes learned direct paths whose endpoint matches.
    func purgeDirectPaths(where matches: (EndpointID) -> Bool) throws {
        for key in try maps.directPath.keys() where matches(EndpointID(key)) { try forgetDirectPath(key) }
    }
}
