// `mizar`: the CNI plugin (spec 1.1.0). The runtime runs it with CNI_* variables and the
// network configuration on stdin; it asks the local transitd to plug or unplug the endpoint.
// See docs/cni.md.
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import MizarAPI
import MizarCNI

/// Reads stdin, runs the command, prints its result or the spec's error JSON; the exit status.
func run() -> Int32 {
    var version = CNIVersion.latest.rawValue
    do {
        let cni = try CNIEnvironment(ProcessInfo.processInfo.environment)
        // VERSION answers whatever stdin holds (the runtime asks before it knows what we speak).
        if cni.command == .version {
            emit(CNIPlugin.versionInfo)
            return 0
        }
        let input = try readStandardInput()
        let config: NetConf
        do { config = try NetConf(json: input, for: cni.command) } catch {
            if let stated = NetConf.statedVersion(in: input) { version = stated.rawValue }
            throw error as CNIError
        }
        version = config.cniVersion.rawValue
        let plugin = CNIPlugin(environment: cni, config: config, service: TransitdEndpoints(socket: config.socket))
        if let output = try plugin.run() { emit(output) }
        return 0
    } catch let error as CNIError {
        emit(error.json(cniVersion: version))
        return 1
    } catch {
        emit(CNIError(.internal, "\(error)").json(cniVersion: version))
        return 1
    }
}

func readStandardInput() throws(CNIError) -> [UInt8] {
    var input: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(0, &buffer, buffer.count)
        if n > 0 {
            input += buffer[0..<n]
            guard input.count <= 16 << 20 else { throw CNIError(.ioFailure, "the network configuration on stdin is over 16 MiB") }
        } else if n == 0 {
            return input
        } else if errno != EINTR {
            throw CNIError(.ioFailure, "cannot read the network configuration from stdin: \(String(cString: strerror(errno)))")
        }
    }
}

func emit(_ value: JSONValue) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    print(text)
}

let usage = """
    mizar \(mizarVersion): the Mizar CNI plugin (CNI spec 0.3.0 to 1.1.0).

    A container runtime runs it, not a person: CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC,
    VERSION), CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH in the
    environment, the network configuration on stdin, the result or an error as JSON on
    stdout. It asks the local transitd (socket /run/mizar/transitd.sock unless the
    configuration says "socket") to plug the container into a Mizar network.

    Install: make install (puts mizar in /opt/cni/bin and cni/10-mizar.conflist in
    /etc/cni/net.d). Configuration keys, runtimes and error codes: docs/cni.md.

    By hand:
      echo '{"cniVersion":"1.0.0","name":"mizar","type":"mizar"}' |
        CNI_COMMAND=ADD CNI_CONTAINERID=demo CNI_NETNS=/run/netns/demo CNI_IFNAME=eth0 mizar

    """

// The protocol is the environment and stdin; these two flags are for people.
if CommandLine.arguments.dropFirst().contains(where: { $0 == "--help" || $0 == "-h" }) {
    print(usage, terminator: "")
    exit(0)
}
if CommandLine.arguments.dropFirst().contains("--version") {
    print("mizar \(mizarVersion) (CNI \(CNIVersion.allCases.map(\.rawValue).joined(separator: ", ")))")
    exit(0)
}
// A delegated IPAM plugin that exits before reading its stdin must not kill us.
signal(SIGPIPE, SIG_IGN)
exit(run())
