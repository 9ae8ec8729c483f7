import CMizarNAT
import Foundation
import MizarBPF
import MizarPlugins

extension NAT {
    /// Removes translations idle past the configured time, both halves together, and halves
    /// left without their other half. BPF reclaims an idle pair itself when a new flow needs
    /// its port; this sweep frees the rest, so a full table empties as flows end (transitd
    /// runs it every 10 seconds). Returns how many entries went.
    ///
    /// The flow table is read before the reverse table: a flow entry is made after its reverse
    /// entry, so one found without its reverse entry has lost it. A reverse entry found
    /// without its flow entry may be a pair being made: it goes only once it is idle too.
    @discardableResult
    public static func sweep(_ chains: PluginChains, now: UInt64 = monotonicNanoseconds()) throws -> Int {
        let flows = try BPFMap<nat_flow_key, nat_flow>(chains.map(NAT_FLOWS_MAP, of: descriptor.name))
        let reverse = try BPFMap<nat_reverse_key, nat_translation>(chains.map(NAT_REVERSE_MAP, of: descriptor.name))
        let live = try BPFMap<UInt32, nat_generation>(chains.map(NAT_GENERATION_MAP, of: descriptor.name)).lookup(0)
        let config = try BPFMap<UInt32, nat_config>(chains.map(NAT_CONFIG_MAP, of: descriptor.name)).lookup((live?.generation ?? 0) & 1)
        let configured = UInt64(config.map { $0.idle_seconds == 0 ? UInt32(NAT_DEFAULT_IDLE_SECONDS) : $0.idle_seconds } ?? UInt32(NAT_DEFAULT_IDLE_SECONDS))
        /// As nat.bpf.c's idle_ns: a pair never answered ages faster. A stamp newer than `now` is fresh.
        func expired(_ t: nat_translation) -> Bool {
            let idle = (t.flags & UInt32(NAT_PAIR_ANSWERED) != 0 ? configured : min(configured, UInt64(NAT_UNANSWERED_SECONDS))) * 1_000_000_000
            return now > t.last_seen_ns && now - t.last_seen_ns > idle
        }
        func whole(_ key: nat_reverse_key, _ t: nat_translation, _ fwd: nat_flow?) -> Bool {
            fwd.map { $0.nat_ip == key.nat_ip && $0.nat_port == key.nat_port } ?? false
        }
        var flowEntries: [FlowKey: nat_flow] = [:]
        for (key, value) in try flows.entries() { flowEntries[FlowKey(key)] = value }
        var removed = 0, paired = Set<FlowKey>()
        for (key, t) in try reverse.entries() {
            let flowKey = FlowKey(flowOf: key, t)
            if whole(key, t, flowEntries[flowKey]) && !expired(t) {
                paired.insert(flowKey)
                continue
            }
            guard expired(t) else { continue }  // half, but perhaps still being made
            // Read again: a packet may have used it since the snapshot.
            guard let current = try reverse.lookup(key), expired(current) else { paired.insert(flowKey); continue }
            if try reverse.delete(key) { removed += 1 }
            if whole(key, current, try flows.lookup(flowKey.key)), try flows.delete(flowKey.key) { removed += 1 }
            paired.insert(flowKey)
        }
        // Flow halves no reverse entry names: gone unless their pair was (re)made since.
        for (key, fwd) in flowEntries where !paired.contains(key) {
            var rev = nat_reverse_key()
            rev.nat_ip = fwd.nat_ip
            rev.remote = key.key.dst
            rev.nat_port = fwd.nat_port
            rev.remote_port = key.key.protocol == UInt8(IPPROTO_ICMP) ? fwd.nat_port : key.key.dport
            rev.protocol = key.key.protocol
            if let t = try reverse.lookup(rev), FlowKey(flowOf: rev, t) == key { continue }
            if try flows.delete(key.key) { removed += 1 }
        }
        return removed
    }

    /// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`.
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// A flow key by its bytes (the C struct is neither Hashable nor Equatable).
    private struct FlowKey: Hashable {
        let key: nat_flow_key
        private let bytes: [UInt8]

        init(_ key: nat_flow_key) {
            self.key = key
            bytes = withUnsafeBytes(of: key) { Array($0) }
        }

        /// The endpoint's side of the translation `rev` → `t` (as nat.bpf.c's flow_of).
        init(flowOf rev: nat_reverse_key, _ t: nat_translation) {
            var key = nat_flow_key()
            key.vni = t.vni
            key.src = t.ip
            key.dst = rev.remote
            key.sport = t.port
            key.dport = t.remote_port
            key.protocol = rev.protocol
            self.init(key)
        }

        static func == (a: FlowKey, b: FlowKey) -> Bool { a.bytes == b.bytes }
        func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
    }
}
