import CNetlink
import Foundation

extension RouteSocket {
    /// Assigns an IPv4 address to device `ifindex`.
    public func addAddress(_ address: IPv4Interface, to ifindex: Int32) throws {
        try withAddr(address, ifindex) { try nlCheck("add address \(address) to ifindex \(ifindex) in \(netns)", rtnl_addr_add(sk, $0, 0)) }
    }

    /// Removes an IPv4 address from device `ifindex`.
    public func deleteAddress(_ address: IPv4Interface, from ifindex: Int32) throws {
        try withAddr(address, ifindex) { try nlCheck("delete address \(address) from ifindex \(ifindex) in \(netns)", rtnl_addr_delete(sk, $0, 0)) }
    }

    /// The IPv4 addresses of device `ifindex`.
    public func addresses(of ifindex: Int32) throws -> [IPv4Interface] {
        var cache: OpaquePointer?
        try nlDump("list addresses in \(netns)") { rtnl_addr_alloc_cache(sk, &cache) }
        defer { nl_cache_free(cache) }
        var result: [IPv4Interface] = []
        forEachObject(in: cache) { addr in
            guard rtnl_addr_get_ifindex(addr) == ifindex, rtnl_addr_get_family(addr) == AF_INET else { return }
            let bytes = bytesOf(rtnl_addr_get_local(addr))
            guard bytes.count == 4 else { return }
            if let address = try? IPv4Interface(IPv4Address(bytes: bytes), prefixLength: Int(rtnl_addr_get_prefixlen(addr))) { result.append(address) }
        }
        return result
    }

    private func withAddr(_ address: IPv4Interface, _ ifindex: Int32, _ body: (OpaquePointer) throws -> Void) throws {
        let addr = try allocated(rtnl_addr_alloc(), "an address")
        defer { rtnl_addr_put(addr) }
        let local = try makeNLAddress(family: AF_INET, bytes: address.address.bytes, prefixLength: address.prefixLength)
        defer { nl_addr_put(local) }
        rtnl_addr_set_ifindex(addr, ifindex)
        rtnl_addr_set_family(addr, AF_INET)
        try nlCheck("set address \(address)", rtnl_addr_set_local(addr, local))
        rtnl_addr_set_prefixlen(addr, Int32(address.prefixLength))
        try body(addr)
    }
}
