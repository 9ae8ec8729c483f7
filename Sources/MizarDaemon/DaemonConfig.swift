import Foundation
import MizarAPI
import Yams

/// transitd's settings: the YAML file's keys are these names; command-line flags override them.
public struct DaemonConfig: Codable, Sendable, Equatable {
    /// The substrate interface (required).
    public var interface: String?
    /// This droplet's name among droplets (default: the host name).
    public var name: String?
    public var socket: String = "/run/mizar/transitd.sock"
    public var stateDir: String = "/var/lib/mizar"
    /// Base of the pins on bpffs.
    public var bpffs: String = "/sys/fs/bpf/mizar"
    /// Where the BPF objects are; nil searches the usual places (docs/transitd.md).
    public var bpfDir: String?
    public var pluginDir: String = "/etc/mizar/plugins"
    /// Where local endpoints' agents run unless an endpoint says otherwise: `tc` or `xdp`.
    public var agentHook: AgentHook = .tc
    /// Remove everything transitd made when it exits.
    public var cleanup: Bool = false
    /// `HOST:PORT` of the remote API (TLS and a bearer token); nil: the Unix socket only.
    public var listen: String?
    public var tokenFile: String?
    /// PEM certificate chain and private key of the remote listener.
    public var tlsCert: String?
    public var tlsKey: String?
    /// Cluster mode: the etcd members' client URLs; nil or empty: the local store only.
    public var etcd: [String]?
    /// PEM files for https etcd members: a CA to trust, and this client's certificate and key.
    public var etcdCA: String?
    public var etcdCert: String?
    public var etcdKey: String?
    /// The key prefix of the cluster's objects in etcd.
    public var etcdPrefix: String = "/mizar/v1/"
    /// Seconds this droplet's lease lives without being renewed (its liveness in the cluster).
    public var leaseTTL: Int = 10
    /// Cluster mode: the UDP port on the droplet's address where other droplets push changes to its bouncer tables; 0: no pushes.
    public var peerPort: Int = 7947
    /// Seconds a learned direct path is used without being refreshed; 0 turns the direct path off.
    public var directPathMaxAge: Int = 30

    public init() {}

    public static let defaultPath = "/etc/mizar/transitd.yaml"

    enum CodingKeys: String, CodingKey {
        case interface, name, socket, stateDir, bpffs, bpfDir, pluginDir, agentHook, cleanup, listen, tokenFile, tlsCert, tlsKey
        case etcd, etcdCA, etcdCert, etcdKey, etcdPrefix, leaseTTL, directPathMaxAge, peerPort
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DaemonConfig()
        interface = try c.decodeIfPresent(String.self, forKey: .interface)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        socket = try c.decodeIfPresent(String.self, forKey: .socket) ?? d.socket
        stateDir = try c.decodeIfPresent(String.self, forKey: .stateDir) ?? d.stateDir
        bpffs = try c.decodeIfPresent(String.self, forKey: .bpffs) ?? d.bpffs
        bpfDir = try c.decodeIfPresent(String.self, forKey: .bpfDir)
        pluginDir = try c.decodeIfPresent(String.self, forKey: .pluginDir) ?? d.pluginDir
        agentHook = try c.decodeIfPresent(AgentHook.self, forKey: .agentHook) ?? d.agentHook
        cleanup = try c.decodeIfPresent(Bool.self, forKey: .cleanup) ?? d.cleanup
        listen = try c.decodeIfPresent(String.self, forKey: .listen)
        tokenFile = try c.decodeIfPresent(String.self, forKey: .tokenFile)
        tlsCert = try c.decodeIfPresent(String.self, forKey: .tlsCert)
        tlsKey = try c.decodeIfPresent(String.self, forKey: .tlsKey)
        etcd = try c.decodeIfPresent([String].self, forKey: .etcd)
        etcdCA = try c.decodeIfPresent(String.self, forKey: .etcdCA)
        etcdCert = try c.decodeIfPresent(String.self, forKey: .etcdCert)
        etcdKey = try c.decodeIfPresent(String.self, forKey: .etcdKey)
        etcdPrefix = try c.decodeIfPresent(String.self, forKey: .etcdPrefix) ?? d.etcdPrefix
        leaseTTL = try c.decodeIfPresent(Int.self, forKey: .leaseTTL) ?? d.leaseTTL
        peerPort = try c.decodeIfPresent(Int.self, forKey: .peerPort) ?? d.peerPort
        directPathMaxAge = try c.decodeIfPresent(Int.self, forKey: .directPathMaxAge) ?? d.directPathMaxAge
    }

    /// Reads a YAML file; a missing file at the default path is an empty configuration.
    public static func load(_ path: String?) throws -> DaemonConfig {
        let file = path ?? defaultPath
        guard FileManager.default.fileExists(atPath: file) else {
            if path != nil { throw APIError(.invalid, "no configuration file at \(file)") }
            return DaemonConfig()
        }
        guard let handle = FileHandle(forReadingAtPath: file) else { throw APIError(.invalid, "cannot read \(file)") }
        defer { try? handle.close() }
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return DaemonConfig() }
        do {
            return try YAMLDecoder().decode(DaemonConfig.self, from: text)
        } catch let error as DecodingError {
            throw APIError(.invalid, "\(file): \(error.summary)")
        }
    }
}
