import CMizarABI
import MizarBPF

/// Capacities of a droplet's tables, fixed when its programs load.
public struct DropletLimits: Sendable, Hashable {
    /// Endpoint table (a bouncer's share of its networks plus local endpoints); allocated on insert.
    public var endpoints: UInt32 = UInt32(MZ_DEFAULT_ENDPOINTS)
    /// Endpoints hosted by this droplet.
    public var localEndpoints: UInt32 = UInt32(MZ_DEFAULT_LOCAL_ENDPOINTS)
    public var networks: UInt32 = UInt32(MZ_DEFAULT_NETWORKS)
    public var vpcs: UInt32 = UInt32(MZ_DEFAULT_VPCS)
    /// Direct-path cache (LRU, preallocated).
    public var directPaths: UInt32 = UInt32(MZ_DEFAULT_DIRECT_PATHS)
    /// Droplets of the cluster (who may send Geneve here).
    public var droplets: UInt32 = UInt32(MZ_DEFAULT_DROPLETS)
    /// Counter slots of local endpoints (per CPU, preallocated; slot 0 counts nothing): the
    /// local endpoints that can be counted, one less.
    public var endpointCounters: UInt32 = UInt32(MZ_DEFAULT_ENDPOINT_STATS)

    public init() {}

    var byMap: [(String, UInt32)] {
        [(MZ_ENDPOINTS_MAP, endpoints), (MZ_LOCAL_ENDPOINTS_MAP, localEndpoints), (MZ_NETWORKS_MAP, networks),
         (MZ_VPCS_MAP, vpcs), (MZ_DIRECT_PATH_MAP, directPaths), (MZ_DROPLETS_MAP, droplets), (MZ_ENDPOINT_STATS_MAP, endpointCounters)]
    }
}

/// The tables of one droplet, shared by its transit XDP and transit agent (layouts from `dataplane.h`).
public struct DataplaneMaps: @unchecked Sendable {
    public let droplet: BPFMap<UInt32, mz_droplet>
    public let endpoints: BPFMap<mz_endpoint_key, mz_endpoint>
    /// Keyed by the ifindex of the endpoint's host-side veth.
    public let localEndpoints: BPFMap<UInt32, mz_local_endpoint>
    public let networks: BPFMap<mz_network_key, mz_network>
    /// Keyed by VNI.
    public let vpcs: BPFMap<UInt32, mz_vpc>
    public let directPath: BPFMap<mz_endpoint_key, mz_direct_path>
    /// The droplets of the cluster, keyed by underlay IPv4 address (network order).
    public let droplets: BPFMap<UInt32, mz_droplet_addr>
    /// `droplets` by the last octet of each address, for the programs' per-packet check: a
    /// data section, so one value (key 0) holding every slot (`Droplet.dropletIndexSlots`).
    public let dropletIndex: BPFMap<UInt32, mz_droplet_index>
    /// Per-CPU counters of local endpoints, by the slot each is given (`Droplet.endpointCounters`).
    public let endpointStats: PerCPUMap<UInt32, mz_endpoint_stats>

    /// Every shared map, by name.
    static let names = [MZ_DROPLET_MAP, MZ_ENDPOINTS_MAP, MZ_LOCAL_ENDPOINTS_MAP, MZ_NETWORKS_MAP, MZ_VPCS_MAP, MZ_DIRECT_PATH_MAP, MZ_DROPLETS_MAP,
                        MZ_DROPLET_INDEX_MAP, MZ_ENDPOINT_STATS_MAP]

    init(_ map: (String) throws -> BPFMapHandle) throws {
        droplet = try BPFMap(map(MZ_DROPLET_MAP))
        endpoints = try BPFMap(map(MZ_ENDPOINTS_MAP))
        localEndpoints = try BPFMap(map(MZ_LOCAL_ENDPOINTS_MAP))
        networks = try BPFMap(map(MZ_NETWORKS_MAP))
        vpcs = try BPFMap(map(MZ_VPCS_MAP))
        directPath = try BPFMap(map(MZ_DIRECT_PATH_MAP))
        droplets = try BPFMap(map(MZ_DROPLETS_MAP))
        dropletIndex = try BPFMap(map(MZ_DROPLET_INDEX_MAP))
        endpointStats = try PerCPUMap(map(MZ_ENDPOINT_STATS_MAP))
    }

    /// Entries per table, for status output and for tests proving removals leave nothing behind.
    public func entryCounts() throws -> [String: Int] {
        [MZ_ENDPOINTS_MAP: try endpoints.keys().count, MZ_LOCAL_ENDPOINTS_MAP: try localEndpoints.keys().count,
         MZ_NETWORKS_MAP: try networks.keys().count, MZ_VPCS_MAP: try vpcs.keys().count,
         MZ_DIRECT_PATH_MAP: try directPath.keys().count, MZ_DROPLETS_MAP: try droplets.keys().count]
    }
}

extension Droplet {
    /// Each table's entries and capacity (`max_entries`), for fill levels: read in batches, not kept.
    public func mapFill() throws -> [(map: String, entries: Int, capacity: UInt32)] {
        [
            (MZ_ENDPOINTS_MAP, try maps.endpoints.count(), maps.endpoints.handle.maxEntries),
            (MZ_LOCAL_ENDPOINTS_MAP, try maps.localEndpoints.count(), maps.localEndpoints.handle.maxEntries),
            (MZ_NETWORKS_MAP, try maps.networks.count(), maps.networks.handle.maxEntries),
            (MZ_VPCS_MAP, try maps.vpcs.count(), maps.vpcs.handle.maxEntries),
            (MZ_DIRECT_PATH_MAP, try maps.directPath.count(), maps.directPath.handle.maxEntries),
            (MZ_DROPLETS_MAP, try maps.droplets.count(), maps.droplets.handle.maxEntries),
        ]
    }
}
