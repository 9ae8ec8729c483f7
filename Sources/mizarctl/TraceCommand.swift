import ArgumentParser
import Foundation
import MizarAPI

/// `mizarctl trace`: why a packet was dropped, as the data plane decided it (docs/observability.md).
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Stream the data plane's decisions on matching frames: program or plugin, verdict, reason, VNI, 5-tuple.",
        discussion: """
            Turns tracing on in transitd's droplet for frames matching the filter and prints one line per decision \
            until interrupted (or --count/--seconds): time, droplet, hook and plugin (or the core program), verdict, \
            reason, protocol, addresses and ports, VNI. Events the ring buffer had no room for are reported as \
            `lost N events`. One trace at a time per droplet; tracing stops when mizarctl does.
            """)

    @Option(help: "Only frames from or to this (inner) IPv4 address.") var ip: String?
    @Option(help: "Only frames of this VPC (VNI).") var vni: UInt32?
    @Flag(help: "Only drops (default: every decision on matching frames).") var drops = false
    @Option(help: "One matching frame in N.") var sample: UInt32 = 1
    @Option(help: "Stop after N events.") var count: Int?
    @Option(help: "Stop after S seconds.") var seconds: Double?
    @Option(name: .shortAndLong, help: "text (one line per event) or json (NDJSON, as the API streams it).") var output: TraceFormat = .text
    @OptionGroup var connection: ConnectionOptions

    enum TraceFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func validate() throws {
        if let ip, IPv4Address(ip) == nil { throw ValidationError("--ip \(ip) is not an IPv4 address") }
        if sample == 0 { throw ValidationError("--sample takes 1 or more") }
        if let seconds, !(seconds > 0 && seconds <= 86400) { throw ValidationError("--seconds takes more than 0 and at most 86400") }
        if let count, count < 1 { throw ValidationError("--count takes 1 or more") }
        if let vni, !(1..<(1 << 24)).contains(vni) { throw ValidationError("--vni takes 1 to 16777215") }
    }

    func run() async throws {
        let query = TraceQuery(ip: ip.flatMap(IPv4Address.init), vni: vni, drops: drops, sample: sample, count: count, seconds: seconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try await withClient(connection) { client in
            var lostShown: UInt64 = 0
            for try await record in try await client.trace(query) {
                if output == .json {
                    print(String(decoding: try encoder.encode(record), as: UTF8.self))
                } else if record.verdict != nil || (record.lost ?? 0) > lostShown {
                    print(record.line)
                }
                lostShown = max(lostShown, record.lost ?? 0)
                fflush(stdout)
            }
        }
    }
}
