import Foundation

/// A file descriptor this process owns; closed when the last reference goes.
public final class OwnedFileDescriptor: @unchecked Sendable {
    public let rawValue: Int32

    public init(_ rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit {
        close(rawValue)
    }
}
