import CLibBPF
import Foundation

/// An error from a libbpf or bpf() call, with the errno, what was being done and
/// anything libbpf or the verifier said about it.
public struct BPFError: Error, CustomStringConvertible, Equatable {
    /// What kind of failure this is; extensible, compare with the static members.
    public struct Code: Hashable, CustomStringConvertible, Sendable {
        public let name: String
        public var description: String { name }
        /// A bpf() or libbpf call failed; see `errno`.
        public static let system = Code(name: "system")
        /// A file, map, program, variable or pin does not exist.
        public static let notFound = Code(name: "notFound")
        /// A key or value does not have the map's size, or a map has another type.
        public static let typeMismatch = Code(name: "typeMismatch")
        /// The kernel refused a program; `log` holds the verifier's output.
        public static let verifierRejected = Code(name: "verifierRejected")
        /// The operation is not valid in the object's state (e.g. configure after load).
        public static let invalidState = Code(name: "invalidState")
    }

    public var code: Code
    /// The errno behind the failure, or 0.
    public var errno: Int32
    /// What was being done, e.g. `load object transit_xdp.bpf.o`.
    public var operation: String
    /// Readable explanation.
    public var message: String
    /// libbpf's messages and the verifier log, when there were any.
    public var log: String?

    public init(_ code: Code, errno: Int32 = 0, operation: String, message: String, log: String? = nil) {
        self.code = code
        self.errno = errno
        self.operation = operation
        self.message = message
        self.log = log
    }

    /// An error for a failed call that returned `-errno` or set errno.
    static func system(_ operation: String, errno err: Int32, log: String? = nil) -> BPFError {
        let code: Code = err == ENOENT ? .notFound : .system
        return BPFError(code, errno: err, operation: operation, message: String(cString: strerror(err)), log: log)
    }

    public var description: String {
        var text = "\(operation): \(message)"
        if errno != 0 { text += " (errno \(errno))" }
        if let log, !log.isEmpty { text += "\n" + log }
        return text
    }
}

/// Runs a libbpf call that returns 0/positive on success and `-errno` (or -1 with errno) on failure.
@discardableResult
func check(_ operation: @autoclosure () -> String, _ result: Int32) throws -> Int32 {
    if result >= 0 { return result }
    let err = result == -1 && errno != 0 ? errno : -result
    throw BPFError.system(operation(), errno: err)
}

/// Ends collecting libbpf messages on this thread and returns them.
func takeLibbpfCapture() -> String {
    guard let raw = mz_libbpf_capture_end() else { return "" }
    defer { free(raw) }
    return String(cString: raw)
}

/// Collects libbpf's messages while `body` runs and attaches them to a `BPFError` it throws.
func withLibbpfLog<T>(_ body: () throws -> T) throws -> T {
    mz_libbpf_capture_begin()
    do {
        let value = try body()
        _ = takeLibbpfCapture()
        return value
    } catch var error as BPFError {
        let said = takeLibbpfCapture()
        if !said.isEmpty, error.log == nil { error.log = said }
        throw error
    } catch {
        _ = takeLibbpfCapture()
        throw error
    }
}
