import CMizarABI
import Foundation
import MizarPluginSDK
import MizarTestSupport

/// Test plugins from Tests/bpf (build/bpf/tests), described for the SDK.
enum TestPlugins {
    static let directory = TestPaths.bpfDir + "/tests"

    /// The stamp test plugin under `name`: shifts its stamp nibble into the IPv4 ID.
    static func stamp(_ name: String, version: String = "1.0.0", priority: Int = 100, hooks: [PluginHook] = [.egress, .ingress]) -> PluginDescriptor {
        PluginDescriptor(name: name, version: version, object: "stamp_plugin.bpf.o", entry: "stamp_plugin", hooks: hooks, priority: priority,
                         maps: [PluginMapDescriptor(name: "stamp", type: "array", keySize: 4, valueSize: 4, maxEntries: 1)],
                         directory: directory)
    }

    struct Stamp: PluginConfiguration {
        var value: UInt32
        func validate() throws {
            guard value <= 0xf else { throw PluginError(.invalidConfig, plugin: "stamp", "a stamp is one nibble") }
        }
        func mapEntries() throws -> [String: [PluginMapEntry]] { ["stamp": [PluginMapEntry(UInt32(0), value)]] }
    }

    /// Registers stamps named by their nibble ("a" stamps 0xa) on `chains`.
    static func registerStamps(_ names: [String], on chains: PluginChains) throws {
        for name in names {
            try chains.register(stamp(name))
            try chains.configure(name, Stamp(value: UInt32(name, radix: 16)!))
        }
    }
}

/// The IPv4 identification of an Ethernet/IPv4 frame.
func ipID(_ frame: [UInt8]) -> UInt16 { UInt16(frame[18]) << 8 | UInt16(frame[19]) }

let client = IPv4Address(10, 0, 1, 2), server = IPv4Address(10, 0, 1, 3)
let udpFrame = PacketBuilder.udpFrame(src: client, dst: server, sourcePort: 1000, destinationPort: 2000, payload: [1, 2, 3, 4])
