import ArgumentParser
import Foundation
import MizarPluginSDK

struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin", abstract: "Plugins of the data plane's chains (docs/plugins.md).", subcommands: [PluginCheckCommand.self])
}

/// Checks a third-party plugin the way a droplet would before enabling it.
struct PluginCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a plugin: its descriptor, its object against it (ABI version, programs, maps), and the verifier on both flavours.",
        discussion: """
            The plugin is loaded into a test chain (the SDK's harness), never into a live one.
            Prints what the plugin declares, or why it would be refused with the verifier's log.
            Exits non-zero when it would be refused. Needs root.
            """
    )

    @Argument(help: "The plugin's descriptor file (<name>.plugin.yaml); its object is looked up beside it.")
    var descriptor: String

    @OptionGroup var objects: BPFDirectoryOption

    func run() throws {
        do {
            let plugin = try PluginDescriptor(contentsOf: descriptor)
            let harness = try PluginHarness(locator: BPFObjectLocator(explicit: objects.bpfDir))
            try harness.chains.register(plugin)
            for hook in plugin.hooks { try harness.chains.setChain(hook, [plugin.name]) }
            print("ok: \(plugin.name) \(plugin.version) (plugin ABI \(plugin.abi))")
            print("  hooks: \(plugin.hooks.map(\.rawValue).joined(separator: ", ")), priority \(plugin.priority)")
            for map in plugin.maps { print("  map \(map.name): \(map.type), key \(map.keySize) B, value \(map.valueSize) B, \(map.maxEntries) entries") }
        } catch let error as PluginError {
            FileHandle.standardError.write(Data("refused: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
