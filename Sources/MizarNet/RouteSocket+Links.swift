import CNetlink
import Foundation

/// A network device as the kernel reports it.
public struct Link: Sendable, Hashable {
    public var index: Int32
    public var name: String
    public var mac: MACAddress?
    public var mtu: UInt32
    public var isUp: Bool
    /// The rtnetlink kind (`veth`, `bridge`, ...), nil for plain devices like `lo`.
    public var kind: String?
    /// The index of the bridge this device is enslaved to, or 0.
    public var masterIndex: Int32
    /// The device's alias (`ip link set ... alias`), nil when unset. Mizar marks what it creates with one.
    public var alias: String?
    /// For a veth, its peer's index (in the peer's namespace); 0 when the kernel gives none.
    public var linkIndex: Int32
}

extension RouteSocket {
    /// The device named `name`; `.notFound` if it does not exist in this namespace.
    public func link(named name: String) throws -> Link {
        try withKernelLink(name: name, index: 0, operation: "find link \(name) in \(netns)") { Link(raw: $0) }
    }

    /// The device with index `index`.
    public func link(index: Int32) throws -> Link {
        try withKernelLink(name: nil, index: index, operation: "find link index \(index) in \(netns)") { Link(raw: $0) }
    }

    /// Every device in this namespace.
    public func links() throws -> [Link] {
        var cache: OpaquePointer?
        try nlDump("list links in \(netns)") { rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) }
        defer { nl_cache_free(cache) }
        var result: [Link] = []
        forEachObject(in: cache) { result.append(Link(raw: $0)) }
        return result
    }

    /// Creates a veth pair: `name` here, `peerName` created directly inside `peerNetns`
    /// (here if nil), so the peer never appears in this namespace. Returns the local end.
    @discardableResult
    public func createVethPair(name: String, peerName: String, peerNetns: Netns? = nil, mtu: UInt32? = nil) throws -> Link {
        let operation = "create veth \(name) <-> \(peerName)" + (peerNetns.map { " in \($0)" } ?? "")
        try validateName(name, operation)
        try validateName(peerName, operation)
        guard let veth = rtnl_link_veth_alloc() else { throw NetError(.system, operation: operation, message: "out of memory") }
        defer { rtnl_link_put(veth) }
        let peer = try allocated(rtnl_link_veth_get_peer(veth), "a veth peer")
        defer { rtnl_link_put(peer) }
        rtnl_link_set_name(veth, name)
        rtnl_link_set_name(peer, peerName)
        if let mtu {
            rtnl_link_set_mtu(veth, mtu)
            rtnl_link_set_mtu(peer, mtu)
        }
        var nsfd: Int32 = -1
        if let peerNetns {
            nsfd = open(peerNetns.path, O_RDONLY | O_CLOEXEC)
            guard nsfd >= 0 else { throw NetError.system(operation, errno: errno) }
            rtnl_link_set_ns_fd(peer, nsfd)
        }
        defer { if nsfd >= 0 { close(nsfd) } }
        try nlCheck(operation, rtnl_link_add(sk, veth, cnl_link_add_flags_excl()))
        return try link(named: name)
    }

    /// Creates a Linux bridge.
    @discardableResult
    public func createBridge(name: String) throws -> Link {
        let operation = "create bridge \(name)"
        try validateName(name, operation)
        let bridge = try allocated(rtnl_link_bridge_alloc(), "a bridge")
        defer { rtnl_link_put(bridge) }
        rtnl_link_set_name(bridge, name)
        try nlCheck(operation, rtnl_link_add(sk, bridge, cnl_link_add_flags_excl()))
        return try link(named: name)
    }

    /// Enslaves `name` to bridge `master` (nil releases it).
    public func setMaster(of name: String, to master: String?) throws {
        let masterIndex = try master.map { try link(named: $0).index } ?? 0
        try change(name, "set master of \(name) to \(master ?? "none")") { rtnl_link_set_master($0, masterIndex) }
    }

    /// Renames a device. The kernel refuses while it is up, so this brings it down first and back up after.
    public func rename(_ name: String, to newName: String) throws {
        let operation = "rename link \(name) to \(newName)"
        try validateName(newName, operation)
        let wasUp = try link(named: name).isUp
        if wasUp { try setUp(name, false) }
        try change(name, operation) { rtnl_link_set_name($0, newName) }
        if wasUp { try setUp(newName, true) }
    }

    public func setMAC(of name: String, to mac: MACAddress) throws {
        let addr = try makeNLAddress(family: AF_LLC, bytes: mac.bytes)
        defer { nl_addr_put(addr) }
        try change(name, "set MAC of \(name) to \(mac)") { rtnl_link_set_addr($0, addr) }
    }

    /// Sets the device's alias: a free-form label the kernel keeps with it.
    public func setAlias(of name: String, to alias: String) throws {
        try change(name, "set alias of \(name)") { rtnl_link_set_ifalias($0, alias) }
    }

    public func setMTU(of name: String, to mtu: UInt32) throws {
        try change(name, "set MTU of \(name) to \(mtu)") { rtnl_link_set_mtu($0, mtu) }
    }

    /// Brings a device up or down.
    public func setUp(_ name: String, _ up: Bool = true) throws {
        try change(name, "set \(name) \(up ? "up" : "down")") { change in
            if up { rtnl_link_set_flags(change, IFF_UP.rawValue) } else { rtnl_link_unset_flags(change, IFF_UP.rawValue) }
        }
    }

    /// Deletes a device (both ends, for a veth). Returns false when it did not exist.
    @discardableResult
    public func deleteLink(named name: String) throws -> Bool {
        let operation = "delete link \(name) in \(netns)"
        let link = try allocated(rtnl_link_alloc(), "a link")
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        let rc = rtnl_link_delete(sk, link)
        if rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV { return false }
        try nlCheck(operation, rc)
        return true
    }

    private func withKernelLink<T>(name: String?, index: Int32, operation: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        var raw: OpaquePointer?
        let rc = rtnl_link_get_kernel(sk, index, name, &raw)
        try nlCheck(operation, rc)
        guard let raw else { throw NetError(.notFound, operation: operation, message: "no such device") }
        defer { rtnl_link_put(raw) }
        return try body(raw)
    }

    /// Applies `set` to a change object and sends it for device `name`.
    private func change(_ name: String, _ operation: String, _ set: (OpaquePointer) -> Void) throws {
        try withKernelLink(name: name, index: 0, operation: operation) { orig in
            let change = try allocated(rtnl_link_alloc(), "a link")
            defer { rtnl_link_put(change) }
            set(change)
            try nlCheck(operation, rtnl_link_change(sk, orig, change, 0))
        }
    }

    private func validateName(_ name: String, _ operation: String) throws {
        guard !name.isEmpty, name.utf8.count < 16 /* IFNAMSIZ */, !name.contains("/"), !name.contains(" ") else {
            throw NetError(.invalidArgument, operation: operation, message: "invalid interface name '\(name)' (1-15 characters, no '/' or spaces)")
        }
    }
}

extension Link {
    init(raw: OpaquePointer) {
        index = rtnl_link_get_ifindex(raw)
        name = String(cString: rtnl_link_get_name(raw))
        let macBytes = bytesOf(rtnl_link_get_addr(raw))
        mac = macBytes.count == 6 ? MACAddress(bytes: macBytes) : nil
        mtu = rtnl_link_get_mtu(raw)
        isUp = rtnl_link_get_flags(raw) & IFF_UP.rawValue != 0
        kind = rtnl_link_get_type(raw).map { String(cString: $0) }
        masterIndex = rtnl_link_get_master(raw)
        alias = rtnl_link_get_ifalias(raw).map { String(cString: $0) }
        linkIndex = rtnl_link_get_link(raw)
    }
}
