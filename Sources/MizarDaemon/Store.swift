import Foundation
import GRDB
import MizarAPI

/// transitd's desired state on disk: SQLite through GRDB, written in one transaction per API
/// change. Endpoints, the kind there are 100,000s of, have a table with a column per field
/// (a start reads them without parsing JSON); every other kind is one row of JSON as given,
/// with the defaults transitd filled in. Kernel maps are derived from it, never the other way round.
public final class Store: Sendable {
    public let path: String
    private let pool: DatabasePool

    /// Opens (or creates) `<directory>/transitd.db` in WAL mode and migrates its schema. Not
    /// `durable` (cluster mode, where it is a cache of etcd), a commit does not wait for the disk.
    public init(directory: String, durable: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        path = directory + "/transitd.db"
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        if !durable { configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") } }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Store.migrator.migrate(pool)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "resource") { t in
                t.column("kind", .text).notNull()
                t.column("name", .text).notNull()
                t.column("body", .blob).notNull()
                t.primaryKey(["kind", "name"])
            }
            try db.create(table: "meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("v2-endpoint-columns") { db in
            try db.create(table: "endpoint") { t in
                t.primaryKey("name", .text)
                t.column("labels", .text)
                t.column("network", .text).notNull()
                t.column("ip", .integer)
                t.column("mac", .integer)
                t.column("droplet", .text)
                t.column("netns", .text)
                t.column("interface", .text)
                t.column("hostInterface", .text)
                t.column("agentHook", .text)
            }
            let decoder = JSONDecoder()
            for body in try Data.fetchAll(db, sql: "SELECT body FROM resource WHERE kind = 'Endpoint'") {
                if case .endpoint(let e) = try decoder.decode(AnyResource.self, from: body) { try insert(e, db, schema: 2) }
            }
            try db.execute(sql: "DELETE FROM resource WHERE kind = 'Endpoint'")
        }
        // What an endpoint asks of plugins (bandwidth, port mappings): one JSON column, NULL for most.
        migrator.registerMigration("v3-endpoint-plugins") { db in
            try db.alter(table: "endpoint") { t in t.add(column: "plugins", .text) }
        }
        return migrator
    }

    /// Every stored resource.
    public func load() throws -> [AnyResource] {
        try pool.read { db in
            let decoder = JSONDecoder()
            var resources = try Data.fetchAll(db, sql: "SELECT body FROM resource").map { try decoder.decode(AnyResource.self, from: $0) }
            let rows = try Row.fetchCursor(db, sql: "SELECT name, labels, network, ip, mac, droplet, netns, interface, hostInterface, agentHook, plugins FROM endpoint")
            while let row = try rows.next() {
                let labels: String? = row[1]
                var spec = EndpointSpec(network: row[2], ip: (row[3] as Int64?).map { IPv4Address(value: UInt32(truncatingIfNeeded: $0)) },
                                        mac: (row[4] as Int64?).map { MACAddress(value: UInt64(bitPattern: $0)) }, droplet: row[5],
                                        netns: row[6], interface: row[7], hostInterface: row[8], agentHook: (row[9] as String?).flatMap(AgentHook.init))
                if let plugins = row[10] as String? {
                    let asked = try decoder.decode(EndpointPlugins.self, from: Data(plugins.utf8))
                    spec.bandwidth = asked.bandwidth
                    spec.portMappings = asked.portMappings
                }
                resources.append(.endpoint(Endpoint(name: row[0], labels: try labels.map { try decoder.decode([String: String].self, from: Data($0.utf8)) },
                                                    spec: spec)))
            }
            return resources
        }
    }

    /// Writes `upserts` and removes `deletes` in one transaction: all or nothing.
    public func commit(upserts: [AnyResource], deletes: [ResourceReference]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try pool.write { db in
            for ref in deletes {
                if ref.kind == .endpoint {
                    try db.execute(sql: "DELETE FROM endpoint WHERE name = ?", arguments: [ref.name])
                } else {
                    try db.execute(sql: "DELETE FROM resource WHERE kind = ? AND name = ?", arguments: [ref.kind.rawValue, ref.name])
                }
            }
            let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO resource (kind, name, body) VALUES (?, ?, ?)")
            for resource in upserts {
                if case .endpoint(let e) = resource {
                    try Store.insert(e, db)
                } else {
                    try statement.execute(arguments: [resource.kind.rawValue, resource.name, try encoder.encode(resource)])
                }
            }
        }
    }

    /// Writes an endpoint's row; `schema` 2 is the table before v3 added `plugins` (v2's own migration).
    private static func insert(_ e: Endpoint, _ db: Database, schema: Int = 3) throws {
        let labels = try e.metadata.labels.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let s = e.spec
        var arguments: StatementArguments = [e.name, labels, s.network, s.ip.map { Int64($0.value) }, s.mac.map { Int64(bitPattern: $0.value) }, s.droplet,
                                             s.netns, s.interface, s.hostInterface, s.agentHook?.rawValue]
        guard schema >= 3 else {
            try db.execute(sql: """
                INSERT OR REPLACE INTO endpoint (name, labels, network, ip, mac, droplet, netns, interface, hostInterface, agentHook)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: arguments)
            return
        }
        let plugins = s.bandwidth == nil && s.portMappings == nil ? nil
            : String(decoding: try JSONEncoder().encode(EndpointPlugins(bandwidth: s.bandwidth, portMappings: s.portMappings)), as: UTF8.self)
        arguments += [plugins]
        let statement = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO endpoint (name, labels, network, ip, mac, droplet, netns, interface, hostInterface, agentHook, plugins)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: arguments)
    }

    /// The `plugins` column: what an endpoint asks of plugins.
    private struct EndpointPlugins: Codable {
        var bandwidth: EndpointBandwidth?
        var portMappings: [EndpointPortMapping]?
    }

    /// A bookkeeping value (`initialized`, ...), nil when never set.
    public func meta(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try pool.write { db in try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, value]) }
    }

    /// Resources stored, by kind (for status and health).
    public func count() throws -> [String: Int] {
        try pool.read { db in
            var result: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM resource GROUP BY kind") { result[row["kind"]] = row["n"] }
            result[Kind.endpoint.rawValue] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM endpoint")
            return result
        }
    }
}
