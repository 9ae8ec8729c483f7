import CMizarABI
import Foundation
import MizarDataplane
import MizarPluginSDK
import MizarTestSupport
import MizarTopology
import Testing

@Suite("Plugin chains on live droplets: hot swap under traffic", .serialized)
struct HotSwapTests {
    // Egress stamps 1-3 on hosta, ingress stamps a-b on hostb: a frame's IPv4 ID spells the
    // egress chain then the ingress chain it crossed (pings with DF set leave with ID 0).
    static let egressSteps: [(String, (PluginChains, Int) throws -> Void)] = [
        ("[1]", { c, _ in try c.setChain(.egress, ["1"]) }),
        ("[1,2]", { c, _ in try c.insert("2", into: .egress) }),
        ("[2,1]", { c, _ in try c.setChain(.egress, ["2", "1"]) }),
        ("upgrade 1", { c, i in try c.upgrade(TestPlugins.stamp("1", version: "2.0.\(i)")) }),
        ("[3]", { c, _ in try c.setChain(.egress, ["3"]) }),
        ("[2,3]", { c, _ in try c.insert("2", into: .egress, at: 0) }),
        ("[2]", { c, _ in try c.remove("3", from: .egress) }),
        ("[]", { c, _ in try c.setChain(.egress, []) }),
    ]
    static let ingressSteps: [(String, (PluginChains, Int) throws -> Void)] = [
        ("[a]", { c, _ in try c.setChain(.ingress, ["a"]) }),
        ("[b,a]", { c, _ in try c.insert("b", into: .ingress, at: 0) }),
        ("[a,b]", { c, _ in try c.setChain(.ingress, ["a", "b"]) }),
        ("upgrade a", { c, i in try c.upgrade(TestPlugins.stamp("a", version: "2.0.\(i)")) }),
        ("[a]", { c, _ in try c.remove("b", from: .ingress) }),
        ("[]", { c, _ in try c.setChain(.ingress, []) }),
    ]
    static let egressSignatures: Set<String> = ["", "1", "12", "21", "3", "23", "2"]
    static let ingressSignatures: Set<String> = ["", "a", "ba", "ab"]

    @Test("insert, remove, reorder and upgrade while pings flow: none lost, none judged by a half-built chain",
          arguments: [AgentHook.tc, .xdp])
    func hotSwapUnderTraffic(agentHook: AgentHook) throws {
        let lab = try OverlayLab.design(agentHook: agentHook, locator: TestPaths.locator)
        defer { lab.teardown() }
        let egress = lab.host("hosta").dataplane.plugins, ingress = lab.host("hostb").dataplane.plugins
        try TestPlugins.registerStamps(["1", "2", "3"], on: egress)
        try TestPlugins.registerStamps(["a", "b"], on: ingress)
        let b1 = lab.guest("b1")
        #expect(try lab.ping(from: "a1", to: b1.ip, count: 2, interval: 0.05) == 2)

        let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("\(lab.prefix)-swap.pcap").path
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let capture = try RunningCommand(["tcpdump", "-i", "eth0", "--immediate-mode", "-w", pcap, "-U", "icmp[icmptype] == 8"], in: b1.netns)
        for _ in 0..<100 where !capture.errorOutput.contains("listening on") { usleep(50_000) }
        usleep(300_000) // "listening" is printed just before the capture is armed

        let done = DispatchSemaphore(value: 0)
        let stop = LockedFlag()
        let changer = Changer()
        Thread.detachNewThread {
            defer { done.signal() }
            do {
                var n = 0
                while !stop.value {
                    try Self.egressSteps[n % Self.egressSteps.count].1(egress, n)
                    try Self.ingressSteps[n % Self.ingressSteps.count].1(ingress, n)
                    n += 1
                    changer.changes = n
                }
            } catch { changer.failure = error }
        }
        let sent = 600
        let replies = try lab.ping(from: "a1", to: b1.ip, count: sent, interval: 0.005, extra: ["-M", "do"])
        stop.set()
        done.wait()
        usleep(200_000)
        let captureEnd = capture.interrupt()

        let (changes, failure) = (changer.changes, changer.failure)
        #expect(failure == nil, "\(failure.map { "\($0)" } ?? "")")
        #expect(changes >= 10, "only \(changes) chain changes happened during the pings")
        #expect(replies == sent, "\(sent - replies) pings lost across \(changes) chain changes")

        var seen: [String: Int] = [:]
        for frame in try readPcap(pcap) where frame.count >= 34 {
            let id = ipID(frame) == 0 ? "" : String(ipID(frame), radix: 16)
            let egressPart = String(id.prefix { "123".contains($0) })
            let ingressPart = String(id.dropFirst(egressPart.count))
            #expect(Self.egressSignatures.contains(egressPart) && Self.ingressSignatures.contains(ingressPart),
                    "IPv4 ID 0x\(id) (\(frame.count) bytes, \(frame[12...23].map { String($0, radix: 16) })): not the mark of any chain that was built")
            seen[egressPart + "|" + ingressPart, default: 0] += 1
        }
        #expect(seen.values.reduce(0, +) == sent, "captured \(seen.values.reduce(0, +)) requests: \(seen); tcpdump: \(captureEnd.error)")
        #expect(seen.count >= 4, "frames crossed only \(seen.keys.sorted()) chain combinations")

        for (chains, hook, names) in [(egress, PluginHook.egress, ["1", "2", "3"]), (ingress, .ingress, ["a", "b"])] {
            for name in names {
                let counters = try chains.counters(name, at: hook)
                #expect(counters[.aborted].packets == 0 && counters[.drop].packets == 0, "\(name): \(counters)")
                #expect(counters[.continue].packets > 0, "\(name) never saw a frame")
            }
        }
    }
}

/// What the changing thread did (read after it finished).
final class Changer: @unchecked Sendable {
    var changes = 0
    var failure: (any Error)?
}

/// A flag one thread sets and another polls.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}
