import MizarAPI

/// A failure reported to the runtime as the spec's error JSON (`code`, `msg`, `details`).
/// Codes 1-99 are the spec's (CNI 1.1.0, "Error"); each case says when `mizar` uses it.
public struct CNIError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: UInt, Sendable, CaseIterable {
        /// The configuration's or prevResult's `cniVersion` is not one `mizar` speaks, or the
        /// command does not exist in it (CHECK before 0.4.0, GC and STATUS before 1.1.0).
        case incompatibleVersion = 1
        /// A configuration key `mizar` does not know (a typo would otherwise be ignored).
        case unsupportedField = 2
        /// CHECK of an attachment transitd does not hold, or whose interface is gone.
        case unknownContainer = 3
        /// A missing or malformed `CNI_*` variable.
        case invalidEnvironment = 4
        /// stdin could not be read, or a delegated IPAM plugin could not be run.
        case ioFailure = 5
        /// stdin (or prevResult) is not JSON of the expected shape.
        case decodingFailure = 6
        /// The configuration is well formed but wrong: no such network, VPC mismatch, a bad address.
        case invalidConfig = 7
        /// Transient: transitd did not answer, or the network has no free address now.
        case tryAgainLater = 11
        /// STATUS: transitd is not reachable, ADDs cannot be served.
        case notAvailable = 50
        /// STATUS: transitd answers but its data plane is not in place: existing containers
        /// may have limited connectivity.
        case limitedConnectivity = 51
        /// Anything else (the spec reserves 100+ for plugins).
        case `internal` = 100
    }

    public var code: Code
    public var message: String
    public var details: String

    public init(_ code: Code, _ message: String, details: String = "") {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "CNI error \(code.rawValue): \(message)\(details.isEmpty ? "" : " (\(details))")" }

    /// The spec's error object for `cniVersion`.
    public func json(cniVersion: String) -> JSONValue {
        var object: [String: JSONValue] = ["cniVersion": .string(cniVersion), "code": .number(Double(code.rawValue)), "msg": .string(message)]
        if !details.isEmpty { object["details"] = .string(details) }
        return .object(object)
    }
}

extension CNIError {
    /// How an error from transitd's API reads to a runtime.
    static func from(_ error: APIError, doing what: String) -> CNIError {
        switch APIError.Code(rawValue: error.code) {
        case .exhausted, .unavailable: CNIError(.tryAgainLater, "\(what): \(error.message)")
        case .invalid, .badRequest, .notFound, .conflict: CNIError(.invalidConfig, "\(what): \(error.message)")
        default: CNIError(.internal, "\(what): \(error.message)", details: error.code)
        }
    }
}
