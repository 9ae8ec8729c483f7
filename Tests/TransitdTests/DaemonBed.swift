import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport

extension DaemonLab {
    /// Runs mizarctl against `host`'s transitd.
    func mizarctl(_ host: String, _ arguments: [String], stdin: String? = nil) throws -> CommandResult {
        var args = [Binaries.mizarctl] + arguments + ["--socket", self.host(host).socket]
        if let stdin {
            let file = root + "/stdin-\(UUID().uuidString).yaml"
            try stdin.write(toFile: file, atomically: true, encoding: .utf8)
            args = ["sh", "-c", "exec \"$0\" \"$@\" < \(file)"] + args
        }
        return try runCommand(args)
    }
}

/// The data plane tables of a droplet as the kernel holds them, read with bpftool through
/// the maps of the program attached to its `eth0`: what tests compare before and after.
struct KernelTables: Equatable, CustomStringConvertible {
    var maps: [String: [String]]

    static let names = ["vpcs", "networks", "endpoints"]

    init(_ netns: Netns) throws {
        let net = try runCommand(["bpftool", "-j", "net", "show", "dev", "eth0"], in: netns)
        guard let list = try JSONSerialization.jsonObject(with: Data(net.output.utf8)) as? [[String: Any]],
              let xdp = (list.first?["xdp"] as? [[String: Any]])?.first, let prog = xdp["id"] as? Int else {
            throw BedError("no XDP program on eth0 in \(netns): \(net.output)\(net.error)")
        }
        let show = try runCommand(["bpftool", "-j", "prog", "show", "id", "\(prog)"])
        let ids = (try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any])?["map_ids"] as? [Int] ?? []
        maps = [:]
        for id in ids {
            let info = try JSONSerialization.jsonObject(with: Data(try runCommand(["bpftool", "-j", "map", "show", "id", "\(id)"]).output.utf8)) as? [String: Any]
            guard let name = info?["name"] as? String, KernelTables.names.contains(name) else { continue }
            let dump = try runCommand(["bpftool", "-j", "map", "dump", "id", "\(id)"])
            let entries = (try JSONSerialization.jsonObject(with: Data(dump.output.utf8)) as? [Any]) ?? []
            maps[name] = entries.map { entry in
                String(decoding: (try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
            }.sorted()
        }
        guard Set(maps.keys) == Set(KernelTables.names) else { throw BedError("transit XDP's maps not found: \(maps.keys)") }
    }

    func count(_ map: String) -> Int { maps[map]?.count ?? 0 }
    var description: String { KernelTables.names.map { "\($0): \(count($0)) entries" }.joined(separator: ", ") }
}

struct BedError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
