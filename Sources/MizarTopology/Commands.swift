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
public func runCommand(_ arguments: [String], in netns: Netns? = nil, timeout: TimeInterval = 60) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = (netns.map { ["nsenter", "--net=\($0.path)"] } ?? []) + arguments
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-cmd-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let outData = (try? Data(contentsOf: outURL)) ?? Data(), errData = (try? Data(contentsOf: errURL)) ?? Data()
    return CommandResult(status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self), error: String(decoding: errData, as: UTF8.self))
}

/// A command running in the background (a capture, a server, a long ping).
public final class RunningCommand: @unchecked Sendable {
    private let process = Process()
    private let dir: URL

    /// Starts `arguments`, optionally inside `netns` through nsenter.
    public init(_ arguments: [String], in netns: Netns? = nil) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = (netns.map { ["nsenter", "--net=\($0.path)"] } ?? []) + arguments
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-bg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["out", "err"] { _ = FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: dir.appendingPathComponent("out"))
        process.standardError = try FileHandle(forWritingTo: dir.appendingPathComponent("err"))
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: dir)
    }

    /// What the command wrote to stderr so far (tcpdump announces itself there).
    public var errorOutput: String {
        String(decoding: (try? Data(contentsOf: dir.appendingPathComponent("err"))) ?? Data(), as: UTF8.self)
    }

    /// Sends SIGINT (tools flush and summarise on it) and waits for the end.
    @discardableResult
    public func interrupt() -> CommandResult {
        if process.isRunning { process.interrupt() }
        return wait()
    }

    /// Waits for the command to end by itself.
    @discardableResult
    public func wait(timeout: TimeInterval = 60) -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let read = { (name: String) in String(decoding: (try? Data(contentsOf: self.dir.appendingPathComponent(name))) ?? Data(), as: UTF8.self) }
        return CommandResult(status: process.terminationStatus, output: read("out"), error: read("err"))
    }
}
