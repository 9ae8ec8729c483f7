import CMizarABI
import Foundation
import MizarPluginSDK
import MizarTestSupport
import Testing

@Suite("Bad plugins are refused with a reason; the live chain stays as it was")
struct BadPluginTests {
    /// A harness with a live chain [a, b] to check after every refusal.
    func harness() throws -> PluginHarness {
        let harness = try PluginHarness(locator: TestPaths.locator)
        try TestPlugins.registerStamps(["a", "b"], on: harness.chains)
        try harness.chains.setChain(.egress, ["a", "b"])
        return harness
    }

    func expectLiveChainIntact(_ harness: PluginHarness) throws {
        #expect(harness.chains.chain(.egress) == ["a", "b"])
        #expect(ipID(try harness.run(udpFrame, hook: .egress).packet) == 0x00ab)
        #expect(try harness.run(udpFrame, hook: .egress, flavor: .tc).verdict == .forwarded)
    }

    func refusal(_ body: () throws -> Void) -> PluginError? {
        do { try body() } catch let error as PluginError { return error } catch { Issue.record("not a PluginError: \(error)") }
        return nil
    }

    @Test("an object the verifier rejects: the verifier's log comes back")
    func verifierRejects() throws {
        let harness = try harness()
        let bad = PluginDescriptor(name: "bad", version: "1", object: "bad_verifier_plugin.bpf.o", entry: "bad_verifier",
                                   hooks: [.egress], directory: TestPlugins.directory)
        let error = try #require(refusal { try harness.chains.register(bad) })
        #expect(error.code == .verifierRejected)
        #expect(error.log?.contains("invalid access to packet") == true, "\(error.log ?? "no log")")
        // Upgrading a good plugin to it fails the same way and keeps the old version running.
        let upgrade = try #require(refusal { try harness.chains.upgrade(PluginDescriptor(name: "a", version: "9", object: "bad_verifier_plugin.bpf.o", entry: "bad_verifier", hooks: [.egress], directory: TestPlugins.directory)) })
        #expect(upgrade.code == .verifierRejected)
        try expectLiveChainIntact(harness)
    }

    @Test("an object built for another ABI, and a descriptor claiming another ABI")
    func wrongABI() throws {
        let harness = try harness()
        let old = PluginDescriptor(name: "old", version: "1", abi: 99, object: "bad_abi_plugin.bpf.o", entry: "bad_abi", hooks: [.egress],
                                   directory: TestPlugins.directory)
        let error = try #require(refusal { try harness.chains.register(old) })
        #expect(error.code == .abiMismatch && error.message.contains("99"), "\(error)")
        var claims = TestPlugins.stamp("claims")
        claims.abi = 2
        #expect(refusal { try harness.chains.register(claims) }?.code == .abiMismatch)
        try expectLiveChainIntact(harness)
    }

    @Test("maps that differ from the descriptor, a missing entry, a missing object")
    func mismatches() throws {
        let harness = try harness()
        var wrongSize = TestPlugins.stamp("wrong_size")
        wrongSize.maps[0].valueSize = 8
        var undeclared = TestPlugins.stamp("undeclared")
        undeclared.maps = []
        var extra = TestPlugins.stamp("extra")
        extra.maps.append(PluginMapDescriptor(name: "ghost", type: "hash", keySize: 4, valueSize: 4, maxEntries: 1))
        var entry = TestPlugins.stamp("entry")
        entry.entry = "nosuch"
        var object = TestPlugins.stamp("object")
        object.object = "nosuch.bpf.o"
        for (descriptor, code, words) in [(wrongSize, PluginError.Code.objectMismatch, "stamp"), (undeclared, .objectMismatch, "does not declare"),
                                          (extra, .objectMismatch, "ghost"), (entry, .objectMismatch, "nosuch_"), (object, .objectNotFound, "nosuch.bpf.o")] {
            let error = try #require(refusal { try harness.chains.register(descriptor) })
            #expect(error.code == code && error.description.contains(words), "\(error)")
        }
        #expect(harness.chains.descriptors.map(\.name) == ["a", "b"])
        try expectLiveChainIntact(harness)
    }

