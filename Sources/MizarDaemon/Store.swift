import Foundation
import GRDB
import MizarAPI

/// transitd's desired state on disk: SQLite through GRDB, one row per resource (its JSON as
/// given, with the defaults transitd filled in), written in one transaction per API change.
/// Kernel maps are derived from it, never the other way round.
public final class Store: Sendable {
    public let path: String
    private let pool: DatabasePool

    /// Opens (or creates) `<directory>/transitd.db` in WAL mode and migrates its schema.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        path = directory + "/transitd.db"
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
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
        return migrator
    }

    /// Every stored resource, decoded.
    public func load() throws -> [AnyResource] {
        let decoder = JSONDecoder()
        return try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT body FROM resource").map { row in
                try decoder.decode(AnyResource.self, from: row["body"] as Data)
            }
        }
    }

    /// Writes `upserts` and removes `deletes` in one transaction: all or nothing.
    public func commit(upserts: [AnyResource], deletes: [ResourceReference]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let rows = try upserts.map { ($0.kind.rawValue, $0.name, try encoder.encode($0)) }
        try pool.write { db in
            for ref in deletes {
                try db.execute(sql: "DELETE FROM resource WHERE kind = ? AND name = ?", arguments: [ref.kind.rawValue, ref.name])
            }
            let statement = try db.makeStatement(sql: "INSERT OR REPLACE INTO resource (kind, name, body) VALUES (?, ?, ?)")
            for (kind, name, body) in rows { try statement.execute(arguments: [kind, name, body]) }
        }
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
            return result
        }
    }
}
