import ArgumentParser
import Foundation
import MizarAPI
import MizarClient

// `Kind(argument:)` (MizarAPI) already parses what users type: vpc, vpcs, VPC, ep, ...
extension Kind: ExpressibleByArgument {
    public static var allValueStrings: [String] { Kind.allCases.map { $0.rawValue.lowercased() } }
}

/// What `get` lists: a kind of resource, or the roles droplets hold.
enum GetTarget: ExpressibleByArgument {
    case resources(Kind)
    case bouncers, dividers

    init?(argument: String) {
        switch argument.lowercased() {
        case "bouncers", "bouncer": self = .bouncers
        case "dividers", "divider": self = .dividers
        default:
            guard let kind = Kind(argument: argument) else { return nil }
            self = .resources(kind)
        }
    }

    static var allValueStrings: [String] { Kind.allValueStrings + ["bouncers", "dividers"] }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "List resources of a kind, or show one; or where the bouncer and divider roles are.",
        discussion: """
            Kinds: droplet, vpc, network, endpoint, pluginconfig, chain (plurals and short forms such as ep and net work too). \
            `get bouncers [NETWORK]` and `get dividers [VPC]` list the droplets holding each role: in cluster mode, \
            whether each is live and which bouncers are still filling their tables (pending).
            """)

    @Argument(help: "The kind, or bouncers, or dividers.") var target: GetTarget
    @Argument(help: "A name; omitted, every resource of the kind.") var name: String?
    @Option(name: .shortAndLong, help: "table, json or yaml.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        guard case .resources(let kind) = target else { return try await roles() }
        try await withClient(connection) { client in
            let resources = if let name { [try await client.get(kind, name)] } else { try await client.list(kind) }
            switch output {
            case .json: if name == nil { try printJSON(resources) } else { try printJSON(resources[0]) }
            case .yaml: print(try Manifests.yaml(resources), terminator: "")
            case .table: printTable(ResourceTable.header(kind), resources.map(ResourceTable.row))
            }
        }
    }

    private func roles() async throws {
        func yes(_ flag: Bool?) -> String { flag.map { $0 ? "yes" : "no" } ?? "" }
        try await withClient(connection) { client in
            if case .bouncers = target {
                let roles = try await client.bouncers().filter { name == nil || $0.network == name }
                switch output {
                case .json, .yaml: try printJSON(roles)
                case .table:
                    printTable(["NETWORK", "DROPLET", "STATE", "LIVE", "LOCAL"],
                               roles.map { [$0.network, $0.droplet, $0.pending == true ? "pending" : "bouncing", yes($0.live), $0.local ? "yes" : ""] })
                }
            } else {
                let roles = try await client.dividers().filter { name == nil || $0.vpc == name }
                switch output {
                case .json, .yaml: try printJSON(roles)
                case .table: printTable(["VPC", "DROPLET", "LIVE", "LOCAL"], roles.map { [$0.vpc, $0.droplet, yes($0.live), $0.local ? "yes" : ""] })
                }
            }
        }
    }
}

struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "Show one resource whole: spec, defaults filled in, and status.")

    @Argument(help: "The kind.") var kind: Kind
    @Argument(help: "The name.") var name: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in print(try Manifests.yaml([try await client.get(kind, name)]), terminator: "") }
    }
}

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Create or update the resources of manifests (mizar.com/v1, YAML or JSON).",
        discussion: """
            Documents are applied in kind order (droplets, VPCs, networks, endpoints, plugin configs, chains), \
            in requests of under 1 MiB; each request is all or nothing. Examples: docs/examples/.
            """)

    @Option(name: .shortAndLong, help: "A file, a directory of .yaml/.yml/.json files, or - for standard input.") var filename: [String]
    @Option(name: .shortAndLong, help: "table, json or yaml: what was done to each resource.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            let resources = try filename.flatMap { try Manifests.load($0) }
            report(try await client.applyInChunks(resources), output)
        }
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a resource by kind and name, or the resources of manifests.",
        discussion: "Deleting what is already gone succeeds. A VPC with networks, a network with endpoints, or a droplet in use is refused.")

    @Argument(help: "The kind (without -f).") var kind: Kind?
    @Argument(help: "The name (without -f).") var name: String?
    @Option(name: .shortAndLong, help: "Manifests whose resources to delete (file, directory or -).") var filename: [String] = []
    @Option(name: .shortAndLong, help: "table, json or yaml.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard filename.isEmpty == (kind != nil && name != nil), filename.isEmpty || (kind == nil && name == nil) else {
            throw ValidationError("give KIND NAME, or -f FILE")
        }
    }

    func run() async throws {
        try await withClient(connection) { client in
            if let kind, let name {
                report(try await client.delete(kind, name), output)
            } else {
                let refs = try filename.flatMap { try Manifests.load($0) }.map(\.reference)
                report(try await client.applyInChunks([], deleting: refs), output)
            }
        }
    }
}

/// Prints what an apply or delete did.
func report(_ result: ApplyResult, _ output: OutputFormat) {
    switch output {
    case .json: try? printJSON(result)
    case .yaml: for item in result.items { print("- \(item.reference): \(item.action)") }
    case .table: for item in result.items { print("\(item.reference.kind.rawValue.lowercased())/\(item.reference.name) \(item.action)") }
    }
}

/// The columns `get` prints for each kind.
enum ResourceTable {
    static func header(_ kind: Kind) -> [String] {
        switch kind {
        case .droplet: ["NAME", "IP", "MAC", "LOCAL", "LIVE"]
        case .vpc: ["NAME", "VNI", "DIVIDERS"]
        case .network: ["NAME", "VPC", "CIDR", "GATEWAY", "BOUNCERS", "ENDPOINTS"]
        case .endpoint: ["NAME", "NETWORK", "IP", "MAC", "DROPLET", "INTERFACE", "AGENT"]
        case .pluginConfig: ["NAME", "CONFIG"]
        case .pluginChain: ["HOOK", "PLUGINS"]
        }
    }

    static func row(_ resource: AnyResource) -> [String] {
        switch resource {
        case .droplet(let r): [r.name, "\(r.spec.ip)", "\(r.spec.mac)", r.status?.local == true ? "yes" : "", r.status?.live.map { $0 ? "yes" : "no" } ?? ""]
        case .vpc(let r): [r.name, "\(r.spec.vni)", (r.spec.dividers ?? []).joined(separator: ",")]
        case .network(let r):
            [r.name, r.spec.vpc, "\(r.spec.cidr)", r.status.map { "\($0.gateway)" } ?? "", (r.spec.bouncers ?? []).joined(separator: ","),
             r.status.map { "\($0.endpoints)" } ?? ""]
        case .endpoint(let r):
            [r.name, r.spec.network, r.spec.ip.map { "\($0)" } ?? "", r.spec.mac.map { "\($0)" } ?? "", r.spec.droplet ?? "",
             r.spec.hostInterface ?? "", r.status?.attachment ?? (r.status?.local == true ? "not plugged" : "")]
        case .pluginConfig(let r):
            [r.name, String((try? String(decoding: JSONEncoder().encode(r.spec.config), as: UTF8.self))?.prefix(60) ?? "")]
        case .pluginChain(let r): [r.name, r.spec.plugins.joined(separator: ",")]
        }
    }
}
