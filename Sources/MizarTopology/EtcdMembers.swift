import Foundation
import MizarNet

/// A real etcd cluster for tests, the demo and the bench: one `etcd` process per member,
/// each in its namespace (or the test's own on loopback) with a private data directory.
/// `teardown()` kills every member and removes the directories.
public final class EtcdMembers: @unchecked Sendable {
    public struct Member: Sendable {
        public let name: String
        public let netns: Netns?
        public let ip: String
        public let clientPort: Int
        public let peerPort: Int
        /// True when clients reach it over TLS.
        public let tls: Bool
        public var clientURL: String { "\(tls ? "https" : "http")://\(ip):\(clientPort)" }
        var peerURL: String { "http://\(ip):\(peerPort)" }
    }

    public let members: [Member]
    public let root: String
    /// PEM files of TLS for clients (nil: plain HTTP): the members' certificate and key, and the CA that signed it.
    public let tls: (certificate: String, key: String, ca: String)?
    private let token: String
    private var processes: [String: RunningCommand] = [:]

    /// Starts the members (`(name, netns, ip)`; clients on `clientPort`, peers on `peerPort`)
    /// and waits until the cluster answers. With nil `clientPort` (loopback members), ports
    /// are picked at random among the free ones.
    public init(_ specs: [(name: String, netns: Netns?, ip: String)], root: String, clientPort: Int? = nil, peerPort: Int? = nil,
                tls: (certificate: String, key: String, ca: String)? = nil) throws {
        self.root = root
        self.tls = tls
        token = (root as NSString).lastPathComponent
        var members: [Member] = []
        for spec in specs {
            let client = clientPort ?? Self.freePort(), peer = peerPort ?? Self.freePort()
            members.append(Member(name: spec.name, netns: spec.netns, ip: spec.ip, clientPort: client, peerPort: peer, tls: tls != nil))
        }
        self.members = members
        do {
            for member in members { try start(member.name) }
            try awaitHealthy()
        } catch {
            teardown()
            throw error
        }
    }

    /// Every member's client URL, comma-separated (what `--etcd` takes).
    public var clientURLs: String { members.map(\.clientURL).joined(separator: ",") }

    public func member(_ name: String) -> Member { members.first { $0.name == name }! }

    /// Starts (or restarts, on its data) member `name`.
    public func start(_ name: String) throws {
        let m = member(name)
        let cluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        let dataDir = root + "/" + name
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        processes[name] = try RunningCommand([
            "etcd", "--name", name, "--data-dir", dataDir, "--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
            "--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL, "--initial-cluster", cluster,
            "--initial-cluster-state", "new", "--initial-cluster-token", token, "--log-level", "warn",
        ] + (tls.map { ["--cert-file", $0.certificate, "--key-file", $0.key] } ?? []), in: m.netns)
    }

    /// Ends member `name` (SIGKILL: a crash) and waits for it.
    @discardableResult
    public func stop(_ name: String, signal: Int32 = SIGKILL) -> CommandResult? {
        processes.removeValue(forKey: name)?.stop(with: signal)
    }

    /// Freezes member `name` (SIGSTOP): its connections stay open and nothing on them is
    /// answered, as with a hung member. `thaw` resumes it; `teardown` kills it either way.
    public func freeze(_ name: String) {
        if let process = processes[name] { kill(process.processID, SIGSTOP) }
    }

    public func thaw(_ name: String) {
        if let process = processes[name] { kill(process.processID, SIGCONT) }
    }

    /// Waits until a quorum answers through every running member.
    public func awaitHealthy(timeout: TimeInterval = 30) throws {
        let running = members.filter { processes[$0.name]?.isRunning == true }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if running.allSatisfy({ (try? etcdctl(["endpoint", "health"], via: $0.name).status) == 0 }) { return }
            usleep(100_000)
        }
        let logs = processes.map { "\($0.key): \($0.value.errorOutput.suffix(2000))" }.joined(separator: "\n")
        throw NetError(.system, operation: "start etcd", message: "the cluster did not become healthy:\n\(logs)")
    }

    /// Runs `etcdctl` (v3 API) against member `via` (default: the first running one), in its namespace.
    @discardableResult
    public func etcdctl(_ arguments: [String], via name: String? = nil) throws -> CommandResult {
        let m = name.map(member) ?? members.first { processes[$0.name]?.isRunning == true } ?? members[0]
        return try runCommand(["etcdctl", "--endpoints", m.clientURL, "--command-timeout", "3s"] + (tls.map { ["--cacert", $0.ca] } ?? []) + arguments, in: m.netns,
                              environment: ["ETCDCTL_API": "3"], timeout: 20)
    }

    /// The cluster's current revision.
    public func revision() throws -> Int64 {
        let out = try etcdctl(["endpoint", "status", "-w", "json"]).output
        guard let range = out.range(of: "\"revision\":") else { throw NetError(.system, operation: "etcd revision", message: out) }
        return Int64(out[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    public func teardown() {
        for process in processes.values { process.stop(with: SIGKILL) }
        processes = [:]
        try? FileManager.default.removeItem(atPath: root)
    }

    /// A TCP port nothing on loopback listens on now.
    static func freePort() -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000...40000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if bound == 0 { return port }
        }
        return Int.random(in: 20000...40000)
    }
}
