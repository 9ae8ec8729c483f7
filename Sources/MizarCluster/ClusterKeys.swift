import Foundation
import MizarAPI

/// Where the cluster keeps what, under one prefix (default `/mizar/v1/`):
///
/// - `<prefix><kind>/<name>`: a resource as JSON (`droplets/`, `vpcs/`, `networks/`,
///   `endpoints/`, `pluginconfigs/`, `chains/`), as `GET /v1/<kind>/<name>` returns it without status;
/// - `<prefix>addresses/<vpc>/<ip>`: the endpoint holding an address, written in the same
///   transaction as the endpoint, created only if absent: no two hosts can hand out one address;
/// - `<prefix>live/<droplet>`: bound to the droplet's lease, gone when its transitd stops renewing it;
/// - `<prefix>blocks/<network>/<base>`: the droplet that claimed an address block (`AddressBlocks`);
/// - `<prefix>pending/<network>`: droplets the controller is making bouncers of the network,
///   which fill their endpoint table before the network names them (JSON list);
/// - `<prefix>progress/<droplet>`: the last revision the droplet's data plane has applied;
/// - `<prefix>controller/leader`: the active mizar-controller's name, bound to its lease;
/// - `<prefix>cluster/secret`: the key droplets sign their pushes to bouncers with (made once, by the first).
public struct ClusterKeys: Sendable, Hashable {
    public let prefix: String

    public init(prefix: String = "/mizar/v1/") {
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    public func resource(_ ref: ResourceReference) -> String { prefix + ref.kind.path + "/" + ref.name }
    public func address(vpc: String, ip: IPv4Address) -> String { prefix + "addresses/" + vpc + "/" + "\(ip)" }
    public func live(_ droplet: String) -> String { prefix + "live/" + droplet }
    public func block(network: String, base: UInt32) -> String { prefix + "blocks/" + network + "/" + "\(IPv4Address(value: base))" }
    public func pending(_ network: String) -> String { prefix + "pending/" + network }
    public func progress(_ droplet: String) -> String { prefix + "progress/" + droplet }
    public var leader: String { prefix + "controller/leader" }
    public var secret: String { prefix + "cluster/secret" }

    /// What a key under the prefix is.
    public enum Parsed: Hashable, Sendable {
        case resource(ResourceReference)
        case address
        case live(String)
        case block(network: String, base: UInt32)
        case pending(String)
        case progress(String)
        case leader
        case secret
        case unknown
    }

    public func parse(_ key: String) -> Parsed {
        guard key.hasPrefix(prefix) else { return .unknown }
        let rest = key.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return .unknown }
        let head = String(rest[..<slash]), name = String(rest[rest.index(after: slash)...])
        switch head {
        case "addresses": return .address
        case "live": return .live(name)
        case "pending": return .pending(name)
        case "progress": return .progress(name)
        case "controller": return name == "leader" ? .leader : .unknown
        case "cluster": return name == "secret" ? .secret : .unknown
        case "blocks":
            let parts = name.split(separator: "/")
            guard parts.count == 2, let base = IPv4Address(String(parts[1])) else { return .unknown }
            return .block(network: String(parts[0]), base: base.value)
        default: break
        }
        guard let kind = Kind.allCases.first(where: { $0.path == head }), !name.isEmpty else { return .unknown }
        return .resource(ResourceReference(kind: kind, name: name))
    }

    /// A resource's value: its JSON without status, keys sorted (equal resources, equal bytes).
    public static func encode(_ resource: AnyResource) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(resource))
    }

    public static func decode(_ value: [UInt8]) throws -> AnyResource {
        try JSONDecoder().decode(AnyResource.self, from: Data(value))
    }
}
