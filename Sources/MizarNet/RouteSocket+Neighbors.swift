import CNetlink
import Foundation

/// A neighbour (ARP) entry.
public struct Neighbor: Sendable, Hashable {
    public var address: IPv4Address
    public var mac: MACAddress?
    public var ifindex: Int32
    /// Set by hand, never expires.
    public var isPermanent: Bool
}

extension RouteSocket {
    /// Adds or replaces a permanent neighbour entry.
    public func setNeighbor(_ address: IPv4Address, mac: MACAddress, on ifindex: Int32) throws {
        try withNeigh(address, ifindex) { raw in
            let ll = try makeNLAddress(family: AF_LLC, bytes: mac.bytes)
            defer { nl_addr_put(ll) }
            rtnl_neigh_set_lladdr(raw, ll)
            rtnl_neigh_set_state(raw, Int32(NUD_PERMANENT))
            try nlCheck("set neighbour \(address) -> \(mac) on ifindex \(ifindex) in \(netns)", rtnl_neigh_add(sk, raw, cnl_replace_flags()))
        }
    }

    /// Deletes a neighbour entry; returns false when there was none.
    @discardableResult
    public func deleteNeighbor(_ address: IPv4Address, on ifindex: Int32) throws -> Bool {
        var found = true
        try withNeigh(address, ifindex) { raw in
            let rc = rtnl_neigh_delete(sk, raw, 0)
            if rc == -NLE_OBJ_NOTFOUND { found = false; return }
            try nlCheck("delete neighbour \(address) on ifindex \(ifindex) in \(netns)", rc)
        }
        return found
    }

    /// The IPv4 neighbour entries of device `ifindex`.
    public func neighbors(of ifindex: Int32) throws -> [Neighbor] {
        var cache: OpaquePointer?
        try nlDump("list neighbours in \(netns)") { rtnl_neigh_alloc_cache(sk, &cache) }
        defer { nl_cache_free(cache) }
        var result: [Neighbor] = []
        forEachObject(in: cache) { raw in
            guard rtnl_neigh_get_ifindex(raw) == ifindex, rtnl_neigh_get_family(raw) == AF_INET else { return }
            let ip = bytesOf(rtnl_neigh_get_dst(raw))
            guard ip.count == 4 else { return }
            let ll = bytesOf(rtnl_neigh_get_lladdr(raw))
            result.append(Neighbor(address: IPv4Address(bytes: ip), mac: ll.count == 6 ? MACAddress(bytes: ll) : nil, ifindex: ifindex, isPermanent: rtnl_neigh_get_state(raw) & Int32(NUD_PERMANENT) != 0))
        }
        return result
    }

    private func withNeigh(_ address: IPv4Address, _ ifindex: Int32, _ body: (OpaquePointer) throws -> Void) throws {
        let raw = try allocated(rtnl_neigh_alloc(), "a neighbour")
        defer { rtnl_neigh_put(raw) }
        let dst = try makeNLAddress(family: AF_INET, bytes: address.bytes)
        defer { nl_addr_put(dst) }
        rtnl_neigh_set_ifindex(raw, ifindex)
        rtnl_neigh_set_family(raw, AF_INET)
        try nlCheck("set neighbour address \(address)", rtnl_neigh_set_dst(raw, dst))
        try body(raw)
    }
}
