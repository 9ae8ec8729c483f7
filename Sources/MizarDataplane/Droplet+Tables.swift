import Foundation
import CMizarABI
import MizarBPF
import MizarNet

/// What this droplet's tables hold, as programmed: the source for cascading removals.
struct TableState {
    var vpcs: [VNI: VPC] = [:]
    var networks: [NetworkID: Network] = [:]
    /// Plugged endpoints. Bouncer entries live only in the `endpoints` map: a bouncer's
    /// millions of endpoints cost no Swift memory.
    var locals: [EndpointID: PluggedEndpoint] = [:]
    /// At least as many as the `endpoints` map holds (nil: not known yet, e.g. adopted tables):
    /// a batch that fits under it needs no count; one that may not gets an exact one.
    var endpointsBound: Int?
    /// The counter slots an earlier process left in `local_endpoints` (by veth ifindex), read
    /// once; a slot leaves it when it is handed out again. Nil: not read yet.
    var pinnedSlots: [UInt32: (vni: UInt32, ip: UInt32, slot: UInt16)]?
    /// What the direct-path evictions are counted from (Droplet+DirectPaths.swift).
    var directPaths = DirectPathTally()

    /// Networks never overlap within a VPC, so the first that holds `ip` is the one.
    func network(containing ip: IPv4Address, in vni: VNI) -> Network? {
        for network in networks.values where network.vni == vni && network.contains(ip) { return network }
        return nil
    }
}

/// A network's key: its VPC and CIDR.
public struct NetworkID: Hashable, Sendable, CustomStringConvertible {
    public var vni: VNI
    public var cidr: IPv4Interface

    public init(vni: VNI, cidr: IPv4Interface) {
        self.vni = vni
        self.cidr = cidr.network
    }

    public var description: String { "\(cidr) in VNI \(vni)" }

    /// The C key of the `networks` LPM trie.
    public var key: mz_network_key {
        mz_network_key(prefixlen: 32 + UInt32(cidr.prefixLength), vni: vni.rawValue, ip: cidr.address.networkOrder)
    }
}

extension Network {
    public var id: NetworkID { NetworkID(vni: vni, cidr: cidr) }
}

extension Droplet {
    // MARK: VPCs

    /// Adds or replaces a VPC. The droplet divides it when its address is among the dividers.
    public func setVPC(_ vpc: VPC) throws {
        guard vpc.dividers.count <= Int(MZ_MAX_DIVIDERS) else {
            throw DataplaneError(.invalidArgument, "VPC \(vpc.vni) has \(vpc.dividers.count) dividers; at most \(MZ_MAX_DIVIDERS)")
        }
        var value = mz_vpc()
        value.flags = vpc.dividers.contains { $0.ip == address.ip } ? UInt32(MZ_VPC_DIVIDER_HERE) : 0
        value.divider_count = UInt32(vpc.dividers.count)
        withDroplets(&value.dividers, vpc.dividers)
        try lock.withLock {
            try maps.vpcs.update(vpc.vni.rawValue, value)
            state.vpcs[vpc.vni] = vpc
        }
    }

    /// Removes a VPC with all its networks, endpoints (local ones are unplugged) and learned paths.
    public func removeVPC(_ vni: VNI) throws {
        try lock.withLock {
            guard state.vpcs[vni] != nil else { throw DataplaneError(.notFound, "no VPC \(vni)") }
            try removeLocked(networks: state.networks.keys.filter { $0.vni == vni }, vpc: vni) { $0.vni == vni }
        }
    }

    public var vpcs: [VPC] { lock.withLock { state.vpcs.values.sorted { $0.vni < $1.vni } } }

    // MARK: Networks

