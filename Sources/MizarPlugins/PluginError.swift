/// Why a plugin, a chain change or a configuration was refused. Nothing changed when it is thrown.
public struct PluginError: Error, CustomStringConvertible, Equatable, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        /// The descriptor is malformed or names something that does not exist.
        public static let invalidDescriptor = Code(name: "invalidDescriptor")
        /// The descriptor's object is neither beside it nor in a BPF object directory.
        public static let objectNotFound = Code(name: "objectNotFound")
        /// The object was built against another plugin ABI.
        public static let abiMismatch = Code(name: "abiMismatch")
        /// The object's maps or programs differ from what its descriptor declares.
        public static let objectMismatch = Code(name: "objectMismatch")
        /// The kernel's verifier refused the object: `log` holds its verdict.
        public static let verifierRejected = Code(name: "verifierRejected")
        /// A chain change names an unknown plugin, a hook the plugin lacks, or is too long.
        public static let invalidChain = Code(name: "invalidChain")
        /// A configuration failed its plugin's validation.
        public static let invalidConfig = Code(name: "invalidConfig")
        /// The kernel refused an operation (see `message`).
        public static let system = Code(name: "system")
    }

    public var code: Code
    public var plugin: String
    public var message: String
    /// The verifier log, for `.verifierRejected`.
    public var log: String?

    public init(_ code: Code, plugin: String, _ message: String, log: String? = nil) {
        self.code = code
        self.plugin = plugin
        self.message = message
        self.log = log
    }

    public var description: String {
        var text = "plugin \(plugin): \(code): \(message)"
        if let log, !log.isEmpty { text += "\n--- verifier log ---\n" + log }
        return text
    }
}
