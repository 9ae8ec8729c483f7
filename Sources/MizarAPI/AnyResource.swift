#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A resource of any kind: one document of a manifest, one item of an apply.
public enum AnyResource: Codable, Sendable, Hashable {
    case droplet(Droplet)
    case vpc(VPC)
    case network(Network)
    case endpoint(Endpoint)
    case pluginConfig(PluginConfig)
    case pluginChain(PluginChain)

    public var kind: Kind {
        switch self {
        case .droplet: .droplet
        case .vpc: .vpc
        case .network: .network
        case .endpoint: .endpoint
        case .pluginConfig: .pluginConfig
        case .pluginChain: .pluginChain
        }
    }

    /// The spec when this is an endpoint.
    public var endpointSpec: EndpointSpec? {
        if case .endpoint(let e) = self { e.spec } else { nil }
    }

    public var name: String {
        switch self {
        case .droplet(let r): r.name
        case .vpc(let r): r.name
        case .network(let r): r.name
        case .endpoint(let r): r.name
        case .pluginConfig(let r): r.name
        case .pluginChain(let r): r.name
        }
    }

    private enum KindKey: String, CodingKey { case kind }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: KindKey.self)
        guard let text = try c.decodeIfPresent(String.self, forKey: .kind) else {
            throw DecodingError.keyNotFound(KindKey.kind, .init(codingPath: c.codingPath, debugDescription: "a resource needs a kind"))
        }
        guard let kind = Kind(rawValue: text) else {
            let known = Kind.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown kind \"\(text)\"; known: \(known)")
        }
        switch kind {
        case .droplet: self = .droplet(try Droplet(from: decoder))
        case .vpc: self = .vpc(try VPC(from: decoder))
        case .network: self = .network(try Network(from: decoder))
        case .endpoint: self = .endpoint(try Endpoint(from: decoder))
        case .pluginConfig: self = .pluginConfig(try PluginConfig(from: decoder))
        case .pluginChain: self = .pluginChain(try PluginChain(from: decoder))
        }
    }

    /// A resource of `kind` whose document may leave `kind` out (an API path gives it); a
    /// document of another kind fails to decode.
    public static func decode(_ kind: Kind, from data: Data, with decoder: JSONDecoder = JSONDecoder()) throws -> AnyResource {
        switch kind {
        case .droplet: .droplet(try decoder.decode(Droplet.self, from: data))
        case .vpc: .vpc(try decoder.decode(VPC.self, from: data))
        case .network: .network(try decoder.decode(Network.self, from: data))
        case .endpoint: .endpoint(try decoder.decode(Endpoint.self, from: data))
        case .pluginConfig: .pluginConfig(try decoder.decode(PluginConfig.self, from: data))
        case .pluginChain: .pluginChain(try decoder.decode(PluginChain.self, from: data))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .droplet(let r): try r.encode(to: encoder)
        case .vpc(let r): try r.encode(to: encoder)
        case .network(let r): try r.encode(to: encoder)
        case .endpoint(let r): try r.encode(to: encoder)
        case .pluginConfig(let r): try r.encode(to: encoder)
        case .pluginChain(let r): try r.encode(to: encoder)
        }
    }
}

/// A reference to a resource to delete: what `DELETE` and `mizarctl delete -f` name.
public struct ResourceReference: Codable, Sendable, Hashable, CustomStringConvertible {
    public var kind: Kind
    public var name: String

    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    public var description: String { "\(kind.rawValue)/\(name)" }
}

extension AnyResource {
    public var reference: ResourceReference { ResourceReference(kind: kind, name: name) }
}

/// The body of `POST /v1/apply`: resources to create or replace and resources to delete,
/// validated together and written in one transaction (all or nothing).
public struct ApplyRequest: Codable, Sendable, Hashable {
    public var apply: [AnyResource]
    public var delete: [ResourceReference]

    public init(apply: [AnyResource] = [], delete: [ResourceReference] = []) {
        self.apply = apply
        self.delete = delete
    }

    enum CodingKeys: String, CodingKey { case apply, delete }

    /// Either list may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apply = try c.decodeIfPresent([AnyResource].self, forKey: .apply) ?? []
        delete = try c.decodeIfPresent([ResourceReference].self, forKey: .delete) ?? []
    }
}

/// What an apply did, per resource: `created`, `configured`, `unchanged` or `deleted`
/// (a delete of something already gone is `unchanged`).
public struct ApplyResult: Codable, Sendable, Hashable {
    public struct Item: Codable, Sendable, Hashable {
        public var reference: ResourceReference
        public var action: String

        public init(reference: ResourceReference, action: String) {
            self.reference = reference
            self.action = action
        }
    }

    public var items: [Item]
    public init(items: [Item]) { self.items = items }
}
