import ArgumentParser
import Foundation
import MizarAPI
import MizarClient
import Yams

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "transitd's droplet, what it holds, its chains and its health.")

    @Option(name: .shortAndLong, help: "table, json or yaml.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            let status = try await client.status()
            switch output {
            case .json: try printJSON(status)
            case .yaml: print(try YAMLEncoder().encode(status), terminator: "")
            case .table:
                let d = status.droplet
                print("transitd \(status.version)")
                print("droplet    \(d.name)  \(d.spec.ip)  \(d.spec.mac)  on \(d.status?.interface ?? "?") (xdp \(d.status?.xdpMode ?? "?"), mtu \(d.status?.mtu.map(String.init) ?? "?"))")
                print("resources  " + Kind.allCases.map { "\($0.path) \(status.resources[$0.rawValue] ?? 0)" }.joined(separator: ", "))
                print("plugged    \(status.localEndpoints) endpoints")
                for (hook, plugins) in status.chains.sorted(by: { $0.key < $1.key }) {
                    print("chain      \(hook): \(plugins.isEmpty ? "(none)" : plugins.joined(separator: " -> "))")
                }
                print("health     \(status.health.healthy ? "healthy" : "UNHEALTHY")")
                for (check, finding) in status.health.checks.sorted(by: { $0.key < $1.key }) { print("  \(check): \(finding)") }
            }
            if !status.health.healthy { throw ExitCode(1) }
        }
    }
}

/// One counter of `mizarctl counters --rates -o json`.
struct Rate: Encodable {
    var `where`: String
    var counter: String
    var packets: UInt64
    var bytes: UInt64
    var packetsPerSecond: Double
    var bytesPerSecond: Double
}

struct CountersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "counters",
        abstract: "The data plane's counters: transit XDP, the agents, each plugin of each chain, each local endpoint (zeros left out).",
        discussion: "With --rates, two samples --interval apart give packets and bytes per second. Prometheus scrapes the same at transitd's /metrics (docs/observability.md).")

    @Option(name: .shortAndLong, help: "table or json.") var output: OutputFormat = .table
    @Flag(help: "Add packets/s and bytes/s (two samples --interval apart).") var rates = false
    @Option(help: "Seconds between the samples of --rates.") var interval: Double = 1
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if !(0.1...60).contains(interval) { throw ValidationError("--interval takes 0.1 to 60 seconds") }
    }

    /// Every counter as (where, counter) -> value.
    static func rows(_ c: Counters) -> [[String]: CounterValue] {
        var rows: [[String]: CounterValue] = [:]
        for (slot, v) in c.transit { rows[["transit", slot]] = v }
        for (slot, v) in c.agent { rows[["agent", slot]] = v }
        for (hook, plugins) in c.plugins {
            for (plugin, verdicts) in plugins { for (verdict, v) in verdicts { rows[["\(hook)/\(plugin)", verdict]] = v } }
        }
        for (endpoint, counters) in c.endpoints ?? [:] { for (name, v) in counters { rows[["endpoint/\(endpoint)", name]] = v } }
        return rows
    }

    func run() async throws {
        try await withClient(connection) { client in
            let first = try await client.counters()
            guard rates else {
                guard output == .table else { return try printJSON(first) }
                printTable(["WHERE", "COUNTER", "PACKETS", "BYTES"],
                           Self.rows(first).sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { $0.key + ["\($0.value.packets)", "\($0.value.bytes)"] })
                return
            }
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            let second = try await client.counters()
            let before = Self.rows(first)
            let rates = Self.rows(second).sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { key, v -> Rate in
                let was = before[key] ?? CounterValue(packets: 0, bytes: 0)
                // A counter that went down was reset (a map made anew): count from zero.
                func per(_ now: UInt64, _ then: UInt64) -> Double { Double(now >= then ? now - then : now) / interval }
                return Rate(where: key[0], counter: key[1], packets: v.packets, bytes: v.bytes,
                            packetsPerSecond: per(v.packets, was.packets), bytesPerSecond: per(v.bytes, was.bytes))
            }
            guard output == .table else { return try printJSON(rates) }
            printTable(["WHERE", "COUNTER", "PACKETS", "BYTES", "PACKETS/S", "BYTES/S"], rates.map {
                [$0.where, $0.counter, "\($0.packets)", "\($0.bytes)", String(format: "%.1f", $0.packetsPerSecond), String(format: "%.1f", $0.bytesPerSecond)]
            })
        }
    }
}

struct ChainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain", abstract: "The plugin chains of the egress and ingress hooks (docs/plugins.md).",
        subcommands: [ChainShowCommand.self, ChainSetCommand.self, ChainConfigCommand.self])
}

struct ChainShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Each hook's chain, in the order frames cross it.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            let chains = try await client.status().chains
            printTable(["HOOK", "PLUGINS"], chainHooks.map { [$0, (chains[$0] ?? []).joined(separator: ",")] })
        }
    }
}

struct ChainSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a hook's chain: built beside the live one and switched in one atomic update.",
        discussion: "Example: mizarctl chain set ingress acl,shaper   (an empty list \"\" removes the chain)")

    @Argument(help: "egress, ingress or transit (a divider's inter-network frames).") var hook: String
    @Argument(help: "Plugin names, comma separated, in order.") var plugins: String
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard chainHooks.contains(hook) else { throw ValidationError("the hook is egress, ingress or transit") }
    }

    func run() async throws {
        let names = plugins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        try await withClient(connection) { client in
            _ = try await client.put(.pluginChain(PluginChain(name: hook, spec: PluginChainSpec(plugins: names))))
            print("chain \(hook): \(names.isEmpty ? "(none)" : names.joined(separator: " -> "))")
        }
    }
}

struct ChainConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Configure a plugin from a file holding its configuration (YAML or JSON; docs/plugins.md).")

    @Argument(help: "The plugin.") var plugin: String
    @Option(name: .shortAndLong, help: "The configuration file, or - for standard input.") var filename: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            let text = filename == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                : try String(contentsOfFile: filename, encoding: .utf8)
            let config = try Manifests.value(text, source: filename)
            _ = try await client.put(.pluginConfig(PluginConfig(name: plugin, spec: PluginConfigSpec(config: config))))
            print("plugin \(plugin) configured")
        }
    }
}

/// `mizarctl crds`: the Kubernetes CRDs of the API's kinds, from the types this build has.
struct CRDsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crds", abstract: "Print (or write) Kubernetes CustomResourceDefinitions of Mizar's kinds.",
        discussion: "For clusters that keep Mizar's objects in Kubernetes (group mizar.com, version v1). deploy/crds/ holds these files.")

    @Option(name: [.customShort("o"), .long], help: "Write one file per kind into this directory instead of printing.")
    var outputDirectory: String?

    func run() throws {
        for kind in Kind.allCases {
            let yaml = try CustomResourceDefinitions.yaml(kind)
            if let dir = outputDirectory {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try yaml.write(toFile: dir + "/" + CustomResourceDefinitions.fileName(kind), atomically: true, encoding: .utf8)
            } else {
                print("---\n" + yaml, terminator: "")
            }
        }
    }
}
