import ArgumentParser
import Foundation
import MizarAPI
import MizarClient

/// One row of `mizarctl top`: a local endpoint or a plugin of a chain, with its rates.
struct TopRow: Encodable, Equatable {
    var name: String
    var packetsPerSecond: Double
    var bytesPerSecond: Double
    var dropsPerSecond: Double
}

/// One refresh of `mizarctl top` (a line of `-o json`).
struct TopView: Encodable {
    var interval: Double
    var endpoints: [TopRow]
    var plugins: [TopRow]

    /// What the views rank by.
    enum Order: String, ExpressibleByArgument, CaseIterable {
        case packets, bytes, drops

        func key(_ row: TopRow) -> Double {
            switch self {
            case .packets: row.packetsPerSecond
            case .bytes: row.bytesPerSecond
            case .drops: row.dropsPerSecond
            }
        }
    }

    /// The rates between two samples `interval` seconds apart (zeros are left out of a sample:
    /// a row missing from the first started from 0), busiest by `order` first, ties by name.
    init(from before: Counters, to after: Counters, interval: Double, limit: Int, order: Order) {
        self.interval = interval
        func rate(_ now: UInt64, _ then: UInt64) -> Double { Double(now >= then ? now - then : now) / interval }  // down: reset, count from 0
        func rows(_ now: [String: Totals], _ then: [String: Totals]) -> [TopRow] {
            let all = now.map { name, t -> TopRow in
                let was = then[name] ?? Totals()
                return TopRow(name: name, packetsPerSecond: rate(t.packets, was.packets), bytesPerSecond: rate(t.bytes, was.bytes),
                              dropsPerSecond: rate(t.drops, was.drops))
            }
            return Array(all.sorted { (order.key($0), $1.name) > (order.key($1), $0.name) }.prefix(limit))
        }
        endpoints = rows(Totals.endpoints(after), Totals.endpoints(before))
        plugins = rows(Totals.plugins(after), Totals.plugins(before))
    }

    /// What one thing moved in all: packets and bytes through it, packets it dropped.
    struct Totals {
        var packets: UInt64 = 0, bytes: UInt64 = 0, drops: UInt64 = 0

        /// Per local endpoint: sent and received; drops the agent's.
        static func endpoints(_ c: Counters) -> [String: Totals] {
            (c.endpoints ?? [:]).mapValues { e in
                Totals(packets: (e["sent"]?.packets ?? 0) &+ (e["received"]?.packets ?? 0), bytes: (e["sent"]?.bytes ?? 0) &+ (e["received"]?.bytes ?? 0),
                       drops: e["dropped"]?.packets ?? 0)
            }
        }

        /// Per `hook/plugin`: every verdict (reasons are counted beside them), drops those of `drop` and `aborted`.
        static func plugins(_ c: Counters) -> [String: Totals] {
            var out: [String: Totals] = [:]
            for (hook, plugins) in c.plugins {
                for (plugin, counts) in plugins {
                    var t = Totals()
                    for verdict in Counters.pluginVerdicts { t.packets &+= counts[verdict]?.packets ?? 0; t.bytes &+= counts[verdict]?.bytes ?? 0 }
                    t.drops = (counts["drop"]?.packets ?? 0) &+ (counts["aborted"]?.packets ?? 0)
                    out["\(hook)/\(plugin)"] = t
                }
            }
            return out
        }
    }
}

struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live view of the busiest local endpoints and plugins: packets, bytes and drops per second.",
        discussion: """
            Refreshes every --interval seconds until Ctrl-C (or after --count views). Endpoints count the packets they \
            sent and received, plugins the packets they judged; drops are the agent's (an endpoint) or the plugin's \
            (`drop` and `aborted` verdicts). Rows are ranked by --sort (packets/s; `drops` finds what drops most). \
            `-o json` prints one JSON object per view.
            """)

    @Option(help: "Seconds between views (0.2 to 60).") var interval: Double = 1
    @Option(help: "Rows of each table.") var limit = 10
    @Option(help: "Views to show, then exit (0: until interrupted).") var count = 0
    @Option(help: "Rank rows by packets, bytes or drops per second.") var sort: TopView.Order = .packets
    @Option(name: .shortAndLong, help: "table or json.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if !(0.2...60).contains(interval) { throw ValidationError("--interval takes 0.2 to 60 seconds") }
        if limit < 1 { throw ValidationError("--limit takes 1 or more") }
        if count < 0 { throw ValidationError("--count takes 0 (until interrupted) or more") }
        if output == .yaml { throw ValidationError("top prints a table or json") }
    }

    func run() async throws {
        try await withClient(connection) { client in
            let live = output == .table && isatty(STDOUT_FILENO) == 1
            let clock = ContinuousClock()
            var before = try await client.counters(), sampled = clock.now, shown = 0
            if live { print("\u{1B}[H\u{1B}[2Jsampling for \(interval) s…") }
            while count == 0 || shown < count {
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                let after = try await client.counters(), now = clock.now
                // Rates over the time that really passed between the samples (requests take time too).
                let elapsed = (now - sampled) / .seconds(1)
                let view = TopView(from: before, to: after, interval: elapsed, limit: limit, order: sort)
                before = after
                sampled = now
                shown += 1
                guard output == .table else {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(view), as: UTF8.self))
                    continue
                }
                // On a terminal each view replaces the last; piped, they follow one another.
                print(live ? "\u{1B}[H\u{1B}[2J" : (shown > 1 ? "\n" : ""), terminator: "")
                print(String(format: "over %.2f s", elapsed) + ", by \(sort.rawValue)/s (Ctrl-C ends)")
                func cells(_ r: TopRow) -> [String] {
                    [r.name, String(format: "%.1f", r.packetsPerSecond), String(format: "%.0f", r.bytesPerSecond), String(format: "%.1f", r.dropsPerSecond)]
                }
                printTable(["ENDPOINT", "PACKETS/S", "BYTES/S", "DROPS/S"], view.endpoints.map(cells))
                if view.endpoints.isEmpty { print("(no local endpoint with a counter slot)") }
                print("")
                printTable(["PLUGIN", "PACKETS/S", "BYTES/S", "DROPS/S"], view.plugins.map(cells))
                if view.plugins.isEmpty { print("(no plugin in a chain)") }
                fflush(stdout)
            }
        }
    }
}
