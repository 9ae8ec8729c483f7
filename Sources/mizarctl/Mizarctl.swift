import ArgumentParser
import MizarBPF

/// The Mizar command-line tool.
@main
struct Mizarctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizarctl",
        abstract: "Inspect and manage the Mizar XDP data plane on this host.",
        version: MizarVersion.current,
        subcommands: [VersionCommand.self, BPFCommand.self, PluginCommand.self]
    )
}

/// The version of this build.
enum MizarVersion {
    static let current = "0.1.0"
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
