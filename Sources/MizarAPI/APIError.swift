/// The one error shape of the API: every 4xx and 5xx body is this JSON.
public struct APIError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable code (see `Code`).
    public var code: String
    /// What went wrong, for a person.
    public var message: String
    /// Optional specifics: the field, the conflicting resource, ...
    public var details: [String: String]?

    public init(_ code: Code, _ message: String, details: [String: String]? = nil) {
        self.code = code.rawValue
        self.message = message
        self.details = details
    }

    public var description: String { "\(code): \(message)" }

    /// The codes and the HTTP status each maps to.
    public enum Code: String, Sendable, CaseIterable {
        /// The body is not valid JSON or not the expected resource (400).
        case badRequest
        /// A field is out of range or inconsistent (422).
        case invalid
        /// Nothing by that name (404).
        case notFound
        /// Refers to or collides with another resource (409).
        case conflict
        /// A pool has nothing left to give, such as a network with no free address (409).
        case exhausted
        /// A create-only request (`If-None-Match: *`) found the resource there (412).
        case exists
        /// Body over the limit (413).
        case tooLarge
        /// No or wrong bearer token (401).
        case unauthorized
        /// The data plane refused the change; nothing was kept (500).
        case dataplane
        /// Anything else (500).
        case `internal`
        /// The cluster store (etcd) cannot be reached; nothing was changed, try again (503).
        case unavailable

        public var httpStatus: Int {
            switch self {
            case .badRequest: 400
            case .invalid: 422
            case .notFound: 404
            case .conflict, .exhausted: 409
            case .exists: 412
            case .tooLarge: 413
            case .unauthorized: 401
            case .dataplane, .internal: 500
            case .unavailable: 503
            }
        }
    }
}
