#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MizarAPI
import NIOHTTP1

/// What `mizar` needs from transitd: the seam between the CNI commands and the daemon's API.
public protocol EndpointService {
    func health() throws(CNIError) -> Health
    func network(named name: String) throws(CNIError) -> Network?
    func networks() throws(CNIError) -> [Network]
    /// Creates the endpoint and returns it as stored, with its status; nil when one of that
    /// name exists (it is left as it is).
    func create(_ endpoint: Endpoint) throws(CNIError) -> Endpoint?
    func endpoint(named name: String) throws(CNIError) -> Endpoint?
    func endpoints() throws(CNIError) -> [Endpoint]
    /// Deletes the endpoint (its veth goes with it); one that does not exist is not an error.
    func deleteEndpoint(named name: String) throws(CNIError)
    /// transitd's look at the endpoint's interface inside its namespace; nil when there is no such endpoint.
    func check(endpoint name: String) throws(CNIError) -> EndpointCheck?
}

/// The service over transitd's Unix socket (`docs/api.md`).
public struct TransitdEndpoints: EndpointService {
    let http: TransitdHTTP

    public init(socket: String, timeoutSeconds: Int = 30) {
        http = TransitdHTTP(socket: socket, timeout: timeoutSeconds)
    }

    public func health() throws(CNIError) -> Health { try call(.GET, "/v1/health", "asking transitd's health", accept: [200, 503]) }

    public func network(named name: String) throws(CNIError) -> Network? {
        try call(.GET, "/v1/networks/\(name)", "looking up network \(name)", ifNotFound: { nil })
    }

    public func networks() throws(CNIError) -> [Network] { try call(.GET, "/v1/networks", "listing networks") }

    public func create(_ endpoint: Endpoint) throws(CNIError) -> Endpoint? {
        try call(.PUT, "/v1/endpoints/\(endpoint.name)", "plugging endpoint \(endpoint.name)", body: endpoint, headers: [("If-None-Match", "*")],
                 ifExists: { nil })
    }

    public func endpoint(named name: String) throws(CNIError) -> Endpoint? {
        try call(.GET, "/v1/endpoints/\(name)", "looking up endpoint \(name)", ifNotFound: { nil })
    }

    public func endpoints() throws(CNIError) -> [Endpoint] { try call(.GET, "/v1/endpoints", "listing endpoints") }

    public func deleteEndpoint(named name: String) throws(CNIError) {
        let _: ApplyResult? = try call(.DELETE, "/v1/endpoints/\(name)", "deleting endpoint \(name)", ifNotFound: { nil })
    }

    public func check(endpoint name: String) throws(CNIError) -> EndpointCheck? {
        try call(.GET, "/v1/endpoints/\(name)/check", "checking endpoint \(name)", ifNotFound: { nil })
    }

    private struct Empty: Encodable {}

    /// One call: names are resource names (`a-z0-9.-_`), so paths need no escaping. A 404
    /// gives `ifNotFound()` when set; transitd's errors become CNI ones.
    private func call<T: Decodable>(_ method: HTTPMethod, _ path: String, _ what: String, body: (some Encodable)? = Empty?.none,
                                    headers: [(String, String)] = [], accept: Set<Int> = [200, 201], ifNotFound: (() -> T)? = nil,
                                    ifExists: (() -> T)? = nil) throws(CNIError) -> T {
        let response: (status: Int, body: [UInt8])
        do {
            response = try http.exchange(method, path, body: try body.map { [UInt8](try JSONEncoder().encode($0)) }, headers: headers)
        } catch let error as TransitdHTTP.Unreachable {
            throw CNIError(.tryAgainLater, "\(what): \(error.description)")
        } catch {
            throw CNIError(.internal, "\(what): \(error)")
        }
        guard accept.contains(response.status) else {
            if response.status == 404, let ifNotFound { return ifNotFound() }
            if response.status == 412, let ifExists { return ifExists() }
            if let apiError = try? JSONDecoder().decode(APIError.self, from: Data(response.body)) { throw CNIError.from(apiError, doing: what) }
            throw CNIError(.internal, "\(what): HTTP \(response.status) from transitd", details: String(decoding: response.body.prefix(500), as: UTF8.self))
        }
        do { return try JSONDecoder().decode(T.self, from: Data(response.body)) } catch {
            throw CNIError(.internal, "\(what): transitd's answer did not decode", details: "\(error)")
        }
    }
}
