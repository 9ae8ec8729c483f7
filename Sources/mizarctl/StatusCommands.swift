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

struct CountersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "counters", abstract: "The data plane's counters: transit XDP, the agents, each plugin of each chain (zeros left out).")

    @Option(name: .shortAndLong, help: "table or json.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            let counters = try await client.counters()
            guard output == .table else { return try printJSON(counters) }
            var rows: [[String]] = []
            for (slot, c) in counters.transit.sorted(by: { $0.key < $1.key }) { rows.append(["transit", slot, "\(c.packets)", "\(c.bytes)"]) }
            for (slot, c) in counters.agent.sorted(by: { $0.key < $1.key }) { rows.append(["agent", slot, "\(c.packets)", "\(c.bytes)"]) }
            for (hook, plugins) in counters.plugins.sorted(by: { $0.key < $1.key }) {
                for (plugin, verdicts) in plugins.sorted(by: { $0.key < $1.key }) {
                    for (verdict, c) in verdicts.sorted(by: { $0.key < $1.key }) { rows.append(["\(hook)/\(plugin)", verdict, "\(c.packets)", "\(c.bytes)"]) }
                }
            }
            printTable(["WHERE", "COUNTER", "PACKETS", "BYTES"], rows)
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
