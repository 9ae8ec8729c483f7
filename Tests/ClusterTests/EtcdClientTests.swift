import Foundation
import MizarCluster
import MizarTestSupport
import Testing

/// The etcd client against a real etcd (one member on loopback, private data directory).
@Suite("etcd client", .serialized)
struct EtcdClientTests {
    static func member() throws -> EtcdMembers {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(uniquePrefix()).path
        return try EtcdMembers([(name: "m1", netns: nil, ip: "127.0.0.1")], root: root)
    }

    @Test func keysTransactionsAndPages() async throws {
        let etcd = try Self.member()
        defer { etcd.teardown() }
        let client = try EtcdClient(endpoints: [etcd.clientURLs])
        for i in 0..<25 { try await client.put("/t/k\(String(format: "%02d", i))", Array("v\(i)".utf8)) }
        try await client.put("/u/other", [1])
        // Pages of 10 read at one revision still give every key of the prefix, and only those.
        let (kvs, revision) = try await client.range(prefix: "/t/", pageSize: 10)
        #expect(kvs.count == 25 && kvs.first?.keyString == "/t/k00" && kvs.last?.keyString == "/t/k24")
        #expect(revision >= 26)

        // A transaction holds only when the compared revision is the key's: 0 is "absent".
        let k = try #require(try await client.get("/t/k03"))
        let stale = try await client.txn([.modRevision("/t/k03", equals: k.modRevision - 1)], [.put("/t/k03", [9])])
        #expect(!stale.succeeded)
        let fresh = try await client.txn([.modRevision("/t/k03", equals: k.modRevision), .modRevision("/t/new", equals: 0)],
                                         [.put("/t/k03", [9]), .put("/t/new", [1]), .delete("/t/k04")])
        #expect(fresh.succeeded)
        let k03 = try await client.get("/t/k03"), k04 = try await client.get("/t/k04"), new = try await client.get("/t/new")
        #expect(k03?.value == [9] && k04 == nil && new?.modRevision == fresh.revision)
        let again = try await client.txn([.modRevision("/t/new", equals: 0)], [.put("/t/new", [2])])
        #expect(!again.succeeded, "a create-only write of an existing key fails")
        #expect(try await client.txn([.value("/t/new", equals: [1])], [.delete("/t/new")]).succeeded)
    }

    @Test func leasesExpireTheirKeys() async throws {
        let etcd = try Self.member()
        defer { etcd.teardown() }
        let client = try EtcdClient(endpoints: [etcd.clientURLs])
        let lease = try await client.grantLease(ttl: 2)
        try await client.put("/live/a", [1], lease: lease)
        #expect(try await client.keepAlive(lease) > 0)
        #expect(try await client.get("/live/a")?.lease == lease)
        try await client.revoke(lease)
        #expect(try await client.get("/live/a") == nil)
        #expect(try await client.keepAlive(lease) == 0, "a revoked lease renews to 0")
        let short = try await client.grantLease(ttl: 2)
        try await client.put("/live/b", [1], lease: short)
        try await Task.sleep(for: .seconds(4))
        #expect(try await client.get("/live/b") == nil, "a lease not renewed takes its keys with it")
    }

    @Test func unreachableMembersAreSkippedThenReported() async throws {
        let etcd = try Self.member()
        defer { etcd.teardown() }
        let dead = "http://127.0.0.1:\(etcd.members[0].clientPort + 1)"
        let client = try EtcdClient(endpoints: [dead, etcd.clientURLs])
        try await client.put("/x", [1])
        #expect(try await client.get("/x")?.value == [1], "the second member answered for the first")
        let none = try EtcdClient(endpoints: [dead])
        await #expect(throws: EtcdError.self) { try await none.get("/x") }
        #expect(throws: EtcdError.self) { try EtcdClient(endpoints: ["127.0.0.1:2379"]) }
    }

