import ArgumentParser
import CLibBPF
import CMizarABI
import Foundation
import MizarBPF
import MizarNet

/// Checks that this kernel can run the data plane.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check bpffs, BTF, program load and test-run, tail calls, live frames and native XDP on veth.",
        discussion: "Prints one row per capability and exits non-zero naming what is missing. Needs root."
    )

    @OptionGroup var objects: BPFDirectoryOption

    func run() throws {
        let locator = BPFObjectLocator(explicit: objects.bpfDir)
        let results = Probe.all.map { check in (check.name, Result { try check.run(locator) }) }
        let width = results.map(\.0.count).max() ?? 0
        print("CHECK".padding(toLength: width, withPad: " ", startingAt: 0) + "  STATUS  DETAIL")
        for (name, result) in results {
            let (status, detail) = switch result {
            case .success(let detail): ("ok    ", detail)
            case .failure(let error): ("FAILED", "\(error)".split(separator: "\n").first.map(String.init) ?? "")
            }
            print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(status)  \(detail)")
        }
        let missing = results.filter { if case .failure = $0.1 { true } else { false } }.map(\.0)
        if !missing.isEmpty {
            FileHandle.standardError.write(Data("mizarctl: this host lacks: \(missing.joined(separator: ", "))\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// One capability check; returns a detail line or throws what is missing.
struct Probe {
    let name: String
    let run: (BPFObjectLocator) throws -> String

    static let all: [Probe] = [
        Probe(name: "bpffs") { _ in
            var fs = statfs()
            guard statfs("/sys/fs/bpf", &fs) == 0, UInt(fs.f_type) == UInt(BPF_FS_MAGIC) else {
                throw ProbeFailure("no bpf filesystem at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)")
            }
            return "mounted at /sys/fs/bpf"
        },
        Probe(name: "btf") { _ in
            guard let btf = btf__load_vmlinux_btf() else { throw ProbeFailure("no kernel BTF at /sys/kernel/btf/vmlinux") }
            defer { btf__free(btf) }
            return "\(btf__type_cnt(btf)) types in /sys/kernel/btf/vmlinux"
        },
        Probe(name: "program load + test-run") { locator in
            let object = try loadProbeObject(locator, verdict: .pass)
            let result = try object.program(named: MZ_PROBE_VERDICT_PROG).testRun(packet: [UInt8](repeating: 0, count: 64), repeat: 100)
            guard result.action == .pass else { throw ProbeFailure("test-run returned \(result.returnValue), expected XDP_PASS") }
            return "XDP_PASS in \(result.nanosecondsPerRun) ns"
        },
        Probe(name: "tail calls (program array)") { locator in
            let object = try loadProbeObject(locator, verdict: .tx)
            try ProgramArray(object.map(named: MZ_PROBE_CHAIN_MAP)).set(0, to: object.program(named: MZ_PROBE_VERDICT_PROG))
            let result = try object.program(named: MZ_PROBE_TAIL_PROG).testRun(packet: [UInt8](repeating: 0, count: 64))
            guard result.action == .tx else { throw ProbeFailure("tail call did not reach its target (returned \(result.returnValue))") }
            return "slot 0 reached"
        },
        Probe(name: "xdp live frames") { locator in
            let object = try loadProbeObject(locator, verdict: .drop)
            let ns = try object.program(named: MZ_PROBE_VERDICT_PROG).runLiveFrames(frame: [UInt8](repeating: 0, count: 64), count: 1000, ingressIfindex: 1)
            return "1000 frames, \(ns) ns each"
        },
        Probe(name: "native xdp on veth") { locator in
            let name = "mzprobe\(getpid() % 100_000)"
            let ns = try Netns.create(named: name)
            defer { _ = try? Netns.delete(named: name) }
            let sock = try RouteSocket(in: ns)
            let veth = try sock.createVethPair(name: "mzp0", peerName: "mzp1")
            let object = try locator.open(MZ_TRANSIT_XDP_OBJECT)
            try object.load()
            let program = try object.program(named: MZ_TRANSIT_XDP_PROG)
            let attached = try ns.perform { () throws -> XDPAttachment in
                let link = try XDP.attach(program, ifindex: veth.index, mode: .native)
                defer { _ = link }
                return try XDP.query(ifindex: veth.index)
            }
            guard attached.mode == .native else { throw ProbeFailure("attached, but in \(attached.mode?.description ?? "no") mode") }
            return "\(MZ_TRANSIT_XDP_PROG) attached by bpf_link in native mode"
        },
    ]
}

/// The probe object, loaded with `probe_verdict` returning `verdict`.
private func loadProbeObject(_ locator: BPFObjectLocator, verdict: XDPAction) throws -> BPFObject {
    let object = try locator.open(MZ_PROBE_OBJECT)
    try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: verdict.rawValue)
    try object.load()
    return object
}

struct ProbeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
