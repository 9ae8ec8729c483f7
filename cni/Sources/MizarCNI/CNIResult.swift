#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MizarAPI

/// A plugin result (spec: "Success"), kept as its JSON objects so that what an earlier
/// plugin put in a chain's `prevResult` passes through unchanged, and written out in the
/// shape of the version the runtime asked for.
public struct CNIResult: Sendable, Hashable {
    public var interfaces: [[String: JSONValue]] = []
    public var ips: [[String: JSONValue]] = []
    public var routes: [[String: JSONValue]] = []
    public var dns: JSONValue?

    public init() {}

    /// Reads a result of any supported version (a chain's `prevResult`, a delegated IPAM's
    /// output); with `cniVersion`, the result must say that version.
    public init(_ value: JSONValue, cniVersion: CNIVersion?) throws(CNIError) {
        guard case .object(let object) = value else { throw CNIError(.decodingFailure, "a result must be a JSON object") }
        if case .string(let version)? = object["cniVersion"], let cniVersion {
            let parsed = try CNIVersion.parse(version, field: "the result's cniVersion")
            // Spec: prevResult is in the configuration's version.
            guard parsed == cniVersion else {
                throw CNIError(.incompatibleVersion, "prevResult has cniVersion \(version) but the configuration \(cniVersion.rawValue)")
            }
        }
        interfaces = try Self.objects(object["interfaces"], "interfaces")
        ips = try Self.objects(object["ips"], "ips")
        routes = try Self.objects(object["routes"], "routes")
        for ip in ips {
            guard case .string(let address)? = ip["address"], IPv4Interface(address) != nil || address.contains(":") else {
                throw CNIError(.decodingFailure, "an IP of the result has no address in CIDR form", details: NetConf.text(.object(ip)))
            }
        }
        dns = object["dns"]
    }

    /// The first IPv4 address in the result and its gateway, if any.
    public var firstIPv4: (address: IPv4Interface, gateway: IPv4Address?)? {
        for ip in ips {
            if case .string(let text)? = ip["address"], let address = IPv4Interface(text) {
                var gateway: IPv4Address?
                if case .string(let g)? = ip["gateway"] { gateway = IPv4Address(g) }
                return (address, gateway)
            }
        }
        return nil
    }

    /// The result as `version` shapes it: before 1.0.0 every IP says `version`, before 1.1.0
    /// interfaces carry no `mtu`.
    public func json(_ version: CNIVersion) -> JSONValue {
        let shapedIPs = ips.map { ip -> JSONValue in
            var ip = ip
            if version.ipsCarryVersion {
                if ip["version"] == nil, case .string(let address)? = ip["address"] { ip["version"] = .string(address.contains(":") ? "6" : "4") }
            } else {
                ip["version"] = nil
            }
            return .object(ip)
        }
        let shapedInterfaces = interfaces.map { i -> JSONValue in
            var i = i
            if !version.interfacesCarryMTU { i["mtu"] = nil }
            return .object(i)
        }
        var object: [String: JSONValue] = ["cniVersion": .string(version.rawValue)]
        if !shapedInterfaces.isEmpty { object["interfaces"] = .array(shapedInterfaces) }
        object["ips"] = .array(shapedIPs)
        if !routes.isEmpty { object["routes"] = .array(routes.map { .object($0) }) }
        object["dns"] = dns ?? .object([:])
        return .object(object)
    }

    private static func objects(_ value: JSONValue?, _ field: String) throws(CNIError) -> [[String: JSONValue]] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else { throw CNIError(.decodingFailure, "the result's \(field) must be a list") }
        var out: [[String: JSONValue]] = []
        for item in items {
            guard case .object(let o) = item else { throw CNIError(.decodingFailure, "the result's \(field) holds a non-object") }
            out.append(o)
        }
        return out
    }
}
