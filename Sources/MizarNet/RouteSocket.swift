import CNetlink
import Foundation

/// A rtnetlink socket bound to one network namespace (libnl-route-3).
///
/// A netlink socket belongs to the namespace it was created in, so operations
/// through it act there from any thread. Not thread-safe: one per task.
public final class RouteSocket {
    let sk: OpaquePointer
    /// The namespace this socket acts in.
    public let netns: Netns

    /// Opens a socket in `netns` (the process's namespace by default).
    public init(in netns: Netns = .host) throws {
        self.netns = netns
        let operation = "open netlink socket in \(netns)"
        sk = try netns.perform { () throws -> OpaquePointer in
            guard let sk = nl_socket_alloc() else { throw NetError(.system, operation: operation, message: "out of memory") }
            let rc = nl_connect(sk, NETLINK_ROUTE)
            if rc < 0 {
                nl_socket_free(sk)
                throw NetError.netlink(operation, rc)
            }
            return sk
        }
    }

    deinit {
        nl_socket_free(sk)
    }
}

/// Builds a libnl address from raw bytes; the caller puts it.
func makeNLAddress(family: Int32, bytes: [UInt8], prefixLength: Int? = nil) throws -> OpaquePointer {
    let addr = try allocated(bytes.withUnsafeBytes { nl_addr_build(family, $0.baseAddress, $0.count) }, "a netlink address")
    if let prefixLength { nl_addr_set_prefixlen(addr, Int32(prefixLength)) }
    return addr
}

/// What libnl allocated, or a thrown error when it could not (it returns NULL without memory).
func allocated<T>(_ object: T?, _ what: String) throws -> T {
    guard let object else { throw NetError(.system, operation: "allocate \(what)", message: "out of memory") }
    return object
}

/// The bytes of a libnl address.
func bytesOf(_ addr: OpaquePointer?) -> [UInt8] {
    guard let addr, let raw = nl_addr_get_binary_addr(addr) else { return [] }
    let len = Int(nl_addr_get_len(addr))
    return Array(UnsafeRawBufferPointer(start: raw, count: len))
}

/// Walks the objects of a libnl cache.
func forEachObject(in cache: OpaquePointer?, _ body: (OpaquePointer) throws -> Void) rethrows {
    guard let cache else { return }
    var object = nl_cache_get_first(cache)
    while let current = object {
        try body(current)
        object = nl_cache_get_next(current)
    }
}
