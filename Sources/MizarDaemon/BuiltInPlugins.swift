import Foundation
import MizarACL
import MizarAPI
import MizarLB
import MizarNAT
import MizarPlugins
import MizarShaper

/// A plugin compiled into transitd: its descriptor and how its configuration decodes.
struct BuiltInPlugin: Sendable {
    let descriptor: PluginDescriptor
    let decode: @Sendable (Data) throws -> any PluginConfiguration

    init<Config: PluginConfiguration & Decodable>(_ descriptor: PluginDescriptor, _ config: Config.Type) {
        self.descriptor = descriptor
        decode = { try JSONDecoder().decode(Config.self, from: $0) }
    }

    static let all: [String: BuiltInPlugin] = Dictionary(uniqueKeysWithValues: [
        BuiltInPlugin(ACL.descriptor, ACL.Config.self),
        BuiltInPlugin(NAT.descriptor, NAT.Config.self),
        BuiltInPlugin(LB.descriptor, LB.Config.self),
        BuiltInPlugin(Shaper.descriptor, Shaper.Config.self),
    ].map { ($0.descriptor.name, $0) })
}

/// The catalog admission checks against: the plugins registered with the droplet's chains,
/// with typed configurations for the built-ins.
struct LivePluginCatalog: PluginCatalog {
    let chains: PluginChains

    func hooks(of plugin: String) -> [String]? {
        chains.descriptors.first { $0.name == plugin }?.hooks.map(\.rawValue)
    }

    func check(config: JSONValue, of plugin: String) throws {
        _ = try LivePluginCatalog.configuration(config, of: plugin)
    }

    /// The typed configuration of a built-in plugin, validated.
    static func configuration(_ config: JSONValue, of plugin: String) throws -> any PluginConfiguration {
        guard let builtIn = BuiltInPlugin.all[plugin] else {
            throw APIError(.invalid, "plugin \(plugin) is not built in: its configuration cannot be set through the API yet")
        }
        let typed: any PluginConfiguration
        do {
            typed = try builtIn.decode(try JSONEncoder().encode(config))
        } catch let error as DecodingError {
            throw APIError(.invalid, "configuration of \(plugin): \(error.summary)")
        }
        do {
            try typed.validate()
        } catch let error as PluginError {
            throw APIError(.invalid, "configuration of \(plugin): \(error.message)")
        }
        return typed
    }
}
