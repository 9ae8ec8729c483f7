import Foundation

/// A directory of third-party plugins: each is a descriptor `<name>.plugin.yaml` (or
/// `.plugin.json`) beside its BPF object. Dropping both in is all it takes; nothing is rebuilt.
public struct PluginDirectory: Sendable {
    public static let defaultPath = "/etc/mizar/plugins"
    public let path: String

    public init(_ path: String = PluginDirectory.defaultPath) {
        self.path = path
    }

    /// The descriptors found, by file name; a file that does not parse is reported, not skipped silently.
    public func scan() -> (descriptors: [PluginDescriptor], errors: [PluginError]) {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        var descriptors: [PluginDescriptor] = [], errors: [PluginError] = []
        for file in files.sorted() where file.hasSuffix(".plugin.yaml") || file.hasSuffix(".plugin.json") {
            do { descriptors.append(try PluginDescriptor(contentsOf: path + "/" + file)) } catch let error as PluginError {
                errors.append(error)
            } catch {
                errors.append(PluginError(.invalidDescriptor, plugin: file, "\(error)"))
            }
        }
        return (descriptors, errors)
    }
}

extension PluginChains {
    /// Registers every plugin of `directory` that is not registered yet. Returns the names
    /// registered and the errors of the others (each refused plugin changes nothing).
    @discardableResult
    public func discover(in directory: PluginDirectory) -> (registered: [String], errors: [PluginError]) {
        let (found, parseErrors) = directory.scan()
        var errors = parseErrors, registered: [String] = []
        let known = Set(descriptors.map(\.name))
        for descriptor in found where !known.contains(descriptor.name) {
            do {
                try register(descriptor)
                registered.append(descriptor.name)
            } catch let error as PluginError {
                errors.append(error)
            } catch {
                errors.append(PluginError(.system, plugin: descriptor.name, "\(error)"))
            }
        }
        return (registered, errors)
    }
}
