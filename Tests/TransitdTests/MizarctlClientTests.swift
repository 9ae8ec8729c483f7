import Foundation
import MizarTestSupport
import Testing

/// mizarctl as a user runs it against transitd: exit codes, formats, help.
@Suite("mizarctl over the API", .serialized)
struct MizarctlClientTests {
    @Test func exitCodesSayWhatHappened() throws {
        let lab = try DaemonLab.running(["hosta"])
        defer { lab.teardown() }
        let ok = try lab.mizarctl("hosta", ["get", "networks"])
        #expect(ok.status == 0 && ok.output.contains("net0") && ok.output.contains("10.20.0.0/16"), "\(ok.output)\(ok.error)")
        let status = try lab.mizarctl("hosta", ["status"])
        #expect(status.status == 0 && status.output.contains("healthy") && status.output.contains("hosta"), "\(status.output)\(status.error)")

        let apiError = try lab.mizarctl("hosta", ["delete", "vpc", "vpc0"])
        #expect(apiError.status == 1 && apiError.error.contains("still has network net0"), "\(apiError.error)")
        let notFound = try lab.mizarctl("hosta", ["get", "vpc", "nope"])
        #expect(notFound.status == 1 && notFound.error.contains("notFound"), "\(notFound.error)")

        let usage = try lab.mizarctl("hosta", ["get", "pods"])
        #expect(usage.status == 2, "\(usage.status) \(usage.error)")
        let chainUsage = try lab.mizarctl("hosta", ["chain", "set", "sideways", "acl"])
        #expect(chainUsage.status == 2, "\(chainUsage.status) \(chainUsage.error)")

        let unreachable = try runCommand([Binaries.mizarctl, "status", "--socket", lab.root + "/nobody.sock"])
        #expect(unreachable.status == 3 && unreachable.error.contains("cannot reach transitd"), "\(unreachable.error)")

        let badManifest = try lab.mizarctl("hosta", ["apply", "-f", "-"], stdin: "kind: VPC\nmetadata: {name: v9}\nspec: {vni: -4}\n")
        #expect(badManifest.status == 1 && badManifest.error.contains("out of range"), "\(badManifest.error)")

        let chain = try lab.mizarctl("hosta", ["chain", "set", "ingress", "acl,shaper"])
        #expect(chain.status == 0, "\(chain.error)")
        let shown = try lab.mizarctl("hosta", ["chain", "show"])
        #expect(shown.output.contains("ingress") && shown.output.contains("acl,shaper"), "\(shown.output)")
        let plugins = try lab.mizarctl("hosta", ["plugin", "list"])
        #expect(plugins.status == 0 && ["acl", "nat", "lb", "shaper"].allSatisfy(plugins.output.contains), "\(plugins.output)")
    }

    @Test func helpNamesTheAPICommands() throws {
        let help = try runCommand([Binaries.mizarctl, "--help"])
        for command in ["status", "get", "describe", "apply", "delete", "chain", "plugin", "counters", "Exit codes"] {
            #expect(help.output.contains(command), "mizarctl --help lacks \(command)")
        }
        let transitd = try runCommand([Binaries.transitd, "--help"])
        for flag in ["--interface", "--socket", "--state-dir", "--bpffs", "--bpf-dir", "--plugin-dir", "--cleanup", "--config"] {
            #expect(transitd.output.contains(flag), "transitd --help lacks \(flag)")
        }
        let completion = try runCommand([Binaries.mizarctl, "--generate-completion-script", "bash"])
        #expect(completion.status == 0 && completion.output.contains("_mizarctl") && completion.output.contains("apply"))
        let noInterface = try runCommand([Binaries.transitd, "--config", "/dev/null"])
        #expect(noInterface.status != 0 && noInterface.error.contains("--interface"), "\(noInterface.error)")
    }
}
