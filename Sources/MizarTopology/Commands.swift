import Foundation
import MizarNet

/// The result of a command.
public struct CommandResult: Sendable {
    public var status: Int32
    public var output: String
    public var error: String
}

/// Runs a command to completion, optionally inside `netns` through nsenter.
/// For tests, benchmarks and demos: real tools observe and drive traffic; product code never shells out.
@discardableResult
public func runCommand(_ arguments: [String], in netns: Netns? = nil, environment: [String: String]? = nil, input: String? = nil,
                       timeout: TimeInterval = 60) throws -> CommandResult {
    try RunningCommand(arguments, in: netns, environment: environment, input: input).wait(timeout: timeout)
}

/// A command running in the background (a capture, a server, a long ping).
///
/// Spawned with posix_spawn and an empty signal mask: a child of a threaded test process
/// would otherwise inherit blocked SIGINT/SIGTERM and ignore `interrupt()`.
public final class RunningCommand: @unchecked Sendable {
    private var pid: pid_t = 0
    private var status: Int32?
    private let dir: URL

    /// Starts `arguments`, optionally inside `netns` through nsenter, with `environment` added
    /// to this process's and `input` on stdin (else /dev/null).
    public init(_ arguments: [String], in netns: Netns? = nil, environment: [String: String]? = nil, input: String? = nil) throws {
        let argv = (netns.map { ["nsenter", "--net=\($0.path)"] } ?? []) + arguments
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let stdin = input == nil ? "/dev/null" : dir.appendingPathComponent("in").path
        if let input { try input.write(toFile: stdin, atomically: false, encoding: .utf8) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, dir.appendingPathComponent("out").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, dir.appendingPathComponent("err").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment ?? [:]) { $1 }
        let cEnv = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnv.forEach { free($0) } }
        let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        guard rc == 0 else {
            try? FileManager.default.removeItem(at: dir)
            throw NetError(.system, operation: "run \(argv.joined(separator: " "))", message: String(cString: strerror(rc)))
        }
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = reap(block: true)
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// The process's id.
    public var processID: pid_t { pid }

    /// True until the process has ended.
    public var isRunning: Bool { !reap(block: false) }

    /// Sends `signal` (SIGKILL to test a crash, say) and waits for the end.
    @discardableResult
    public func stop(with signal: Int32, timeout: TimeInterval = 10) -> CommandResult {
        if status == nil { kill(pid, signal) }
        return wait(timeout: timeout)
    }

    /// What the command wrote to stdout so far.
    public var output: String { read("out") }

    /// What the command wrote to stderr so far (tcpdump announces itself there).
    public var errorOutput: String { read("err") }

    /// Sends SIGINT (tools flush and summarise on it) and waits for the end.
    @discardableResult
    public func interrupt(timeout: TimeInterval = 10) -> CommandResult {
        if status == nil { kill(pid, SIGINT) }
        return wait(timeout: timeout)
    }

    /// Waits for the command to end by itself; after `timeout` it is terminated, then killed.
    @discardableResult
    public func wait(timeout: TimeInterval = 60) -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout)
        while !reap(block: false) && Date() < deadline { usleep(10_000) }
        if status == nil {
            kill(pid, SIGTERM)
            for _ in 0..<100 where !reap(block: false) { usleep(10_000) }
        }
        if status == nil {
            kill(pid, SIGKILL)
            _ = reap(block: true)
        }
        return CommandResult(status: status ?? -1, output: read("out"), error: read("err"))
    }

    /// Collects the exit status; true once the process has ended.
    private func reap(block: Bool) -> Bool {
        if status != nil { return true }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, block ? 0 : WNOHANG)
        guard rc == pid else { return rc < 0 }
        // Exit code when it exited, 128 + signal when a signal ended it (as a shell reports).
        status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return true
    }

    private func read(_ name: String) -> String {
        String(decoding: (try? Data(contentsOf: dir.appendingPathComponent(name))) ?? Data(), as: UTF8.self)
    }
}

