import Foundation
import MizarPluginSDK
import PortGuardPlugin
import Testing

/// The plugin tested through the SDK alone: the kernel runs its object in a test chain
/// (`BPF_PROG_TEST_RUN`, root needed) on every hook and flavour it declares.
@Suite("port_guard plugin (SDK harness)")
struct PortGuardTests {
    let client = IPv4Address(10, 0, 1, 2), server = IPv4Address(10, 0, 1, 3)

    /// The plugin's folder: its descriptor file, and its object once `mizarctl plugin build` put it there.
    static let folder: String = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/", !FileManager.default.fileExists(atPath: dir.appendingPathComponent("port_guard.plugin.yaml").path) {
            dir.deleteLastPathComponent()
        }
        return dir.path
    }()

    /// Every (hook, flavour) the plugin runs at.
    static let runs = PortGuard.descriptor.hooks.flatMap { hook in hook.flavors.map { (hook, $0) } }

    /// A harness with the plugin alone in the chain of each of its hooks. Objects are looked
    /// up in `$MIZAR_BPF_DIR`, the install and `build/bpf` (where `make bpf` puts an in-tree
    /// plugin's), then the plugin's folder (where `mizarctl plugin build` puts a standalone one's).
    func harness(_ config: PortGuard.Config = PortGuard.Config(blocked: [53: .udp, 22: .both])) throws -> PluginHarness {
        var locator = BPFObjectLocator()
        locator.directories.append(Self.folder)
        return try PluginHarness(plugin: PortGuard.descriptor, hooks: PortGuard.descriptor.hooks, configuration: config, locator: locator)
    }

    @Test("the Swift descriptor and the descriptor file say the same")
    func descriptorFile() throws {
        let file = try PluginDescriptor(contentsOf: Self.folder + "/port_guard.plugin.yaml")
        var swift = PortGuard.descriptor
        swift.directory = file.directory
        #expect(file == swift)
    }

    @Test("blocked ports drop under their reason's name, other traffic continues unchanged")
    func verdicts() throws {
        let harness = try harness()
        let dns = PacketBuilder.udpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 53, payload: [1, 2, 3])
        let ssh = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 22)
        let dnsOverTCP = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 53)
        let ping = PacketBuilder.icmpEchoFrame(src: client, dst: server, identifier: 53)
        for (hook, flavor) in Self.runs {
            let context = HarnessContext(endpointIP: hook == .egress ? client : server)
            #expect(try harness.run(dns, hook: hook, flavor: flavor, context: context).verdict == .dropped, "\(hook) \(flavor)")
            #expect(try harness.run(ssh, hook: hook, flavor: flavor, context: context).verdict == .dropped, "\(hook) \(flavor)")
            for frame in [dnsOverTCP, ping] {
                let result = try harness.run(frame, hook: hook, flavor: flavor, context: context)
                #expect(result.verdict == .forwarded && result.packet == frame, "\(hook) \(flavor)")
            }
        }
        for hook in PortGuard.descriptor.hooks {
            let counters = try harness.counters("port_guard", at: hook)
            let runs = UInt64(hook.flavors.count)
            #expect(counters.dropped("blocked-port") == Counter(packets: 2 * runs, bytes: runs * UInt64(dns.count + ssh.count)))
            #expect(counters[.continue].packets == 2 * runs && counters[.aborted].packets == 0)
            #expect(counters.description.contains("blocked-port=\(2 * runs)"), "\(counters)")
        }
    }

    @Test("a header cut short is dropped as truncated, not guessed")
    func truncated() throws {
        let harness = try harness()
        let frame = PacketBuilder.ipv4Frame(src: client, dst: server, protocol: PacketBuilder.protocolUDP, payload: [0x9c])
        let hook = Self.runs[0].0
        #expect(try harness.run(frame, hook: hook, flavor: Self.runs[0].1).verdict == .dropped)
        #expect(try harness.counters("port_guard", at: hook).dropped("truncated")?.packets == 1)
    }

    @Test("a new configuration replaces the old; a bad one is refused and changes nothing")
    func configure() throws {
        let harness = try harness()
        let (hook, flavor) = Self.runs[0]
        let ssh = PacketBuilder.tcpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 22)
        #expect(throws: PluginError.self) { try harness.chains.configure("port_guard", PortGuard.Config(blocked: [0: .tcp])) }
        #expect(try harness.run(ssh, hook: hook, flavor: flavor).verdict == .dropped)
        try harness.chains.configure("port_guard", PortGuard.Config(blocked: [80: .tcp]))
        #expect(try harness.run(ssh, hook: hook, flavor: flavor).verdict == .forwarded)
    }

    @Test("the harness refuses a flavour its hook lacks with an error, not a trap")
    func harnessRefusesBadRuns() throws {
        let harness = try harness()
        let frame = PacketBuilder.udpFrame(src: client, dst: server, sourcePort: 40000, destinationPort: 53)
        for hook in PluginHook.allCases {
            for flavor in ProgramFlavor.allCases where !hook.flavors.contains(flavor) {
                #expect(throws: PluginError.self) { try harness.run(frame, hook: hook, flavor: flavor) }
            }
        }
        #expect(throws: (any Error).self) { try harness.run(Array(frame.prefix(10)), hook: Self.runs[0].0) }
        #expect(try harness.run(frame, hook: Self.runs[0].0, flavor: Self.runs[0].1).verdict == .dropped, "the harness still works")
    }
}