    /// Adds or replaces a network of a known VPC. The droplet bounces it when its address is
    /// among the bouncers. Networks of one VPC may not overlap.
    public func setNetwork(_ network: Network) throws {
        guard (1...Int(MZ_MAX_BOUNCERS)).contains(network.bouncers.count) else {
            throw DataplaneError(.invalidArgument, "network \(network.id) has \(network.bouncers.count) bouncers; it needs 1 to \(MZ_MAX_BOUNCERS)")
        }
        var value = mz_network()
        value.flags = network.bouncers.contains { $0.ip == address.ip } ? UInt32(MZ_NETWORK_BOUNCER_HERE) : 0
        value.bouncer_count = UInt32(network.bouncers.count)
        withDroplets(&value.bouncers, network.bouncers)
        try lock.withLock {
            guard state.vpcs[network.vni] != nil else { throw DataplaneError(.notFound, "network \(network.id): no VPC \(network.vni)") }
            if let other = state.networks.values.first(where: { $0.vni == network.vni && $0.cidr != network.cidr && $0.cidr.overlaps(network.cidr) }) {
                throw DataplaneError(.conflict, "network \(network.id) overlaps \(other.cidr)")
            }
            try maps.networks.update(network.id.key, value)
            state.networks[network.id] = network
        }
    }

    /// Removes a network with its endpoints (local ones are unplugged) and learned paths.
    public func removeNetwork(_ id: NetworkID) throws {
        try lock.withLock { try removeNetworkLocked(id) }
    }

    public var networks: [Network] { lock.withLock { Array(state.networks.values) } }

    private func removeNetworkLocked(_ id: NetworkID) throws {
        guard let network = state.networks[id] else { throw DataplaneError(.notFound, "no network \(id)") }
        try removeLocked(networks: [id], vpc: nil) { $0.vni == id.vni && network.contains($0.ip) }
    }

    /// Removes networks (and a VPC) with the endpoints and learned paths `holds` names. All
    /// that goes is read before anything goes, so a failed read changes nothing. Then every
    /// step runs even when one fails (each is repeatable); the networks and the VPC go last,
    /// and only once all they held is gone, so removing them again finishes the job.
    private func removeLocked(networks ids: [NetworkID], vpc: VNI?, holds: (EndpointID) -> Bool) throws {
        let locals = state.locals.filter { holds($0.key) }.map(\.value)
        // Locals' keys too: an unplug that failed after its entry went puts it back on a retry.
        let entries = try maps.endpoints.keys().filter { holds(EndpointID($0)) } + locals.map(\.spec.id.key)
        let paths = try maps.directPath.keys().filter { holds(EndpointID($0)) }
        var failed: [String] = []
        func step(_ what: @autoclosure () -> String, _ body: () throws -> Void) {
            do { try body() } catch { failed.append("\(what()): \(error)") }
        }
        for local in locals { step("unplugging \(local.spec.id)") { try unplugLocked(local) } }
        // After the unplugs: an unplugged endpoint's bouncer entry came back, and goes too.
        for key in entries { step("endpoint \(EndpointID(key))") { try maps.endpoints.delete(key) } }
        for key in paths { step("direct path to \(EndpointID(key))") { try forgetDirectPath(key) } }
        guard failed.isEmpty else {
            throw DataplaneError(.invalidState, "removal stopped short (\(failed.joined(separator: "; "))); what is gone stays gone, remove again to finish")
        }
        for id in ids {
            step("network \(id)") {
                try maps.networks.delete(id.key)
                state.networks[id] = nil
            }
        }
        if let vpc, failed.isEmpty {
            step("VPC \(vpc)") {
                try maps.vpcs.delete(vpc.rawValue)
                state.vpcs[vpc] = nil
            }
        }
        guard failed.isEmpty else {
            throw DataplaneError(.invalidState, "removal stopped short (\(failed.joined(separator: "; "))); remove again to finish")
        }
    }

    // MARK: Endpoints (the bouncer table)

    /// Adds or replaces endpoints as a bouncer knows them. Each must lie in a known network,
    /// and the table must have room for the new ones: all is checked before anything is
    /// written, so a refused batch (`DataplaneError.full`, `.notFound`) changes nothing.
    /// Large sets are built and written in batches on every CPU (the kernel's hash map takes
    /// concurrent updates).
    public func setEndpoints(_ endpoints: [Endpoint]) throws {
        try lock.withLock {
            let slices = endpoints.count < 65536 ? 1 : ProcessInfo.processInfo.activeProcessorCount
            let per = (endpoints.count + slices - 1) / slices
            let state = self.state
            let built = try concurrentMap(slices) { slice in
                try buildEndpointBatch(endpoints[min(slice * per, endpoints.count)..<min((slice + 1) * per, endpoints.count)], state: state)
            }
            let writes = built.reduce(0) { $0 + $1.batch.count }
            try ensureRoom(for: built.flatMap(\.batch))
            try writeUndoably(built.map(\.batch))
            self.state.endpointsBound = (self.state.endpointsBound ?? 0) + writes
            for (plugged, value) in built.flatMap(\.shadowed) { plugged.shadowed = value }
        }
    }

