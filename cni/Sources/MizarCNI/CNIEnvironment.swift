/// The `CNI_*` variables of one invocation, checked for the command they go with.
public struct CNIEnvironment: Sendable, Hashable {
    public var command: CNICommand
    public var containerID: String
    /// Empty for DEL when the runtime no longer has the namespace.
    public var netns: String
    public var ifName: String
    /// `CNI_ARGS` as key/value pairs (`K8S_POD_NAMESPACE`, `MIZAR_NETWORK`, ...).
    public var args: [String: String]
    /// `CNI_PATH`: where delegated IPAM plugins are looked up.
    public var path: [String]

    public init(command: CNICommand, containerID: String = "", netns: String = "", ifName: String = "", args: [String: String] = [:], path: [String] = []) {
        self.command = command
        self.containerID = containerID
        self.netns = netns
        self.ifName = ifName
        self.args = args
        self.path = path
    }

    /// Reads and checks the variables `command` needs (spec: "Parameters").
    public init(_ environment: [String: String]) throws(CNIError) {
        guard let raw = environment["CNI_COMMAND"], !raw.isEmpty else { throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set") }
        guard let command = CNICommand(rawValue: raw) else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND \"\(raw)\" is not one of " + CNICommand.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.command = command
        containerID = environment["CNI_CONTAINERID"] ?? ""
        netns = environment["CNI_NETNS"] ?? ""
        ifName = environment["CNI_IFNAME"] ?? ""
        path = (environment["CNI_PATH"] ?? "").split(separator: ":").map(String.init)
        args = try CNIEnvironment.parseArgs(environment["CNI_ARGS"] ?? "")

        let attachment: Set<CNICommand> = [.add, .del, .check]
        guard attachment.contains(command) else { return }
        guard !containerID.isEmpty else { throw CNIError(.invalidEnvironment, "CNI_CONTAINERID is required for \(command.rawValue)") }
        // Spec: alphanumeric, underscore, period and hyphen, starting with an alphanumeric.
        guard containerID.utf8.count <= 1024, containerID.utf8.first.map(Self.isAlphanumeric) == true,
              containerID.utf8.allSatisfy({ Self.isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else {
            throw CNIError(.invalidEnvironment, "CNI_CONTAINERID \"\(containerID)\" may hold only letters, digits, '_', '.' and '-', starting with a letter or digit")
        }
        guard !ifName.isEmpty else { throw CNIError(.invalidEnvironment, "CNI_IFNAME is required for \(command.rawValue)") }
        guard ifName.utf8.count <= 15, ifName != ".", ifName != "..",
              ifName.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "%") }) else {
            // `%` would be the kernel's name template (`eth%d`), not a name.
            throw CNIError(.invalidEnvironment, "CNI_IFNAME \"\(ifName)\" is not an interface name (1-15 printable characters, no '/', ':', '%' or spaces)")
        }
        if command != .del {
            guard !netns.isEmpty else { throw CNIError(.invalidEnvironment, "CNI_NETNS is required for \(command.rawValue)") }
        }
        if !netns.isEmpty, !netns.hasPrefix("/") {
            throw CNIError(.invalidEnvironment, "CNI_NETNS \"\(netns)\" must be an absolute path (/proc/PID/ns/net, /run/netns/NAME)")
        }
    }

    /// `K1=V1;K2=V2`. Unknown keys are ignored (runtimes pass their own); a pair without
    /// `=` is an error.
    static func parseArgs(_ text: String) throws(CNIError) -> [String: String] {
        var args: [String: String] = [:]
        for pair in text.split(separator: ";", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw CNIError(.invalidEnvironment, "CNI_ARGS: \"\(pair)\" is not KEY=VALUE")
            }
            args[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return args
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }
}
