#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MizarAPI

/// The network configuration `mizar` reads from stdin: the spec's common keys, `mizar`'s own
/// and what the runtime adds (`runtimeConfig`, `prevResult`, `cni.dev/valid-attachments`).
/// docs/cni.md describes every key.
public struct NetConf: Sendable {
    public var cniVersion: CNIVersion
    /// The CNI network's name (the conflist's): part of every attachment's identity.
    public var name: String
    /// transitd's Unix socket.
    public var socket: String
    /// transitd's VPC and network the attachment joins (defaults: transitd's first-start `vpc0`/`net0`).
    public var vpc: String?
    public var network: String?
    /// `tc` (default) or `xdp`.
    public var agentHook: AgentHook?
    /// The delegated IPAM plugin (the `ipam` section's `type`); nil for transitd's built-in allocation.
    public var ipamType: String?
    /// The `dns` object, passed into the result as it is.
    public var dns: JSONValue?
    /// What the runtime asked for through capabilities.
    public var runtimeConfig: RuntimeConfig
    /// The previous plugin's result in a chain.
    public var prevResult: CNIResult?
    /// GC: the attachments to keep.
    public var validAttachments: [Attachment]
    /// The whole document, for delegated plugins.
    public var raw: [String: JSONValue]

    /// Keys `mizar` reads; on ADD any other top-level key is refused as an unsupported field
    /// (code 2) so that a misspelt key is not silently ignored. `cni.dev/` keys are the runtime's.
    static let knownKeys: Set<String> = [
        "cniVersion", "name", "type", "capabilities", "ipam", "dns", "args", "runtimeConfig", "prevResult",
        "socket", "vpc", "network", "agentHook",
    ]

    public struct RuntimeConfig: Sendable, Hashable {
        /// Capability `ips`: addresses the runtime wants (the first IPv4 one is used).
        public var ips: [String] = []
        /// Capability `mac`.
        public var mac: String?
        /// Capability `mizar`: `{"vpc": ..., "network": ...}` per pod.
        public var vpc: String?
        public var network: String?
        /// Capability `bandwidth`: the endpoint's limits, kept by the shaper plugin.
        public var bandwidth: EndpointBandwidth?
        /// Capability `portMappings`: droplet ports the nat plugin forwards to the endpoint.
        public var portMappings: [EndpointPortMapping] = []
    }

    public static let defaultSocket = "/run/mizar/transitd.sock"

