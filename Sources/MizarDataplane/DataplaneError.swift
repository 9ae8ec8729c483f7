/// A request the data plane refused or could not carry out. A refused request changed nothing.
public struct DataplaneError: Error, CustomStringConvertible, Equatable {
    /// The kind of failure; extensible, compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let invalidArgument = Code(name: "invalidArgument")
        public static let notFound = Code(name: "notFound")
        public static let conflict = Code(name: "conflict")
        public static let invalidState = Code(name: "invalidState")
        /// A table has no room for what was asked; nothing was written.
        public static let full = Code(name: "full")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