    /// Writes slices of endpoint entries on every CPU. Should the kernel refuse one midway (a
    /// writer this droplet does not know filled the table, or kernel memory ran out), every
    /// entry is put back as it was, read beforehand unless the table is known to be empty:
    /// the table then holds what it held before, and the error says so.
    private func writeUndoably(_ slices: [[(key: mz_endpoint_key, value: mz_endpoint)]]) throws {
        // Known empty (fresh tables, and still nothing in them): every entry is new, nothing to read.
        let known = try state.endpointsBound == 0 && maps.endpoints.isEmpty()
        let before = try concurrentMap(slices.count) { slice in known ? [] : try slices[slice].map { try maps.endpoints.lookup($0.key) } }
        do {
            _ = try concurrentMap(slices.count) { slice in try maps.endpoints.update(batch: slices[slice]) }
        } catch {
            let unrestored = try concurrentMap(slices.count) { slice in
                slices[slice].enumerated().reduce(0) { left, item in
                    do {
                        if let old = known ? nil : before[slice][item.offset] { try maps.endpoints.update(item.element.key, old) } else { try maps.endpoints.delete(item.element.key) }
                        return left
                    } catch {
                        return left + 1
                    }
                }
            }.reduce(0, +)
            state.endpointsBound = nil  // someone else writes this table: count it next time
            let full = (error as? BPFError)?.errno == E2BIG
            guard unrestored == 0 else {
                throw DataplaneError(full ? .full : .invalidState, "\(error); putting the batch's entries back failed for \(unrestored) of them: set the endpoints again")
            }
            throw DataplaneError(full ? .full : .invalidState, "\(error); the table holds what it held before")
        }
    }

    /// Throws `.full` unless the endpoint table has room for `batch` (those of its keys not
    /// there yet). Counts the table only when the running bound says it might not.
    private func ensureRoom(for batch: [(key: mz_endpoint_key, value: mz_endpoint)]) throws {
        let capacity = Int(maps.endpoints.handle.maxEntries)
        if let bound = state.endpointsBound, bound + batch.count <= capacity { return }
        let present = try maps.endpoints.count()
        state.endpointsBound = present
        guard present + batch.count > capacity else { return }
        var unique: [[UInt8]: mz_endpoint_key] = [:]
        for entry in batch { unique[bytes(entry.key)] = entry.key }
        let new = try unique.values.reduce(0) { try $0 + (maps.endpoints.lookup($1) == nil ? 1 : 0) }
        guard present + new <= capacity else {
            throw DataplaneError(.full, "the endpoint table holds \(present) of \(capacity) entries; \(new) more do not fit (nothing was written)")
        }
    }

    private func buildEndpointBatch(_ endpoints: ArraySlice<Endpoint>, state: TableState) throws
        -> (batch: [(key: mz_endpoint_key, value: mz_endpoint)], shadowed: [(PluggedEndpoint, mz_endpoint)]) {
        var batch: [(key: mz_endpoint_key, value: mz_endpoint)] = []
        var shadowed: [(PluggedEndpoint, mz_endpoint)] = []
        batch.reserveCapacity(endpoints.count)
        var last: Network?
        for ep in endpoints {
            // Consecutive endpoints mostly share a network: check the last one first.
            guard let network = last.flatMap({ $0.vni == ep.vni && $0.contains(ep.ip) ? $0 : nil }) ?? state.network(containing: ep.ip, in: ep.vni) else {
                throw DataplaneError(.notFound, "endpoint \(ep.id): no network of VPC \(ep.vni) holds \(ep.ip)")
            }
            last = network
            let value = remoteValue(ep, plen: network.cidr.prefixLength)
            // A local endpoint shadows the bouncer entry until it is unplugged.
            if let plugged = state.locals[ep.id] { shadowed.append((plugged, value)) } else { batch.append((ep.id.key, value)) }
        }
        return (batch, shadowed)
    }