    /// The `cniVersion` stdin names, when it is one `mizar` speaks: the version an error is
    /// written in even when the rest of the configuration is refused.
    public static func statedVersion(in data: [UInt8]) -> CNIVersion? {
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(data)),
              case .string(let text)? = object["cniVersion"] else { return nil }
        return CNIVersion(rawValue: text)
    }

    /// Parses stdin for `command` (VERSION reads none: `main` answers it first).
    public init(json data: [UInt8], for command: CNICommand) throws(CNIError) {
        let document: JSONValue
        do { document = try JSONDecoder().decode(JSONValue.self, from: Data(data)) } catch {
            throw CNIError(.decodingFailure, "the network configuration on stdin is not JSON", details: "\(error)")
        }
        guard case .object(let object) = document else { throw CNIError(.decodingFailure, "the network configuration on stdin is not a JSON object") }
        raw = object
        guard let version = object["cniVersion"] else { throw CNIError(.decodingFailure, "the network configuration has no cniVersion") }
        cniVersion = try CNIVersion.parse(try Self.string(version, "cniVersion"))
        if let introduced = CNIVersion.introducing(command), cniVersion < introduced {
            throw CNIError(.incompatibleVersion, "\(command.rawValue) needs cniVersion \(introduced.rawValue) or later; the configuration says \(cniVersion.rawValue)")
        }
        // Only ADD refuses: a configuration edited after an ADD must not leave DEL (or GC) stuck.
        for key in object.keys where command == .add && !Self.knownKeys.contains(key) && !key.hasPrefix("cni.dev/") {
            throw CNIError(.unsupportedField, "unsupported field \"\(key)\" in the network configuration", details: "\(key): \(Self.text(object[key]!))")
        }
        guard let nameValue = object["name"] else { throw CNIError(.invalidConfig, "the network configuration has no name") }
        name = try Self.string(nameValue, "name")
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") }) else {
            throw CNIError(.invalidConfig, "network name \"\(name)\" must be printable, without spaces or '/'")
        }
        socket = try object["socket"].map { v throws(CNIError) in try Self.string(v, "socket") } ?? Self.defaultSocket
        guard socket.hasPrefix("/"), !socket.utf8.contains(0) else {
            throw CNIError(.invalidConfig, "socket \"\(socket)\" must be an absolute path (transitd's Unix socket)")
        }
        vpc = try object["vpc"].map { v throws(CNIError) in try Self.string(v, "vpc") }
        network = try object["network"].map { v throws(CNIError) in try Self.string(v, "network") }
        if let hook = object["agentHook"] {
            let text = try Self.string(hook, "agentHook")
            guard let parsed = AgentHook(rawValue: text) else { throw CNIError(.invalidConfig, "agentHook \"\(text)\" is neither tc nor xdp") }
            agentHook = parsed
        }
        switch object["ipam"] {
        case nil, .null?: ipamType = nil
        case .object(let section)?:
            guard case .string(let type)? = section["type"], !type.isEmpty else { throw CNIError(.invalidConfig, "the ipam section has no type") }
            guard !type.contains("/") else { throw CNIError(.invalidConfig, "ipam type \"\(type)\" must be a plugin name, not a path") }
            ipamType = type
        default: throw CNIError(.decodingFailure, "ipam must be an object")
        }
        dns = object["dns"]
        runtimeConfig = try Self.runtimeConfig(object["runtimeConfig"], args: object["args"])
        switch object["prevResult"] {
        case nil, .null?: prevResult = nil
        case let value?: prevResult = try CNIResult(value, cniVersion: cniVersion)
        }
        validAttachments = try Self.attachments(object["cni.dev/valid-attachments"], required: command == .gc)
    }

    private static func runtimeConfig(_ value: JSONValue?, args: JSONValue?) throws(CNIError) -> RuntimeConfig {
        var config = RuntimeConfig()
        // The `args.cni` convention (ips, mac) first; runtimeConfig wins.
        if case .object(let args)? = args, case .object(let cni)? = args["cni"] {
            config.ips = try strings(cni["ips"], "args.cni.ips")
            config.mac = try cni["mac"].map { v throws(CNIError) in try string(v, "args.cni.mac") }
        }
        guard let value, value != .null else { return config }
        guard case .object(let object) = value else { throw CNIError(.decodingFailure, "runtimeConfig must be an object") }
        if let ips = object["ips"] { config.ips = try strings(ips, "runtimeConfig.ips") }
        if let mac = object["mac"] { config.mac = try string(mac, "runtimeConfig.mac") }
        if let v = object["bandwidth"], v != .null, v != .object([:]) {
            config.bandwidth = try decode(EndpointBandwidth.self, v, "runtimeConfig.bandwidth")
        }
        if let v = object["portMappings"], v != .null {
            config.portMappings = try decode([EndpointPortMapping].self, v, "runtimeConfig.portMappings")
        }
        switch object["mizar"] {
        case nil, .null?: break
        case .object(let mizar)?:
            for key in mizar.keys where key != "vpc" && key != "network" {
                throw CNIError(.unsupportedField, "unsupported field \"\(key)\" in runtimeConfig.mizar (vpc, network)", details: "\(key): \(text(mizar[key]!))")
            }
            config.vpc = try mizar["vpc"].map { v throws(CNIError) in try string(v, "runtimeConfig.mizar.vpc") }
            config.network = try mizar["network"].map { v throws(CNIError) in try string(v, "runtimeConfig.mizar.network") }
        default: throw CNIError(.decodingFailure, "runtimeConfig.mizar must be an object: {\"vpc\": ..., \"network\": ...}")
        }
        return config
    }

    private static func attachments(_ value: JSONValue?, required: Bool) throws(CNIError) -> [Attachment] {
        guard let value, value != .null else {
            if required { throw CNIError(.invalidConfig, "GC needs cni.dev/valid-attachments (an empty list to remove every attachment)") }
            return []
        }
        guard case .array(let items) = value else { throw CNIError(.decodingFailure, "cni.dev/valid-attachments must be a list") }
        var result: [Attachment] = []
        for item in items {
            guard case .object(let o) = item, case .string(let id)? = o["containerID"], case .string(let ifname)? = o["ifname"] else {
                throw CNIError(.decodingFailure, "each of cni.dev/valid-attachments has a containerID and an ifname", details: text(item))
            }
            result.append(Attachment(containerID: id, ifName: ifname))
        }
        return result
    }

    /// A capability's value as its typed form (CNI's field names are the API's).
    static func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue, _ field: String) throws(CNIError) -> T {
        do { return try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(value)) } catch {
            throw CNIError(.decodingFailure, "\(field) is not what the CNI conventions describe", details: "\(text(value)): \(error)")
        }
    }

    static func string(_ value: JSONValue, _ field: String) throws(CNIError) -> String {
        guard case .string(let s) = value else { throw CNIError(.decodingFailure, "\(field) must be a string", details: text(value)) }
        return s
    }

    static func strings(_ value: JSONValue?, _ field: String) throws(CNIError) -> [String] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else { throw CNIError(.decodingFailure, "\(field) must be a list of strings") }
        var out: [String] = []
        for item in items { out.append(try string(item, field)) }
        return out
    }

    static func text(_ value: JSONValue) -> String {
        (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }
}

/// One container interface on a CNI network: the identity the spec gives an attachment.
public struct Attachment: Sendable, Hashable {
    public var containerID: String
    public var ifName: String
    public init(containerID: String, ifName: String) {
        self.containerID = containerID
        self.ifName = ifName
    }

    /// The transitd endpoint that serves it on CNI network `network`: `cni-` and 16 hex digits
    /// of a hash (FNV-1a 64) of the three, always a valid resource name; the labels keep the
    /// full values, and are what DEL and GC check.
    public func endpointName(network: String) -> String {
        "cni-" + FNV1a.hex(FNV1a.hash(network.utf8 + [0] + containerID.utf8 + [0] + ifName.utf8), digits: 16)
    }
}

/// The labels `mizar` puts on the endpoints it creates.
public enum CNILabel {
    public static let network = "cni.mizar.com/network"
    public static let containerID = "cni.mizar.com/container-id"
    public static let ifName = "cni.mizar.com/ifname"
    public static let podNamespace = "k8s.io/pod-namespace"
    public static let podName = "k8s.io/pod-name"
}