/// Runs iperf3 from `from` to a one-off server in `to` listening on `server`; returns the
/// JSON report's `end` section.
public func iperf3(from: Netns, to: Netns, server: IPv4Address, seconds: Int = 3, extra: [String] = []) throws -> [String: Any] {
    let listener = try RunningCommand(["iperf3", "-s", "-1", "-B", server.description], in: to)
    defer { listener.interrupt() }
    var result: CommandResult?
    // Retried only while the server is not listening yet (a refused connect fails fast).
    for attempt in 0..<50 {
        if attempt > 0 { usleep(100_000) }
        result = try runCommand(["iperf3", "-c", server.description, "-t", "\(seconds)", "-J", "--connect-timeout", "3000"] + extra,
                                in: from, timeout: Double(seconds + 15))
        guard let r = result, r.status != 0 || r.output.contains("\"error\""), r.output.contains("refused") else { break }
    }
    guard let result, result.status == 0, let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
          let end = json["end"] as? [String: Any] else {
        throw NetError(.system, operation: "iperf3 to \(server)", message: "\(result?.error ?? "") \(result?.output.prefix(300) ?? "")")
    }
    return end
}

/// Average round-trip time in milliseconds of `count` pings, or nil when none came back.
public func pingRTT(from: Netns, to: IPv4Address, count: Int = 50, interval: Double = 0.02) throws -> Double? {
    let output = try runCommand(["ping", "-q", "-c", "\(count)", "-i", "\(interval)", "-W", "1", to.description], in: from).output
    // rtt min/avg/max/mdev = 0.040/0.052/0.090/0.010 ms
    guard let line = output.split(separator: "\n").first(where: { $0.contains("min/avg/max") }),
          let values = line.split(separator: "=").last?.trimmingCharacters(in: .whitespaces).split(separator: "/"), values.count >= 2 else { return nil }
    return Double(values[1])
}

/// The "N received" figure of ping's summary.
public func pingReplies(_ output: String) -> Int {
    let line = output.split(separator: "\n").first { $0.contains("received") } ?? ""
    let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    return Int(fields.first { $0.hasSuffix("received") }?.split(separator: " ").first ?? "0") ?? 0
}

/// Packets device `name` received, read from /proc/net/dev inside `netns` (0 when it is missing).
public func receivedPackets(of name: String, in netns: Netns) throws -> UInt64 {
    let dev = try runCommand(["cat", "/proc/net/dev"], in: netns).output
    guard let line = dev.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name + ":") }) else { return 0 }
    return UInt64(line.split(separator: ":")[1].split(separator: " ")[1]) ?? 0
}

/// ICMP echo requests the IPv4 stack of `netns` has received (`Icmp: InEchos` of /proc/net/snmp):
/// what reached an endpoint, whatever else its interface saw.
public func icmpEchoesReceived(in netns: Netns) throws -> UInt64 {
    let lines = try runCommand(["cat", "/proc/net/snmp"], in: netns).output.split(separator: "\n").filter { $0.hasPrefix("Icmp: ") }
    guard lines.count >= 2, let column = lines[0].split(separator: " ").firstIndex(of: "InEchos") else { return 0 }
    return UInt64(lines[1].split(separator: " ")[column]) ?? 0
}

/// Runs `body(0..<n)` on n threads at once (many clients, many runtimes) and returns the
/// results in order; rethrows the first error.
public func parallel<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let lock = NSLock()
    nonisolated(unsafe) var results = [Result<T, any Error>?](repeating: nil, count: n)
    let group = DispatchGroup()
    for i in 0..<n {
        group.enter()
        Thread {
            let r = Result { try body(i) }
            lock.lock()
            results[i] = r
            lock.unlock()
            group.leave()
        }.start()
    }
    group.wait()
    return try results.map { try $0!.get() }
}

/// Unmounts (lazily) everything mounted below `dir`, deepest first: what a container
/// runtime of a test's own left (overlay snapshots, shm, netns bind mounts).
public func unmountAll(under dir: String) {
    let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
    for line in mounts.split(separator: "\n").reversed() {
        let point = line.split(separator: " ")[1]
        if point.hasPrefix(dir) { _ = umount2(String(point), Int32(MNT_DETACH)) }
    }
}
