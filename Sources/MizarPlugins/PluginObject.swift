import CMizarABI
import Foundation
import MizarBPF

/// The maps every plugin object defines for the chain itself; a descriptor does not list them.
let chainMaps: Set<String> = [MZ_PLUGIN_CTX_MAP, MZ_PLUGIN_STATS_MAP, MZ_PLUGIN_CHAIN_MAP]
/// The trace ring and its lost-event count (trace.h): objects built with today's plugin.h
/// define them and share the host's; an older object has none and emits no events.
public let traceMaps: Set<String> = [MZ_TRACE_EVENTS_MAP, MZ_TRACE_LOST_MAP]

/// A registered plugin: its descriptor, where its object is, and the maps all its
/// instances share (configuration and state outlive chain changes).
final class RegisteredPlugin: @unchecked Sendable {
    let descriptor: PluginDescriptor
    let path: String
    private(set) var sharedMaps: [String: BPFMapHandle] = [:]

    var name: String { descriptor.name }

    /// - Parameter fallback: a descriptor read from a file may find its object in the BPF object
    ///   directories too (`plugin check --bpf-dir`, the SDK); a droplet takes only the one beside it.
    init(_ descriptor: PluginDescriptor, locator: BPFObjectLocator, fallback: Bool) throws {
        try descriptor.validate()
        self.descriptor = descriptor
        let tried = descriptor.directory.map { dir in locator.candidates(of: descriptor.object, first: [dir]).filter { fallback || $0.hasPrefix(dir + "/") } }
            ?? locator.candidates(of: descriptor.object)
        guard let found = tried.first(where: FileManager.default.fileExists(atPath:)) else {
            throw PluginError(.objectNotFound, plugin: descriptor.name,
                              "object \(descriptor.object) not found; tried \(tried.joined(separator: ", ")) (build it: mizarctl plugin build DIR)")
        }
        path = found
    }

    /// Opens the object and checks it against the descriptor: ABI version, entry programs, maps.
    func open() throws -> BPFObject {
        let object: BPFObject
        do { object = try BPFObject(path: path) } catch {
            throw PluginError(.objectMismatch, plugin: name, "cannot open \(path): \(error)")
        }
        let abi: UInt32
        do { abi = try object.global(MZ_PLUGIN_ABI_VAR) } catch {
            throw PluginError(.abiMismatch, plugin: name, "\(path) embeds no plugin ABI version (\(MZ_PLUGIN_ABI_VAR)): not built with mizar/plugin.h")
        }
        guard abi == descriptor.abi else {
            throw PluginError(.abiMismatch, plugin: name, "the object is built for plugin ABI \(abi), the descriptor says \(descriptor.abi)")
        }
        guard abi == UInt32(MZ_PLUGIN_ABI_VERSION) else {
            throw PluginError(.abiMismatch, plugin: name, "built for plugin ABI \(abi); this data plane speaks ABI \(MZ_PLUGIN_ABI_VERSION): rebuild the plugin")
        }
        for flavor in ProgramFlavor.allCases where !object.programNames.contains(flavor.program(of: descriptor.entry)) {
            throw PluginError(.objectMismatch, plugin: name, "no program \(flavor.program(of: descriptor.entry)) in \(descriptor.object): is MZ_PLUGIN(\(descriptor.entry)) in its source?")
        }
        let declared = object.declaredMaps
        for map in chainMaps where !declared.contains(where: { $0.name == map }) {
            throw PluginError(.objectMismatch, plugin: name, "map \(map) missing: not built with mizar/plugin.h")
        }
        let own = declared.filter { !chainMaps.contains($0.name) && !traceMaps.contains($0.name) }
        for spec in own {
            guard let want = descriptor.maps.first(where: { $0.name == spec.name }) else {
                throw PluginError(.objectMismatch, plugin: name, "the object defines map \(spec) that the descriptor does not declare")
            }
            guard want.matches(type: spec.type, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries: spec.maxEntries) else {
                throw PluginError(.objectMismatch, plugin: name, "map \(spec.name): the object has \(spec), the descriptor declares \(want.type), key \(want.keySize) B, value \(want.valueSize) B, \(want.maxEntries) entries")
            }
        }
        for want in descriptor.maps where !own.contains(where: { $0.name == want.name }) {
            throw PluginError(.objectMismatch, plugin: name, "the descriptor declares map \(want.name), the object has no such map")
        }
        return object
    }

    /// Loads one instance for `position` of a chain of `flavor` (only that flavour's program
    /// is loaded and verified). The first instance ever loaded creates the shared maps.
    /// With `pins`, the shared maps are pinned there when first created, and maps an earlier
    /// process pinned are taken over (state survives restarts; a map of another shape is
    /// replaced by a fresh one).
    func instance(flavor: ProgramFlavor, position: UInt32, slot: UInt32, chain: ProgramArray, host: PluginHost,
                  pins: BPFPinDirectory? = nil) throws -> (BPFObject, BPFProgram) {
        let entry = flavor.program(of: descriptor.entry)
        func configured() throws -> BPFObject {
            let object = try open()
            do {
                try object.setGlobal(MZ_PLUGIN_POSITION_VAR, to: position)
                try object.setGlobal(MZ_PLUGIN_SLOT_VAR, to: slot)
                for other in ProgramFlavor.allCases where other != flavor { try object.setAutoload(other.program(of: descriptor.entry), false) }
                try object.reuseMap(MZ_PLUGIN_CHAIN_MAP, from: chain.handle)
                try object.reuseMap(MZ_PLUGIN_CTX_MAP, from: host.context)
                try object.reuseMap(MZ_PLUGIN_STATS_MAP, from: host.stats)
                for (map, handle) in sharedMaps { try object.reuseMap(map, from: handle) }
                for (map, handle) in host.trace where object.mapNames.contains(map) { try object.reuseMap(map, from: handle) }
            } catch {
                throw PluginError(.objectMismatch, plugin: name, "\(error)")
            }
            return object
        }
        let object: BPFObject
        do {
            if let pins, sharedMaps.isEmpty {
                object = try BPFObject.loadPinned(in: pins, except: chainMaps.union(traceMaps), keepFitting: true, open: configured).object
            } else {
                object = try configured()
                try object.load()
            }
        } catch let error as PluginError {
            throw error
        } catch let error as BPFError where error.code == .verifierRejected {
            throw PluginError(.verifierRejected, plugin: name, "the verifier rejected \(entry): \(error.message)", log: error.log)
        } catch {
            throw PluginError(.system, plugin: name, "loading \(entry) failed: \(error)")
        }
        for map in descriptor.maps where sharedMaps[map.name] == nil { sharedMaps[map.name] = try object.map(named: map.name) }
        return (object, try object.program(named: entry))
    }

    /// Takes over the maps of an earlier version where they have the same shape (state survives upgrades).
    func inherit(from old: RegisteredPlugin) {
        for map in descriptor.maps {
            if let handle = old.sharedMaps[map.name],
               map.matches(type: handle.type, keySize: handle.keySize, valueSize: handle.valueSize, maxEntries: handle.maxEntries) {
                sharedMaps[map.name] = handle
            }
        }
    }

    /// A shared map, by name.
    func map(_ name: String) throws -> BPFMapHandle {
        guard let handle = sharedMaps[name] else {
            throw PluginError(.invalidConfig, plugin: self.name, "no map \(name); it has \(descriptor.maps.map(\.name).joined(separator: ", "))")
        }
        return handle
    }
}
