import CNetlink
import Foundation

/// An IPv4 route of the main table.
public struct Route: Sendable, Hashable, CustomStringConvertible {
    /// Destination network; `0.0.0.0/0` is the default route.
    public var destination: IPv4Interface
    public var gateway: IPv4Address?
    /// Output device; required for onlink routes and device routes.
    public var ifindex: Int32?
    /// The gateway is reachable on the device even though no address covers it.
    public var onlink: Bool

    public init(destination: IPv4Interface, gateway: IPv4Address? = nil, ifindex: Int32? = nil, onlink: Bool = false) {
        self.destination = destination
        self.gateway = gateway
        self.ifindex = ifindex
        self.onlink = onlink
    }

    /// The default route via `gateway`.
    public static func defaultRoute(via gateway: IPv4Address, ifindex: Int32? = nil, onlink: Bool = false) -> Route {
        Route(destination: .any, gateway: gateway, ifindex: ifindex, onlink: onlink)
    }

    public var description: String {
        var text = destination.prefixLength == 0 ? "default" : destination.network.description
        if let gateway { text += " via \(gateway)" }
        if let ifindex { text += " dev #\(ifindex)" }
        if onlink { text += " onlink" }
        return text
    }
}

extension RouteSocket {
    /// Adds a route (fails with `.exists` if one with the same destination exists).
    public func addRoute(_ route: Route) throws {
        try withRoute(route) { try nlCheck("add route \(route) in \(netns)", rtnl_route_add(sk, $0, cnl_link_add_flags_excl())) }
    }

    /// Deletes a route; returns false when there was none.
    @discardableResult
    public func deleteRoute(_ route: Route) throws -> Bool {
        var found = true
        try withRoute(route) { raw in
            let rc = rtnl_route_delete(sk, raw, 0)
            if rc == -NLE_OBJ_NOTFOUND { found = false; return }
            try nlCheck("delete route \(route) in \(netns)", rc)
        }
        return found
    }

    /// The IPv4 routes of the main table.
    public func routes() throws -> [Route] {
        var cache: OpaquePointer?
        try nlDump("list routes in \(netns)") { rtnl_route_alloc_cache(sk, AF_INET, 0, &cache) }
        defer { nl_cache_free(cache) }
        var result: [Route] = []
        forEachObject(in: cache) { raw in
            guard rtnl_route_get_table(raw) == RT_TABLE_MAIN.rawValue else { return }
            let dst = rtnl_route_get_dst(raw)
            let bytes = bytesOf(dst)
            let prefix = Int(nl_addr_get_prefixlen(dst))
            let address = bytes.count == 4 ? IPv4Address(bytes: bytes) : IPv4Address(0, 0, 0, 0)
            guard let destination = try? IPv4Interface(address, prefixLength: prefix) else { return }
            var route = Route(destination: destination)
            if rtnl_route_get_nnexthops(raw) > 0, let nh = rtnl_route_nexthop_n(raw, 0) {
                let gw = bytesOf(rtnl_route_nh_get_gateway(nh))
                route.gateway = gw.count == 4 ? IPv4Address(bytes: gw) : nil
                route.ifindex = rtnl_route_nh_get_ifindex(nh)
                route.onlink = rtnl_route_nh_get_flags(nh) & UInt32(RTNH_F_ONLINK) != 0
            }
            result.append(route)
        }
        return result
    }

    private func withRoute(_ route: Route, _ body: (OpaquePointer) throws -> Void) throws {
        let raw = try allocated(rtnl_route_alloc(), "a route")
        defer { rtnl_route_put(raw) }
        let network = route.destination.network
        let dst = try makeNLAddress(family: AF_INET, bytes: network.address.bytes, prefixLength: network.prefixLength)
        defer { nl_addr_put(dst) }
        rtnl_route_set_family(raw, UInt8(AF_INET))
        rtnl_route_set_table(raw, RT_TABLE_MAIN.rawValue)
        rtnl_route_set_protocol(raw, UInt8(RTPROT_STATIC))
        try nlCheck("set route destination \(network)", rtnl_route_set_dst(raw, dst))
        // A route without gateway is a link-scope device route.
        rtnl_route_set_scope(raw, UInt8((route.gateway == nil ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE).rawValue))
        let nh = try allocated(rtnl_route_nh_alloc(), "a next hop")  // owned by the route once added
        if let ifindex = route.ifindex { rtnl_route_nh_set_ifindex(nh, ifindex) }
        if let gateway = route.gateway {
            let gw = try makeNLAddress(family: AF_INET, bytes: gateway.bytes)
            rtnl_route_nh_set_gateway(nh, gw)
            nl_addr_put(gw)
        }
        if route.onlink { rtnl_route_nh_set_flags(nh, UInt32(RTNH_F_ONLINK)) }
        rtnl_route_add_nexthop(raw, nh)
        try body(raw)
    }
}