    public func setEndpoint(_ endpoint: Endpoint) throws { try setEndpoints([endpoint]) }

    /// Removes an endpoint from the bouncer table, and any path learned to it. Removing one
    /// that is not there succeeds.
    public func removeEndpoint(_ id: EndpointID) throws {
        try lock.withLock { try removeEndpointLocked(id) }
    }

    /// The bouncer table as the kernel holds it (local endpoints not included).
    public func endpoints() throws -> [Endpoint] {
        try maps.endpoints.entries().filter { $0.value.flags & UInt8(MZ_ENDPOINT_LOCAL) == 0 }.map { key, value in
            Endpoint(vni: EndpointID(key).vni, ip: EndpointID(key).ip, mac: macOf(value.mac), droplet: DropletAddress(value.droplet))
        }
    }

    private func removeEndpointLocked(_ id: EndpointID) throws {
        if let plugged = state.locals[id] {
            plugged.shadowed = nil
        } else {
            try maps.endpoints.delete(id.key)
        }
        try forgetDirectPath(id.key)
    }

    func remoteValue(_ ep: Endpoint, plen: Int) -> mz_endpoint {
        var value = mz_endpoint()
        value.droplet = ep.droplet.c
        withMAC(&value.mac, ep.mac)
        value.net_plen = UInt8(plen)
        return value
    }
}

/// `body(0..<count)` on every CPU; the first error thrown is rethrown once all have run.
private func concurrentMap<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
    var results = [Result<T, any Error>?](repeating: nil, count: count)
    results.withUnsafeMutableBufferPointer { out in
        DispatchQueue.concurrentPerform(iterations: count) { i in out[i] = Result { try body(i) } }
    }
    return try results.map { try $0!.get() }
}

extension Droplet {
    /// Deletes what the tables hold beyond what this droplet has programmed since it was
    /// made: VPCs, networks and plugged endpoints it does not know, and bouncer entries not
    /// in `endpoints`. A restarted daemon calls it once it has programmed the desired state
    /// into tables it took over from pins. Returns how many entries went.
    @discardableResult
    public func pruneTables(keepingEndpoints endpoints: Set<EndpointID>) throws -> Int {
        try lock.withLock {
            var removed = 0
            for vni in try maps.vpcs.keys() where state.vpcs[VNI(rawValue: vni & 0xff_ffff)!] == nil {
                if try maps.vpcs.delete(vni) { removed += 1 }
            }
            let networkKeys = Set(state.networks.keys.map { bytes($0.key) })
            for key in try maps.networks.keys() where !networkKeys.contains(bytes(key)) {
                if try maps.networks.delete(key) { removed += 1 }
            }
            let plugged = Set(state.locals.values.map { UInt32($0.ifindex) })
            for ifindex in try maps.localEndpoints.keys() where !plugged.contains(ifindex) {
                if try maps.localEndpoints.delete(ifindex) { removed += 1 }
            }
            for key in try maps.endpoints.keys() {
                let id = EndpointID(key)
                if state.locals[id] == nil, !endpoints.contains(id), try maps.endpoints.delete(key) { removed += 1 }
            }
            // XDP agents (and their peers' programs) of endpoints no longer plugged: detach and unpin.
            if let links = try pins?.subdirectory("links") {
                let hosts = Set(state.locals.values.map(\.spec.hostInterface))
                for pin in try links.names() {
                    guard let dash = pin.firstIndex(of: "-"), ["agent", "peer"].contains(pin[..<dash]),
                          !hosts.contains(String(pin[pin.index(after: dash)...])) else { continue }
                    try? links.openLink(pin).detach()
                    if try links.unpin(pin) { removed += 1 }
                }
            }
            return removed
        }
    }
}

/// A C key's bytes: keys compare by content.
private func bytes<T: BitwiseCopyable>(_ key: T) -> [UInt8] { withUnsafeBytes(of: key) { Array($0) } }
