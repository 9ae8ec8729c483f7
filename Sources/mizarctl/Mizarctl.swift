import ArgumentParser
import Foundation
import MizarAPI
import MizarBPF

/// The Mizar command-line tool: transitd's API client, and local checks of the host and of plugins.
@main
struct Mizarctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizarctl",
        abstract: "Inspect and manage the Mizar XDP data plane on this host.",
        discussion: """
            Talks to transitd over its Unix socket (default /run/mizar/transitd.sock; give another with \
            `mizarctl COMMAND --socket PATH`, or a remote transitd with --server, --token-file and --cacert). \
            Exit codes: 0 ok, 1 the API refused or failed (message printed), 2 usage, 3 transitd unreachable.
            """,
        version: MizarVersion.current,
        subcommands: [StatusCommand.self, GetCommand.self, DescribeCommand.self, ApplyCommand.self, DeleteCommand.self,
                      ChainCommand.self, PluginCommand.self, CountersCommand.self, TopCommand.self, TraceCommand.self, BPFCommand.self, CRDsCommand.self, VersionCommand.self]
    )

    /// ArgumentParser's own exit code for usage errors is 64; mizarctl's is 2.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                printError(fullMessage(for: error))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// The version of this build.
enum MizarVersion {
    static let current = mizarVersion
}

/// Where BPF objects are found.
struct BPFDirectoryOption: ParsableArguments {
    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects (default: $MIZAR_BPF_DIR, ../lib/mizar/bpf beside the binary, /usr/local/lib/mizar/bpf, ./build/bpf).")
    var bpfDir: String?
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the versions of mizarctl and libbpf.")

    func run() throws {
        print("mizarctl \(MizarVersion.current)")
        print("libbpf \(LibBPFVersion.string)")
    }
}

struct BPFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bpf", abstract: "BPF capabilities of this host.", subcommands: [ProbeCommand.self])
}
