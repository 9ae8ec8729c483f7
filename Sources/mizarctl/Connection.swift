import ArgumentParser
import Foundation
import MizarAPI
import MizarClient

/// How mizarctl reaches transitd.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "transitd's Unix socket.")
    var socket: String = MizarClient.defaultSocket
    @Option(name: .long, help: "A remote transitd (https://HOST:PORT) instead of the socket; needs --token-file.")
    var server: String?
    @Option(name: .long, help: "File holding the bearer token for --server.")
    var tokenFile: String?
    @Option(name: .long, help: "PEM file of the CA (or self-signed certificate) to trust for --server; default: the system's roots.")
    var cacert: String?

    func validate() throws {
        if server != nil, tokenFile == nil { throw ValidationError("--server needs --token-file") }
        if let server, !server.hasPrefix("https://") { throw ValidationError("--server takes an https:// address: the API is never served in plain HTTP") }
    }

    func client() throws -> MizarClient {
        guard let server, let tokenFile else { return MizarClient(server: .unixSocket(socket)) }
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return MizarClient(server: .https(server, token: token, caFile: cacert))
    }
}

/// Output formats of commands that print resources.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, yaml
}

/// Runs a command's body against transitd and turns failures into mizarctl's exit codes:
/// 1 for an API error (its message printed), 3 when transitd cannot be reached.
func withClient(_ connection: ConnectionOptions, _ body: (MizarClient) async throws -> Void) async throws {
    do {
        try await body(try connection.client())
    } catch let error as MizarClient.PartialApply {
        for item in error.done.items { print("\(item.reference.kind.rawValue.lowercased())/\(item.reference.name) \(item.action)") }
        let message = (error.error as? APIError).map { "\($0.message) (\($0.code))" } ?? "\(error.error)"
        printError("error: \(message); the \(error.done.items.count) resources above were applied, the rest was not")
        throw ExitCode(error.error is MizarClient.Unreachable ? 3 : 1)
    } catch let error as APIError {
        printError("error: \(error.message) (\(error.code))")
        throw ExitCode(1)
    } catch let error as MizarClient.Unreachable {
        let hint = connection.server == nil ? "\nIs transitd running? Start it with: transitd --interface IFNAME (docs/transitd.md)"
            : "\nIs transitd listening there (--listen), and does --cacert name the CA of its certificate?"
        printError("error: \(error)\(hint)")
        throw ExitCode(3)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints values as JSON (sorted keys, indented).
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints rows under a header, columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { i in ([header[i]] + rows.map { i < $0.count ? $0[i] : "" }).map(\.count).max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "   "))
    }
}
