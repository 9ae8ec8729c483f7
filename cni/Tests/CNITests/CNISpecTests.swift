import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// The spec's commands against a real transitd, for every version `mizar` speaks.
@Suite("CNI commands per spec version", .serialized)
struct CNISpecTests {
    static let versions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

    @Test func versionListsEverySupportedVersion() throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        for input in [#"{"cniVersion":"0.4.0"}"#, "", "not json", #"{"cniVersion":"0.1.0"}"#] {
            let call = try bed.cni("VERSION", config: input)
            #expect(call.status == 0, "\(call)")
            #expect(call.json?["supportedVersions"] as? [String] == Self.versions, "\(call)")
            #expect(call.json?["cniVersion"] as? String == "1.1.0")
        }
    }

    /// The binary runs where Swift is not installed, and says what it is when a person runs it.
    @Test func staticBinaryWithHelp() throws {
        let ldd = try runCommand(["ldd", Binaries.mizar])
        #expect(ldd.status == 0 && !ldd.output.contains("libswift") && !ldd.output.contains("libFoundation"), "\(ldd.output)")
        // FoundationEssentials only: one `import Foundation` in its dependencies links all of
        // Foundation and CoreFoundation in (twice the size, and CoreFoundation's start-up on every call).
        let symbols = try runCommand(["nm", "--defined-only", Binaries.mizar])
        #expect(symbols.status == 0 && !symbols.output.contains("__CFInitialize"), "CoreFoundation is linked into mizar")
        let help = try runCommand([Binaries.mizar, "--help"])
        #expect(help.status == 0 && help.output.contains("CNI_COMMAND") && help.output.contains("docs/cni.md"))
        #expect(try runCommand([Binaries.mizar, "--version"]).output.hasPrefix("mizar \(mizarVersion)"))
    }

    /// ADD gives a result shaped for the version, the two containers reach each other, CHECK
    /// (from 0.4.0) passes, DEL removes everything and a second DEL succeeds.
    @Test(arguments: versions) func addCheckDel(version: String) async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config(version)
        let a = try bed.container("a"), b = try bed.container("b")
        let addA = try bed.cni("ADD", container: "ctr-a", netns: a.path, config: config)
        let addB = try bed.cni("ADD", container: "ctr-b", netns: b.path, ifName: "net1", config: config)
        #expect(addA.status == 0 && addB.status == 0, "\(addA) \(addB)")
        let result = try #require(addA.json)
        #expect(result["cniVersion"] as? String == version)
        let ips = try #require(result["ips"] as? [[String: Any]])
        #expect(ips.count == 1)
        #expect((ips.first?["version"] as? String) == (version < "1.0.0" ? "4" : nil), "ips: \(ips)")
        #expect(ips.first?["gateway"] as? String == "10.20.0.1")
        #expect(ips.first?["interface"] as? Int == 1)
        let interfaces = try #require(result["interfaces"] as? [[String: Any]])
        #expect(interfaces.count == 2)
        #expect(interfaces[1]["name"] as? String == "eth0" && interfaces[1]["sandbox"] as? String == a.path)
        #expect((interfaces[1]["mtu"] as? Int) == (version == "1.1.0" ? 1434 : nil), "interfaces: \(interfaces)")
        #expect((result["routes"] as? [[String: Any]])?.first?["dst"] as? String == "0.0.0.0/0")

        let ipB = try #require(CNIBed.address(addB.json))
        #expect(try pingReplies(runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "2", ipB], in: a).output) == 3)

        let check = try bed.cni("CHECK", container: "ctr-a", netns: a.path, config: bed.config(version, ["prevResult": result]))
        if version < "0.4.0" {
            #expect(check.status != 0 && check.code == 1, "\(check)")
        } else {
            #expect(check.status == 0, "\(check)")
        }
        for (container, ns, ifName) in [("ctr-a", a, "eth0"), ("ctr-b", b, "net1")] {
            let del = try bed.cni("DEL", container: container, netns: ns.path, ifName: ifName, config: config)
            #expect(del.status == 0 && del.stdout.isEmpty, "\(del)")
        }
        #expect(try bed.cni("DEL", container: "ctr-a", netns: a.path, config: config).status == 0)
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
        #expect(try bed.kernelEndpointEntries() == 0)
    }
}
