import MizarAddresses

/// The API group and version of every resource: manifests, API bodies and `mizarctl get -o yaml` share it.
public let apiVersion = "mizar.com/v1"

/// The release of Mizar's tools (transitd, mizarctl) built from this tree.
public let mizarVersion = "0.4.0"

/// The kinds of resource transitd keeps as desired state.
public enum Kind: String, Codable, Sendable, CaseIterable, Comparable {
    case droplet = "Droplet"
    case vpc = "VPC"
    case network = "Network"
    case endpoint = "Endpoint"
    case pluginConfig = "PluginConfig"
    case pluginChain = "PluginChain"

    /// The plural path segment under `/v1` (`/v1/vpcs/NAME`).
    public var path: String {
        switch self {
        case .droplet: "droplets"
        case .vpc: "vpcs"
        case .network: "networks"
        case .endpoint: "endpoints"
        case .pluginConfig: "pluginconfigs"
        case .pluginChain: "chains"
        }
    }

    /// Parses what a user types: `vpc`, `VPC`, `vpcs`, `endpoint`, `ep`, ...
    public init?(argument text: String) {
        let t = text.lowercased()
        let aliases: [String: Kind] = ["ep": .endpoint, "eps": .endpoint, "net": .network, "nets": .network, "chain": .pluginChain]
        if let kind = aliases[t] ?? Kind.allCases.first(where: { $0.rawValue.lowercased() == t || $0.path == t }) {
            self = kind
        } else {
            return nil
        }
    }

    /// The order in which an apply writes kinds: what others refer to comes first.
    public var order: Int {
        switch self {
        case .droplet: 0
        case .vpc: 1
        case .network: 2
        case .endpoint: 3
        case .pluginConfig: 4
        case .pluginChain: 5
        }
    }
    public static func < (a: Kind, b: Kind) -> Bool { a.order < b.order }
}

/// A resource's name and bookkeeping.
public struct ObjectMeta: Codable, Sendable, Hashable {
    /// Unique within its kind: 1-253 characters of `a-z`, `0-9`, `-`, `.` and `_`, starting and
    /// ending with a letter or digit.
    public var name: String
    /// Free-form labels; transitd keeps them and does not interpret them (an endpoint whose spec
    /// is unchanged keeps the CNI plugin's `cni.mizar.com/*` labels when a request leaves them out).
    public var labels: [String: String]?

    public init(name: String, labels: [String: String]? = nil) {
        self.name = name
        self.labels = labels
    }

    /// Nil when `name` is acceptable, else why not.
    public static func problem(with name: String) -> String? {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= 253 else { return "a name has 1 to 253 characters" }
        func alphanumeric(_ c: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) }
        guard utf8.allSatisfy({ alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") }) else {
            return "name \"\(name)\" may hold only a-z, 0-9, '-', '.' and '_'"
        }
        guard alphanumeric(utf8.first!), alphanumeric(utf8.last!) else { return "name \"\(name)\" must start and end with a letter or digit" }
        return nil
    }
}

/// What a resource's spec declares: its kind and the status transitd reports beside it.
public protocol ResourceSpec: Codable, Sendable, Hashable {
    associatedtype Status: Codable, Sendable, Hashable = NoStatus
    static var kind: Kind { get }
}

/// The status of kinds that report none.
public struct NoStatus: Codable, Sendable, Hashable {}

/// One resource in Kubernetes form: `apiVersion`, `kind`, `metadata`, `spec`, and the
/// `status` transitd fills in when it returns one (ignored in requests).
public struct Resource<Spec: ResourceSpec>: Codable, Sendable, Hashable {
    public var apiVersion: String
    public var kind: Kind
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Spec.Status?

    public init(name: String, labels: [String: String]? = nil, spec: Spec, status: Spec.Status? = nil) {
        apiVersion = MizarAPI.apiVersion
        kind = Spec.kind
        metadata = ObjectMeta(name: name, labels: labels)
        self.spec = spec
        self.status = status
    }

    public var name: String { metadata.name }
    public var reference: ResourceReference { ResourceReference(kind: Spec.kind, name: metadata.name) }

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? MizarAPI.apiVersion
        guard apiVersion == MizarAPI.apiVersion else {
            throw DecodingError.dataCorruptedError(forKey: .apiVersion, in: c, debugDescription: "apiVersion \(apiVersion) is not \(MizarAPI.apiVersion)")
        }
        kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? Spec.kind
        guard kind == Spec.kind else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "kind \(kind.rawValue) where \(Spec.kind.rawValue) was expected")
        }
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        spec = try c.decode(Spec.self, forKey: .spec)
        status = try c.decodeIfPresent(Spec.Status.self, forKey: .status)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(apiVersion, forKey: .apiVersion)
        try c.encode(kind, forKey: .kind)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(spec, forKey: .spec)
        try c.encodeIfPresent(status, forKey: .status)
    }
}

public typealias Droplet = Resource<DropletSpec>
public typealias VPC = Resource<VPCSpec>
public typealias Network = Resource<NetworkSpec>
public typealias Endpoint = Resource<EndpointSpec>
public typealias PluginConfig = Resource<PluginConfigSpec>
public typealias PluginChain = Resource<PluginChainSpec>
