#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import MizarAPI

/// Runs the configuration's `ipam` plugin (e.g. Debian's `host-local`) the way the spec
/// delegates: the same configuration on stdin, the same variables but `CNI_COMMAND`.
/// A 1.1.0 configuration reaches it as 1.0.0: 1.1.0 changed nothing of ADD, CHECK and DEL
/// for IPAM, and the IPAM plugins of Debian 12 (CNI plugins 1.1) stop at 1.0.0.
struct DelegatedIPAM {
    let type: String
    let environment: CNIEnvironment
    let config: [String: JSONValue]

    /// ADD: the allocation's result.
    func add() throws(CNIError) -> CNIResult {
        let output = try run(.add, attachment: nil)
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(output)) } catch {
            throw CNIError(.decodingFailure, "ipam plugin \(type) printed no JSON result", details: String(decoding: output, as: UTF8.self))
        }
        return try CNIResult(value, cniVersion: nil)
    }

    /// DEL (also CHECK) for `attachment`, this invocation's own when nil.
    func call(_ command: CNICommand, attachment: Attachment? = nil) throws(CNIError) { _ = try run(command, attachment: attachment) }

    /// STATUS, asked only of a plugin whose VERSION lists 1.1.0 (the IPAM plugins of Debian 12
    /// predate the command and would answer that the version is unsupported).
    func status() throws(CNIError) {
        let versions = try run(.version, attachment: nil, lowering: false)
        guard case .object(let info)? = try? JSONDecoder().decode(JSONValue.self, from: Data(versions)),
              case .array(let supported)? = info["supportedVersions"], supported.contains(.string(CNIVersion.v1_1_0.rawValue)) else { return }
        _ = try run(.status, attachment: nil, lowering: false)
    }

    private func run(_ command: CNICommand, attachment: Attachment?, lowering: Bool = true) throws(CNIError) -> [UInt8] {
        guard let binary = environment.path.map({ $0 + "/" + type }).first(where: { access($0, X_OK) == 0 }) else {
            throw CNIError(.ioFailure, "ipam plugin \(type) not found in CNI_PATH", details: environment.path.isEmpty ? "CNI_PATH is empty" : environment.path.joined(separator: ":"))
        }
        var env = ProcessInfo.processInfo.environment
        env["CNI_COMMAND"] = command.rawValue
        if let attachment {
            env["CNI_CONTAINERID"] = attachment.containerID
            env["CNI_IFNAME"] = attachment.ifName
        }
        let input: [UInt8]
        var config = config
        if lowering, case .string(let v)? = config["cniVersion"], v == CNIVersion.v1_1_0.rawValue {
            config["cniVersion"] = .string(CNIVersion.v1_0_0.rawValue)
            if case .object(var prev)? = config["prevResult"] {
                prev["cniVersion"] = .string(CNIVersion.v1_0_0.rawValue)
                config["prevResult"] = .object(prev)
            }
        }
        do { input = [UInt8](try JSONEncoder().encode(JSONValue.object(config))) } catch { throw CNIError(.internal, "cannot encode the ipam configuration: \(error)") }
        let (status, output) = try Subprocess.run(binary, environment: env, input: input)
        guard status == 0 else {
            // Pass the plugin's own error on (its code and message), named as its.
            if case .object(let o)? = try? JSONDecoder().decode(JSONValue.self, from: Data(output)), case .number(let n)? = o["code"],
               case .string(let msg)? = o["msg"] {
                var details = ""
                if case .string(let d)? = o["details"] { details = d }
                throw CNIError(CNIError.Code(rawValue: UInt(n)) ?? .internal, "ipam plugin \(type): \(msg)", details: details)
            }
            throw CNIError(.ioFailure, "ipam plugin \(type) failed (exit status \(status))", details: String(decoding: output, as: UTF8.self))
        }
        return output
    }
}
