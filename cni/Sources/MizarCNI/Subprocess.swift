#if canImport(Glibc)
import Glibc
#endif

/// Runs another plugin (a delegated IPAM) with stdin and stdout piped, as the CNI spec
/// delegates: posix_spawn, not Foundation's Process, which would pull CoreFoundation into a
/// binary whose start time is its latency. The plugin is not trusted to behave: both pipes
/// are served at once (neither side can fill one and wait), its output is capped, and one
/// that outlives `timeout` is killed with its process group (children it forked included).
public enum Subprocess {
    /// Output beyond this ends the plugin: a result is a few kilobytes.
    public static let outputLimit = 16 << 20

    public static func run(_ path: String, environment: [String: String], input: [UInt8], timeout: Int32 = 60) throws(CNIError) -> (status: Int32, output: [UInt8]) {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw CNIError(.ioFailure, "pipe: \(String(cString: strerror(errno)))") }
        // Only the dup2'd copies (stdin, stdout) reach the child; our ends never block.
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        for fd in [toChild[1], fromChild[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)  // its own group, so a timeout kills what it forked
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else {
            close(toChild[1])
            close(fromChild[0])
            throw CNIError(.ioFailure, "cannot run \(path): \(String(cString: strerror(spawned)))")
        }

        var stdinOpen = true, written = 0, output: [UInt8] = [], status: Int32?
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = monotonicNanoseconds() + Int(timeout) * 1_000_000_000
        func finishInput() { if stdinOpen { close(toChild[1]); stdinOpen = false } }
        if input.isEmpty { finishInput() }
        var failure: CNIError?
        while true {
            var fds = [pollfd(fd: fromChild[0], events: Int16(POLLIN), revents: 0)]
            if stdinOpen { fds.append(pollfd(fd: toChild[1], events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0, errno != EINTR { failure = CNIError(.ioFailure, "poll: \(String(cString: strerror(errno)))"); break }
            if stdinOpen, fds.count > 1, fds[1].revents != 0 {
                let n = input.withUnsafeBytes { write(toChild[1], $0.baseAddress! + written, $0.count - written) }
                if n > 0 { written += n }
                if written == input.count || (n < 0 && errno != EAGAIN && errno != EINTR) { finishInput() }
            }
            var eof = false
            if fds[0].revents != 0 {
                let n = read(fromChild[0], &buffer, buffer.count)
                if n > 0 { output += buffer[0..<n] } else if n == 0 || (errno != EAGAIN && errno != EINTR) { eof = true }
                if output.count > outputLimit { failure = CNIError(.ioFailure, "\(path) printed more than \(outputLimit >> 20) MiB"); break }
            }
            // Done at the end of its output, or once it has exited and nothing more is ready
            // (a child it left in the background may hold the pipe open).
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = exitStatus(raw) }
            }
            if eof || (status != nil && ready == 0) { break }
            if monotonicNanoseconds() >= deadline { failure = CNIError(.ioFailure, "\(path) did not finish within \(timeout) s"); break }
        }
        finishInput()
        close(fromChild[0])
        // Its output ended: it is exiting. It gets until the deadline to do so.
        while failure == nil, status == nil {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status = exitStatus(raw); break }
            if monotonicNanoseconds() >= deadline { failure = CNIError(.ioFailure, "\(path) did not finish within \(timeout) s") }
            usleep(1000)
        }
        if failure != nil { kill(-pid, SIGKILL) }
        if status == nil {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
            status = exitStatus(raw)
        }
        if let failure { throw failure }
        return (status ?? 1, output)
    }

    private static func monotonicNanoseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// The shell's convention: the exit code, or 128 + the signal that ended it.
    private static func exitStatus(_ raw: Int32) -> Int32 { (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f) }
}
