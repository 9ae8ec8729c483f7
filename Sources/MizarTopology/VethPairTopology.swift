import Foundation
import MizarNet

/// A short unique name prefix for one test's interfaces, namespaces and pins
/// (interface names are limited to 15 characters).
public func uniquePrefix() -> String {
    "mz" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
}

/// Two namespaces joined by a veth pair with addresses (A 10.199.0.1, B 10.199.0.2 /24), for
/// tests, benchmarks and demos. Remove it with `teardown()` (in `defer`). Every name
/// starts with `prefix`, so it never touches what it did not create.
public final class VethPairTopology: @unchecked Sendable {
    public let prefix: String
    public let nsA: Netns
    public let nsB: Netns
    public let nameA: String
    public let nameB: String
    public let addressA = IPv4Address(10, 199, 0, 1)
    public let addressB = IPv4Address(10, 199, 0, 2)
    public private(set) var indexA: Int32 = 0
    public private(set) var indexB: Int32 = 0

    public init(prefix: String = uniquePrefix(), mtu: UInt32? = nil) throws {
        self.prefix = prefix
        nameA = prefix + "a"
        nameB = prefix + "b"
        nsA = try Netns.create(named: nameA)
        do {
            nsB = try Netns.create(named: nameB)
        } catch {
            _ = try? Netns.delete(named: nameA)
            throw error
        }
        do {
            let a = try RouteSocket(in: nsA)
            let b = try RouteSocket(in: nsB)
            indexA = try a.createVethPair(name: nameA, peerName: nameB, peerNetns: nsB, mtu: mtu).index
            indexB = try b.link(named: nameB).index
            try a.addAddress(IPv4Interface(addressA, prefixLength: 24), to: indexA)
            try b.addAddress(IPv4Interface(addressB, prefixLength: 24), to: indexB)
            for (sock, name) in [(a, nameA), (b, nameB)] {
                try sock.setUp(name)
                try sock.setUp("lo")
            }
        } catch {
            teardown()
            throw error
        }
    }

    /// Removes both namespaces (and with them the veth pair).
    public func teardown() {
        _ = try? Netns.delete(named: nameA)
        _ = try? Netns.delete(named: nameB)
    }

    /// Pings B from A; returns how many replies came back.
    @discardableResult
    public func ping(count: Int = 3) throws -> Int {
        let result = try runCommand(["ping", "-c", "\(count)", "-i", "0.2", "-W", "2", addressB.description], in: nsA)
        return pingReplies(result.output)
    }
}


extension VethPairTopology {
    /// Sends `count` UDP datagrams carrying `payload` from a real socket in A to B:`port`.
    public func sendUDP(_ payload: [UInt8], count: Int, port: UInt16) throws {
        let target = addressB
        try nsA.perform {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw NetError(.system, operation: "open UDP socket", message: String(cString: strerror(errno))) }
            defer { close(fd) }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = target.value.bigEndian
            for _ in 0..<count {
                let sent = payload.withUnsafeBytes { buf in
                    withUnsafePointer(to: &sin) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                }
                guard sent == payload.count else { throw NetError(.system, operation: "send UDP datagram", message: String(cString: strerror(errno))) }
            }
        }
    }
}
