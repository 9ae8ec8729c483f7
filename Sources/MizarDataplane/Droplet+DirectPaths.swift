import CMizarABI

/// The direct-path cache (`direct_path`, an LRU hash transit XDP fills from RTS options) as
/// user space sees it: the paths it holds, the ones removed with their endpoint or droplet,
/// and the ones the kernel evicted to make room, which nothing reports by itself.
struct DirectPathTally {
    /// Paths learned new less paths held when this process took the tables (set at start): what went before it.
    var baseline: Int64 = 0
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
            let learned = Int64(clamping: try transitCounters()[.learnedNew].packets)
            let held = Int64(try maps.directPath.count())
            // Below zero when a path learned after the counters were read is held already, or
            // one learned before the baseline was removed since: none evicted then.
            let evicted = learned - state.directPaths.baseline - Int64(clamping: state.directPaths.removed) - held
            state.directPaths.reported = max(state.directPaths.reported, UInt64(max(0, evicted)))
            return state.directPaths.reported
        }
    }

    /// Takes what the cache lost before now as lost before this process (at start).
    func noteDirectPathBaseline() throws {
        let held = Int64(try maps.directPath.count())
        state.directPaths.baseline = Int64(clamping: try transitCounters()[.learnedNew].packets) - held
    }

    /// Removes a learned path (with `lock` held), counted apart from evictions.
    func forgetDirectPath(_ key: mz_endpoint_key) throws {
        if try maps.directPath.delete(key) { state.directPaths.removed &+= 1 }
    }
}