    /// The follower sees every change once, in order, across a member's restart, and starts
    /// over from a snapshot when the history it needs was compacted.
    @Test func followerResumesAndResyncsAfterCompaction() async throws {
        let etcd = try Self.member()
        defer { etcd.teardown() }
        let client = try EtcdClient(endpoints: [etcd.clientURLs])
        try await client.put("/f/a", [1])
        let seen = Recorder()
        let follower = EtcdFollower(client: client, prefix: "/f/")
        let task = Task { await follower.run(after: nil, onError: { _ in }) { change in await seen.record(change) } }
        defer { task.cancel() }
        try await seen.await { $0.snapshots == 1 }
        try await client.put("/f/b", [2])
        try await client.put("/other", [0])
        try await client.delete("/f/a")
        try await seen.await { $0.state == ["/f/b": [2]] }

        // A member restarted: the watch resumes after the last revision seen, nothing twice.
        etcd.stop("m1")
        try await Task.sleep(for: .milliseconds(300))
        try etcd.start("m1")
        try etcd.awaitHealthy()
        try await client.put("/f/c", [3])
        try await seen.await { $0.state == ["/f/b": [2], "/f/c": [3]] }
        #expect(await seen.replayed == 0)

        // Compacted past where a follower stands: it starts over from a snapshot.
        task.cancel()
        let last = await seen.revision
        try await client.put("/f/d", [4])
        try await client.delete("/f/b")
        try await client.compact(try await client.put("/f/e", [5]))
        let resumed = Task { await follower.run(after: last, onError: { _ in }) { change in await seen.record(change) } }
        defer { resumed.cancel() }
        try await seen.await { $0.snapshots == 2 && $0.state == ["/f/c": [3], "/f/d": [4], "/f/e": [5]] }
    }
}

/// What a follower handed on, applied to a map as a reader would.
actor Recorder {
    var state: [String: [UInt8]] = [:]
    var revision: Int64 = 0
    var snapshots = 0
    /// Events at or before a revision already seen (there must be none).
    var replayed = 0

    func record(_ change: EtcdChange) {
        switch change {
        case .snapshot(let kvs, let at):
            state = Dictionary(uniqueKeysWithValues: kvs.map { ($0.keyString, $0.value) })
            snapshots += 1
            revision = at
        case .events(let events, let at):
            for e in events {
                if e.kv.modRevision <= revision { replayed += 1 }
                state[e.kv.keyString] = e.kind == .delete ? nil : e.kv.value
            }
            revision = at
        }
    }

    /// Waits (at most 10 s) until `condition` holds.
    func await(_ condition: (isolated Recorder) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(self) {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out; state \(state), revision \(revision), snapshots \(snapshots)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// https members: the client trusts the CA it is given, and refuses a member it cannot verify.
@Suite("etcd client over TLS")
struct EtcdTLSTests {
    @Test func httpsMemberWithItsCA() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(uniquePrefix()).path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A CA and a member certificate for 127.0.0.1, made with openssl.
        let script = """
            set -e
            cd \(root)
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout member.key -out member.csr -subj /CN=etcd 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            openssl x509 -req -in member.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out member.pem -days 1 -extfile ext.cnf 2>/dev/null
            """
        let made = try runCommand(["sh", "-c", script])
        #expect(made.status == 0, "\(made.error)")
        let etcd = try EtcdMembers([(name: "m1", netns: nil, ip: "127.0.0.1")], root: root + "/data",
                                   tls: (certificate: root + "/member.pem", key: root + "/member.key", ca: root + "/ca.pem"))
        defer { etcd.teardown() }
        #expect(etcd.clientURLs.hasPrefix("https://"))
        let client = try EtcdClient(endpoints: [etcd.clientURLs], caFile: root + "/ca.pem")
        try await client.put("/tls/k", [7])
        #expect(try await client.get("/tls/k")?.value == [7])
        // Without the CA the member's certificate is not trusted: nothing is sent.
        let untrusting = try EtcdClient(endpoints: [etcd.clientURLs])
        await #expect(throws: EtcdError.self) { try await untrusting.get("/tls/k") }
    }
}
