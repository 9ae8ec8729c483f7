import Foundation

/// A key and its value as etcd keeps them.
public struct EtcdKV: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]
    /// The revision of the key's creation and of its last change.
    public var createRevision: Int64
    public var modRevision: Int64
    public var lease: Int64

    public init(key: [UInt8], value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.lease = lease
    }

    public var keyString: String { String(decoding: key, as: UTF8.self) }

    /// proto3's JSON writes 64-bit integers as strings (and leaves out zeros).
    static func int64(_ value: Any?) -> Int64? {
        switch value {
        case let s as String: Int64(s)
        case let n as NSNumber: n.int64Value
        default: nil
        }
    }
}

/// Decoded as the JSON gateway writes a KeyValue: bytes in base64, 64-bit integers as strings, zeros left out.
extension EtcdKV: Decodable {
    private enum CodingKeys: String, CodingKey {
        case key, value, lease
        case createRevision = "create_revision", modRevision = "mod_revision"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decode(ProtoBytes.self, forKey: .key).bytes
        value = try c.decodeIfPresent(ProtoBytes.self, forKey: .value)?.bytes ?? []
        createRevision = try c.decodeIfPresent(ProtoInt64.self, forKey: .createRevision)?.value ?? 0
        modRevision = try c.decodeIfPresent(ProtoInt64.self, forKey: .modRevision)?.value ?? 0
        lease = try c.decodeIfPresent(ProtoInt64.self, forKey: .lease)?.value ?? 0
    }
}

/// A proto3 int64 in JSON: a string, or (from some encoders) a number.
struct ProtoInt64: Decodable {
    var value: Int64

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let number = try? c.decode(Int64.self) { value = number; return }
        guard let parsed = Int64(try c.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a 64-bit integer")
        }
        value = parsed
    }
}

/// proto3 bytes in JSON: base64.
struct ProtoBytes: Decodable {
    var bytes: [UInt8]

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        guard let data = Data(base64Encoded: try c.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not base64")
        }
        bytes = Array(data)
    }
}

/// A change a watch reports: a key put (created or changed) or deleted (then `kv.value` is empty).
public struct EtcdEvent: Sendable, Hashable {
    public enum Kind: Sendable { case put, delete }
    public var kind: Kind
    public var kv: EtcdKV

    public init(kind: Kind, kv: EtcdKV) {
        self.kind = kind
        self.kv = kv
    }

}

extension EtcdEvent: Decodable {
    private enum CodingKeys: String, CodingKey { case type, kv }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kv = try c.decode(EtcdKV.self, forKey: .kv)
        kind = try c.decodeIfPresent(String.self, forKey: .type) == "DELETE" ? .delete : .put
    }
}

/// What a range answers (only what is read of it).
struct RangeResponse: Decodable {
    var kvs: [EtcdKV]?
    var more: Bool?
}

/// One line of a watch stream: a result, or an error (kept whole for the message).
struct WatchMessage: Decodable {
    struct Header: Decodable { var revision: ProtoInt64? }
    struct Result: Decodable {
        var header: Header?
        var events: [EtcdEvent]?
        var compactRevision: ProtoInt64?
        var canceled: Bool?
        var cancelReason: String?

        enum CodingKeys: String, CodingKey {
            case header, events, canceled
            case compactRevision = "compact_revision", cancelReason = "cancel_reason"
        }
    }

    var result: Result?
}

/// A condition of a transaction.
public enum EtcdCompare: Sendable, Hashable, Encodable {
    /// The key was last changed at `revision` (0: the key does not exist).
    case modRevision(String, equals: Int64)
    /// The key holds exactly `value`.
    case value(String, equals: [UInt8])

    private enum CodingKeys: String, CodingKey {
        case key, target, result, value
        case modRevision = "mod_revision"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("EQUAL", forKey: .result)
        switch self {
        case .modRevision(let key, let revision):
            try c.encode(EtcdClient.b64(Array(key.utf8)), forKey: .key)
            try c.encode("MOD", forKey: .target)
            try c.encode(String(revision), forKey: .modRevision)
        case .value(let key, let value):
            try c.encode(EtcdClient.b64(Array(key.utf8)), forKey: .key)
            try c.encode("VALUE", forKey: .target)
            try c.encode(EtcdClient.b64(value), forKey: .value)
        }
    }
}

/// A write of a transaction.
public enum EtcdOperation: Sendable, Hashable, Encodable {
    /// Puts `value` under the key, bound to `lease` when it is not 0.
    case put(String, [UInt8], lease: Int64 = 0)
    case delete(String)

    private enum CodingKeys: String, CodingKey {
        case put = "request_put", delete = "request_delete_range"
    }

    private enum FieldKeys: String, CodingKey { case key, value, lease }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .put(let key, let value, let lease):
            var put = c.nestedContainer(keyedBy: FieldKeys.self, forKey: .put)
            try put.encode(EtcdClient.b64(Array(key.utf8)), forKey: .key)
            try put.encode(EtcdClient.b64(value), forKey: .value)
            if lease != 0 { try put.encode(String(lease), forKey: .lease) }
        case .delete(let key):
            var delete = c.nestedContainer(keyedBy: FieldKeys.self, forKey: .delete)
            try delete.encode(EtcdClient.b64(Array(key.utf8)), forKey: .key)
        }
    }
}

/// A transaction in proto3's JSON mapping: done (`success`) only when every `compare` holds.
struct TxnRequest: Encodable {
    var compare: [EtcdCompare]
    var success: [EtcdOperation]
}

/// What a `EtcdFollower` hands on: the whole prefix (at the start, and whenever the watch
/// cannot resume because history was compacted), or the changes since the last call.
public enum EtcdChange: Sendable {
    case snapshot([EtcdKV], revision: Int64)
    case events([EtcdEvent], revision: Int64)
}
