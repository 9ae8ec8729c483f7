import CNetlink
import Foundation

/// A network namespace, named by the path of its nsfs file.
///
/// Accepts the forms runtimes use: `/proc/PID/ns/net`, `/run/netns/NAME`
/// (`/var/run/netns/NAME`), or a bare `NAME` for `/run/netns/NAME`.
public struct Netns: Sendable, Hashable, CustomStringConvertible {
    /// Where `ip netns` and this library keep named namespaces.
    public static let namedDirectory = "/run/netns"

    public let path: String

    /// Resolves and checks `pathOrName`; throws `.notFound` when no namespace is there.
    public init(_ pathOrName: String) throws {
        let path = pathOrName.contains("/") ? pathOrName : Netns.namedDirectory + "/" + pathOrName
        // O_PATH: nothing is opened for reading (a FIFO cannot hang the caller, a device file
        // named as a namespace is never opened); fstatfs works on it.
        let fd = cnl_open_path(path)
        guard fd >= 0 else { throw NetError.system("open network namespace \(path)", errno: errno) }
        defer { close(fd) }
        var fs = statfs()
        guard fstatfs(fd, &fs) == 0, UInt(fs.f_type) == 0x6e73_6673 /* NSFS_MAGIC */ else {
            throw NetError(.invalidArgument, operation: "open network namespace \(path)", message: "not a namespace file")
        }
        self.path = path
    }

    /// The namespace of this process's main thread.
    public static var host: Netns {
        // swiftlint:disable:next force_try
        try! Netns("/proc/self/ns/net")
    }

    public var description: String { path }

    /// Kernel identity (device, inode): equal for two paths to the same namespace.
    public var identity: (dev: UInt64, ino: UInt64) {
        get throws {
            var st = stat()
            guard stat(path, &st) == 0 else { throw NetError.system("stat \(path)", errno: errno) }
            return (UInt64(st.st_dev), UInt64(st.st_ino))
        }
    }

    /// Creates a named namespace at `/run/netns/NAME`, as `ip netns add` does
    /// (so `ip netns` and `nsenter --net=` see it).
    public static func create(named name: String) throws -> Netns {
        let operation = "create network namespace \(name)"
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw NetError(.invalidArgument, operation: operation, message: "invalid name")
        }
        try prepareNamedDirectory()
        let path = namedDirectory + "/" + name
        let fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        guard fd >= 0 else { throw NetError.system(operation, errno: errno) }
        close(fd)
        do {
            // A fresh thread unshares, so no other thread ever sees the new namespace.
            try onFreshThread {
                guard cnl_unshare_net() == 0 else { throw NetError.system(operation + ": unshare", errno: errno) }
                guard mount("/proc/thread-self/ns/net", path, "none", UInt(MS_BIND), nil) == 0 else {
                    throw NetError.system(operation + ": bind mount", errno: errno)
                }
            }
        } catch {
            unlink(path)
            throw error
        }
        return try Netns(path)
    }

    /// Deletes a named namespace; it lives on while processes or sockets hold it.
    /// Returns false when there was no such name.
    @discardableResult
    public static func delete(named name: String) throws -> Bool {
        let path = namedDirectory + "/" + name
        guard FileManager.default.fileExists(atPath: path) else { return false }
        if umount2(path, Int32(MNT_DETACH)) != 0, errno != EINVAL {
            throw NetError.system("unmount network namespace \(path)", errno: errno)
        }
        guard unlink(path) == 0 else { throw NetError.system("remove \(path)", errno: errno) }
        return true
    }

    /// Runs `body` on a dedicated thread inside this namespace and returns its result.
    ///
    /// The thread is created for the call and ends with it, so the switch never
    /// leaks into other threads; when the calling thread is in this namespace already,
    /// `body` runs right there. `body` must not `await`.
    public func perform<T>(_ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetError.system("open network namespace \(path)", errno: errno) }
        defer { close(fd) }
        // Already in it (a daemon working in its own namespace): no thread to start.
        var target = stat(), current = stat()
        if fstat(fd, &target) == 0, stat("/proc/thread-self/ns/net", &current) == 0, target.st_dev == current.st_dev, target.st_ino == current.st_ino {
            return try body()
        }
        return try Netns.onFreshThread {
            guard cnl_setns_net(fd) == 0 else { throw NetError.system("enter network namespace \(path)", errno: errno) }
            return try body()
        }
    }

    /// Runs `body` on a new thread and waits for it: the thread's namespace changes die with it.
    static func onFreshThread<T>(_ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            let box = ResultBox<T>(body)
            let thread = Thread { box.run() }
            thread.start()
            box.done.wait()
            return try box.result!.get()
        }
    }

    /// Makes /run/netns a shared mount point, so bind mounts of namespaces propagate.
    private static func prepareNamedDirectory() throws {
        try FileManager.default.createDirectory(atPath: namedDirectory, withIntermediateDirectories: true)
        if mount("", namedDirectory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 { return }
        guard errno == EINVAL else { throw NetError.system("share mount \(namedDirectory)", errno: errno) }
        guard mount(namedDirectory, namedDirectory, "none", UInt(MS_BIND | MS_REC), nil) == 0,
              mount("", namedDirectory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 else {
            throw NetError.system("bind mount \(namedDirectory)", errno: errno)
        }
    }
}

/// Carries a closure to another thread and its result back.
private final class ResultBox<T>: @unchecked Sendable {
    // Dropped before signalling: the closure must not outlive `withoutActuallyEscaping`.
    var body: (() throws -> T)?
    var result: Result<T, any Error>?
    let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping () throws -> T) {
        self.body = body
    }

    func run() {
        result = Result { try body!() }
        body = nil
        done.signal()
    }
}
