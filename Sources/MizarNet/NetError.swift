import CNetlink
import Foundation

/// An error from netlink (libnl) or a namespace operation.
public struct NetError: Error, CustomStringConvertible, Equatable {
    /// The kind of failure; extensible, compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let notFound = Code(name: "notFound")
        public static let exists = Code(name: "exists")
        public static let invalidArgument = Code(name: "invalidArgument")
        public static let permission = Code(name: "permission")
        public static let busy = Code(name: "busy")
        public static let system = Code(name: "system")
    }

    public var code: Code
    /// What was being done, e.g. `create veth mz0 <-> mz1`.
    public var operation: String
    public var message: String

    public init(_ code: Code, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }

    /// From a libnl return code (negative NLE_*).
    static func netlink(_ operation: String, _ rc: Int32) -> NetError {
        let nle = abs(rc)
        let code: Code = switch nle {
        case NLE_EXIST: .exists
        case NLE_OBJ_NOTFOUND, NLE_NODEV, NLE_NOADDR: .notFound
        case NLE_INVAL, NLE_RANGE, NLE_AF_NOSUPPORT, NLE_OPNOTSUPP, NLE_PARSE_ERR: .invalidArgument
        case NLE_PERM, NLE_NOACCESS: .permission
        case NLE_BUSY: .busy
        default: .system
        }
        return NetError(code, operation: operation, message: String(cString: nl_geterror(rc)))
    }

    /// From an errno of a system call.
    static func system(_ operation: String, errno err: Int32) -> NetError {
        let code: Code = switch err {
        case ENOENT, ENODEV: .notFound
        case EEXIST: .exists
        case EPERM, EACCES: .permission
        case EINVAL: .invalidArgument
        case EBUSY: .busy
        default: .system
        }
        return NetError(code, operation: operation, message: String(cString: strerror(err)))
    }
}

/// Throws for a negative libnl return code.
@discardableResult
func nlCheck(_ operation: @autoclosure () -> String, _ rc: Int32) throws -> Int32 {
    if rc < 0 { throw NetError.netlink(operation(), rc) }
    return rc
}

/// Runs a libnl dump, retrying when the kernel reports it was interrupted by a change.
func nlDump(_ operation: String, _ body: () -> Int32) throws {
    for _ in 0..<8 {
        let rc = body()
        if rc == -NLE_DUMP_INTR { continue }
        try nlCheck(operation, rc)
        return
    }
    throw NetError(.busy, operation: operation, message: "dump kept being interrupted by concurrent changes")
}
