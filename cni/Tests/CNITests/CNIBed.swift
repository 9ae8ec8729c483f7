import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport

/// One droplet running transitd, and `mizar` run as a runtime runs it: CNI_* variables,
/// the network configuration on stdin, the result or error JSON on stdout.
final class CNIBed {
    let lab: DaemonLab
    let host = "hosta"
    /// Where Debian's CNI plugins are (the delegated IPAM and chained plugins).
    static let debianPlugins = "/usr/lib/cni"

    init(droplets: [String] = ["hosta"]) throws { lab = try DaemonLab.running(droplets) }

    func teardown() { lab.teardown() }

    var socket: String { lab.host(host).socket }
    var client: MizarClient { lab.host(host).client }

    /// A network configuration for `mizar` (cniVersion, name, type, socket) with `extra` keys.
    func config(_ version: String = "1.1.0", name: String = "mizarnet", _ extra: [String: Any] = [:]) -> String {
        var object: [String: Any] = ["cniVersion": version, "name": name, "type": "mizar", "socket": socket]
        object.merge(extra) { $1 }
        return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// One call's outcome: the exit status and stdout as JSON (nil when empty).
    struct Call: CustomStringConvertible {
        var status: Int32
        var json: [String: Any]?
        var stdout: String
        var stderr: String
        /// The error code of a failed call.
        var code: Int? { json?["code"] as? Int }
        var description: String { "exit \(status): \(stdout)\(stderr.isEmpty ? "" : " stderr: \(stderr)")" }
    }

    /// Runs `mizar` with `command` for `container` (the namespace's path as CNI_NETNS).
    func cni(_ command: String, container: String = "", netns: String = "", ifName: String = "eth0", args: String = "", config: String,
             path: String = CNIBed.debianPlugins, environment: [String: String]? = nil) throws -> Call {
        let env = environment ?? ["CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns, "CNI_IFNAME": ifName,
                                  "CNI_ARGS": args, "CNI_PATH": path]
        let result = try runCommand([Binaries.mizar], environment: env, input: config)
        let json = result.output.isEmpty ? nil : (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any]
        return Call(status: result.status, json: json, stdout: result.output, stderr: result.error)
    }

    /// A container's network namespace, removed at teardown.
    func container(_ name: String) throws -> Netns { try lab.endpointNamespace(name) }

    /// The endpoints transitd holds.
    func endpoints() async throws -> [Endpoint] {
        try await client.list(.endpoint).compactMap { if case .endpoint(let e) = $0 { e } else { nil } }
    }

    /// veths transitd made (alias `mizar:`) in the droplet's namespace, once those a DEL
    /// retired are deleted (transitd does that in the background, in tens of milliseconds).
    func endpointVeths() throws -> [String] {
        try lab.awaitRetiredVeths(host, timeout: 10)
        return try RouteSocket(in: lab.host(host).netns).links().filter { $0.alias?.hasPrefix("mizar:") == true }.map(\.name).sorted()
    }

    /// Endpoint entries in the droplet's kernel table (bpftool).
    func kernelEndpointEntries() throws -> Int {
        let dump = try runCommand(["bpftool", "-j", "map", "dump", "pinned", lab.pins(host) + "/maps/endpoints"])
        return ((try? JSONSerialization.jsonObject(with: Data(dump.output.utf8))) as? [Any])?.count ?? -1
    }

    /// The first IP of a result, without its prefix.
    static func address(_ result: [String: Any]?) -> String? {
        ((result?["ips"] as? [[String: Any]])?.first?["address"] as? String)?.split(separator: "/").first.map(String.init)
    }
}