    @Test("drop reasons: codes 0-14 once each, names of lower-case words; refused with a clear message")
    func reasonNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mz-reasons-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = "name: r\nversion: 1.0.0\nabi: 1\nobject: r.bpf.o\nhooks: [egress]\n"
        for (reasons, words) in [("{x: a}", "reason code x"), ("{16: a}", "codes are 0-14"), ("{15: a}", "codes are 0-14"), ("{1: a, 01: b}", "given twice"),
                                 ("{1: 404}", "starting with a letter"), ("{1: drop}", "verdict"), ("{1: reason3}", "reasonN"), ("{1: a, 2: a}", "twice")] {
            try (base + "reasons: \(reasons)\n").write(toFile: dir + "/r.plugin.yaml", atomically: true, encoding: .utf8)
            let error = try #require(refusal { _ = try PluginDescriptor(contentsOf: dir + "/r.plugin.yaml") }, "\(reasons) accepted")
            #expect(error.code == .invalidDescriptor && error.message.contains(words), "\(reasons): \(error)")
        }
        try (base + "reasons: {1: blocked-port, 14: too-big}\n").write(toFile: dir + "/r.plugin.yaml", atomically: true, encoding: .utf8)
        let good = try PluginDescriptor(contentsOf: dir + "/r.plugin.yaml")
        #expect(good.reasons == [1: "blocked-port", 14: "too-big"] && good.reasonName(15) == "invalid-verdict" && good.reasonName(3) == "reason3")
        #expect(PluginCounters(reasonNames: [20: "x"]).dropped("x") == nil, "a name past the codes is no crash")
    }

    @Test("a droplet takes a plugin directory's object from beside its descriptor only")
    func noFallbackForDroplets() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mz-plugins-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: TestPaths.root + "/plugins/examples/port_guard/port_guard.plugin.yaml", toPath: dir + "/port_guard.plugin.yaml")
        let harness = try harness()
        harness.chains.objectFallback = false  // as a droplet's chains are
        let (registered, errors) = harness.chains.discover(in: PluginDirectory(dir))
        #expect(registered.isEmpty && errors.first?.code == .objectNotFound && errors.first?.message.contains(dir + "/port_guard.bpf.o") == true,
                "build/bpf holds a port_guard.bpf.o, but not beside the yaml: \(errors)")
    }

    @Test("a third-party plugin is discovered from its descriptor file and object, no rebuild")
    func discovery() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mz-plugins-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let example = TestPaths.root + "/plugins/examples/port_guard"
        try FileManager.default.copyItem(atPath: example + "/port_guard.plugin.yaml", toPath: dir + "/port_guard.plugin.yaml")
        try FileManager.default.copyItem(atPath: TestPaths.bpfDir + "/port_guard.bpf.o", toPath: dir + "/port_guard.bpf.o")
        try "name: broken\nhooks: 7\n".write(toFile: dir + "/broken.plugin.yaml", atomically: true, encoding: .utf8)

        let harness = try harness()
        let (registered, errors) = harness.chains.discover(in: PluginDirectory(dir))
        #expect(registered == ["port_guard"])
        #expect(errors.count == 1 && errors[0].code == .invalidDescriptor, "\(errors)")
        // Configured through raw entries (a third party's typed config lives in its own code).
        try harness.chains.configure("port_guard", RawPluginConfiguration(["port_guard_ports": [PluginMapEntry(UInt16(2000).bigEndian, UInt8(0))]]))
        try harness.chains.insert("port_guard", into: .egress)
        #expect(harness.chains.chain(.egress) == ["port_guard", "a", "b"], "priority 50 runs before 100")
        #expect(try harness.run(udpFrame, hook: .egress).verdict == .dropped)
        #expect(try harness.counters("port_guard", at: .egress).dropped("blocked-port")?.packets == 1, "the names of its descriptor file")
    }
}

