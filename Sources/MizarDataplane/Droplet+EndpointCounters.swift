import CMizarABI
import MizarBPF
import MizarNet

/// One local endpoint's traffic as its agent and transit XDP counted it, summed over CPUs.
public struct EndpointCounters: Sendable, Equatable {
    /// Its frames the agent sent on (to another endpoint, a droplet, or out of the overlay).
    public var sent = Counter()
    /// Frames delivered to it.
    public var received = Counter()
    /// Its frames the agent dropped.
    public var dropped = Counter()
    /// Those drops by the agent's counter slot.
    public var drops: [AgentStat: UInt64] = [:]

    public init() {}

    public func delta(since earlier: EndpointCounters) -> EndpointCounters {
        var d = EndpointCounters()
        d.sent = Counter(packets: sent.packets &- earlier.sent.packets, bytes: sent.bytes &- earlier.sent.bytes)
        d.received = Counter(packets: received.packets &- earlier.received.packets, bytes: received.bytes &- earlier.received.bytes)
        d.dropped = Counter(packets: dropped.packets &- earlier.dropped.packets, bytes: dropped.bytes &- earlier.dropped.bytes)
        for (slot, n) in drops { d.drops[slot] = n &- (earlier.drops[slot] ?? 0) }
        return d
    }
}

extension Droplet {
    /// The counters of every endpoint hosted here (those that got a counter slot).
    public func endpointCounters() throws -> [EndpointID: EndpointCounters] {
        let slots = lock.withLock { state.locals.compactMapValues { $0.statsSlot == 0 ? nil : $0.statsSlot } }
        var result: [EndpointID: EndpointCounters] = [:]
        for (id, slot) in slots {
            var c = EndpointCounters()
            for cpu in try maps.endpointStats.lookup(UInt32(slot)) ?? [] {
                c.sent.packets += cpu.sent.packets
                c.sent.bytes += cpu.sent.bytes
                c.received.packets += cpu.received.packets
                c.received.bytes += cpu.received.bytes
                c.dropped.packets += cpu.dropped.packets
                c.dropped.bytes += cpu.dropped.bytes
                withUnsafeBytes(of: cpu.drop_reason) { raw in
                    for slot in AgentStat.allCases where raw.load(fromByteOffset: Int(slot.rawValue) * 8, as: UInt64.self) > 0 {
                        c.drops[slot, default: 0] += raw.load(fromByteOffset: Int(slot.rawValue) * 8, as: UInt64.self)
                    }
                }
            }
            result[id] = c
        }
        return result
    }

    /// A counter slot for `endpoint` behind veth `ifindex`: the one it had in the local table
    /// (kept in pinned tables across restarts, under this veth or one it had before: the
    /// counts go on), else the lowest slot no local entry holds, zeroed; 0 when every slot is
    /// taken (the endpoint is then not counted). Lock held.
    func statsSlot(for endpoint: LocalEndpoint, ifindex: Int32) throws -> UInt16 {
        let capacity = UInt16(clamping: maps.endpointStats.handle.maxEntries)
        // Every slot a local entry holds is taken, plugged in this process yet or not (a restart re-plugs in any order).
        // The table is read once, not at every plug: with thousands of endpoints that read was most of a plug's time.
        if state.pinnedSlots == nil {
            var found: [UInt32: (vni: UInt32, ip: UInt32, slot: UInt16)] = [:]
            for (index, entry) in try maps.localEndpoints.entries() where entry.stats_slot > 0 { found[index] = (entry.vni, entry.ip, entry.stats_slot) }
            state.pinnedSlots = found
        }
        let inUse = Set(state.locals.values.map(\.statsSlot))
        var taken = inUse
        var earlier: (index: UInt32, slot: UInt16)?
        for (index, entry) in state.pinnedSlots! {
            if entry.vni == endpoint.vni.rawValue, entry.ip == endpoint.ip.networkOrder, entry.slot < capacity, !inUse.contains(entry.slot) {
                earlier = (index, entry.slot)  // this endpoint's, left by an earlier process (maybe under an older veth)
            } else if index != UInt32(ifindex) {
                taken.insert(entry.slot)
            }
        }
        state.pinnedSlots![UInt32(ifindex)] = nil
        if let earlier {
            state.pinnedSlots![earlier.index] = nil
            return earlier.slot
        }
        guard let free = (1..<max(capacity, 1)).first(where: { !taken.contains($0) }) else {
            logger.warning("no counter slot left: endpoint not counted", metadata: ["endpoint": "\(endpoint.id)"])
            return 0
        }
        try maps.endpointStats.update(UInt32(free), everyCPU: mz_endpoint_stats())
        return free
    }

    /// Local endpoints that got no counter slot (the table of slots was full).
    public var uncountedEndpoints: Int { lock.withLock { state.locals.values.filter { $0.statsSlot == 0 }.count } }
}
