import ArgumentParser
import Foundation
import MizarPluginSDK
import Yams

struct PluginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin", abstract: "Plugins of the data plane's chains (docs/plugins.md).",
        subcommands: [PluginListCommand.self, PluginDescribeCommand.self, PluginNewCommand.self, PluginBuildCommand.self, PluginCheckCommand.self])
}

struct PluginListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The plugins transitd has registered (built-in and discovered).")
    @Option(name: .shortAndLong, help: "table, json or yaml.") var output: OutputFormat = .table
    @Flag(name: .long, help: "First scan transitd's plugin directory for new third-party plugins.") var discover = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            if discover {
                let found = try await client.discoverPlugins()
                for name in found.registered { print("registered \(name)") }
                for error in found.errors { printError("refused: \(error)") }
            }
            let plugins = try await client.plugins()
            switch output {
            case .json: try printJSON(plugins)
            case .yaml: print(try YAMLEncoder().encode(plugins), terminator: "")
            case .table:
                printTable(["NAME", "VERSION", "HOOKS", "PRIORITY", "BUILT-IN", "ACTIVE IN"],
                           plugins.map { [$0.name, $0.version, $0.hooks.joined(separator: ","), "\($0.priority)", $0.builtIn ? "yes" : "no",
                                          $0.activeIn.joined(separator: ",")] })
            }
        }
    }
}

struct PluginDescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "One registered plugin: version, ABI, hooks, maps, where it is active.")
    @Argument(help: "The plugin.") var name: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in print(try YAMLEncoder().encode(try await client.plugin(name)), terminator: "") }
    }
}

/// Checks a third-party plugin the way a droplet would before enabling it.
struct PluginCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a plugin: its descriptor, its object against it (ABI version, programs, maps), and the verifier on both flavours.",
        discussion: """
            The plugin is loaded into a test chain (the SDK's harness), never into a live one.
            Prints what the plugin declares, or why it would be refused with the verifier's log.
            Exits 2 when it would be refused, 1 when its object is not found (every path tried is named). Needs root.
            """
    )

    @Argument(help: "The plugin's descriptor file (<name>.plugin.yaml); its object is looked up beside it, then in --bpf-dir and the other BPF object directories.")
    var descriptor: String

    @OptionGroup var objects: BPFDirectoryOption

    func run() throws {
        guard FileManager.default.fileExists(atPath: descriptor) else { throw failure("no descriptor file at \(descriptor)") }
        do {
            let plugin = try PluginDescriptor(contentsOf: descriptor)
            let harness = try PluginHarness(locator: BPFObjectLocator(explicit: objects.bpfDir))
            try harness.chains.register(plugin)
            for hook in plugin.hooks { try harness.chains.setChain(hook, [plugin.name]) }
            print("ok: \(plugin.name) \(plugin.version) (plugin ABI \(plugin.abi))")
            print("  object: \(harness.chains.objectPath(plugin.name) ?? plugin.object)")
            print("  hooks: \(plugin.hooks.map(\.rawValue).joined(separator: ", ")), priority \(plugin.priority)")
            for map in plugin.maps { print("  map \(map.name): \(map.type), key \(map.keySize) B, value \(map.valueSize) B, \(map.maxEntries) entries") }
            for (code, reason) in plugin.reasons.sorted(by: { $0.key < $1.key }) { print("  drop reason \(code): \(reason)") }
        } catch let error as PluginError where error.code == .objectNotFound {
            throw failure("\(error)") // not the plugin's fault: build it, or say where it is
        } catch let error as PluginError {
            FileHandle.standardError.write(Data("refused: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
