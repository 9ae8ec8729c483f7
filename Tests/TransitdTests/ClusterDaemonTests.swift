import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// transitd in cluster mode: three droplets whose daemons share one real etcd (in its own
/// namespace on the underlay). What is applied through any of them reaches all of them.
@Suite("transitd: cluster mode on etcd", .serialized)
struct ClusterDaemonTests {
    static func lab(_ droplets: [String] = ["hosta", "hostb", "hostc"], members: Int = 1, leaseTTL: Int = 3) async throws -> ClusterLab {
        let lab = try ClusterLab(droplets: droplets, etcdMembers: members, leaseTTL: leaseTTL, transitd: Binaries.transitd, bpfDir: TestPaths.bpfDir)
        do { try lab.start() } catch {
            lab.teardown()
            throw error
        }
        // Every droplet registered and seen by every other before a test applies anything.
        for host in droplets where !(await eventually { try await live(lab, via: host) == Set(droplets) }) {
            lab.teardown()
            throw BedError("\(host) does not see every droplet live")
        }
        return lab
    }

    /// VPC v1 divided by hostb and network n1 (10.1.0.0/24) bounced by hostb, applied through hosta.
    static let manifest = """
        apiVersion: mizar.com/v1
        kind: VPC
        metadata: {name: v1}
        spec: {vni: 100, dividers: [hostb]}
        ---
        apiVersion: mizar.com/v1
        kind: Network
        metadata: {name: n1}
        spec: {vpc: v1, cidr: 10.1.0.0/24, bouncers: [hostb]}
        """

    /// Creates endpoint `name` on `host` (through its own transitd) in a new namespace; returns the namespace and address.
    static func plug(_ lab: ClusterLab, _ name: String, on host: String, network: String = "n1") async throws -> (Netns, IPv4Address) {
        let netns = try lab.daemons.endpointNamespace(name)
        let stored = try await lab.host(host).client.put(.endpoint(Endpoint(name: name, spec: EndpointSpec(network: network, netns: netns.path))))
        guard case .endpoint(let e) = stored, let ip = e.spec.ip else { throw BedError("\(name) came back without an address: \(stored)") }
        return (netns, ip)
    }

    /// The manifest applied through hosta, a1 plugged on hosta and c1 on hostc, both in hostb's
    /// table: where most of these tests start. Returns a1's namespace and c1's address.
    static func twoEndpoints(_ lab: ClusterLab) async throws -> (a1: Netns, c1ip: IPv4Address) {
        let applied = try lab.daemons.mizarctl("hosta", ["apply", "-f", "-"], stdin: manifest)
        guard applied.status == 0 else { throw BedError("apply: \(applied.output)\(applied.error)") }
        let (a1, _) = try await plug(lab, "a1", on: "hosta")
        let (_, c1ip) = try await plug(lab, "c1", on: "hostc")
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 2, "hostb holds both when the calls return")
        return (a1, c1ip)
    }

    /// Sends `body` from hosta to `to`'s peer socket as one push datagram signed with `key`
    /// (hex; nil: the cluster's secret, read from etcd), sent `age` seconds ago, and returns
    /// the answer's body (outcome, droplet, "\n", reason) when it is signed with the same key
    /// and nonce, else "none". With `times` > 1 the same datagram goes again after each answer
    /// (the last answer is returned).
    static func push(_ lab: ClusterLab, to: String, body: String, key: String? = nil, age: Double = 0, times: Int = 1) throws -> String {
        let json = try lab.etcd.etcdctl(["get", "/mizar/v1/cluster/secret", "-w", "json"]).output
        guard let range = json.range(of: #""value":"([^"]+)""#, options: .regularExpression),
              let secret = Data(base64Encoded: String(json[range].dropFirst(9).dropLast())) else { throw BedError("no secret: \(json)") }
        let script = """
            import hmac, hashlib, os, socket, struct, sys, time
            key = bytes.fromhex(sys.argv[1]); body = sys.stdin.buffer.read()
            head = b"P" + os.urandom(8) + struct.pack(">q", int((time.time() - float(sys.argv[3])) * 1000))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
            answer = "none"
            for _ in range(int(sys.argv[4])):
                s.sendto(head + hmac.new(key, head + body, hashlib.sha256).digest() + body, (sys.argv[2], 7947))
                try:
                    r = s.recvfrom(70000)[0]
                    signed = r[:9] == b"R" + head[1:9] and hmac.compare_digest(r[17:49], hmac.new(key, r[:17] + r[49:], hashlib.sha256).digest())
                    answer = r[49:].decode() if signed else "none"
                except socket.timeout:
                    answer = "none"
            sys.stdout.write(answer)
            """
        return try runCommand(["python3", "-c", script, key ?? secret.map { String(format: "%02x", $0) }.joined(), "\(lab.host(to).ip)", "\(age)", "\(times)"],
                              in: lab.host("hosta").netns, input: body).output
    }

    /// Through hosta: network n2 (10.2.0.0/24) bounced by hostb, and a2 on hosta in it.
    static func addNetworkBouncedByHostb(_ lab: ClusterLab) async throws {
        let n2 = try lab.daemons.mizarctl("hosta", ["apply", "-f", "-"], stdin: """
            apiVersion: mizar.com/v1
            kind: Network
            metadata: {name: n2}
            spec: {vpc: v1, cidr: 10.2.0.0/24, bouncers: [hostb]}
            """)
        #expect(n2.status == 0, "\(n2.output)\(n2.error)")
        _ = try await plug(lab, "a2", on: "hosta", network: "n2")
    }

    /// The value of the sample `series` (name and labels, as Prometheus prints them) in `host`'s /metrics, nil when absent.
    static func metric(_ lab: ClusterLab, _ host: String, _ series: String) throws -> Double? {
        let text = try runCommand(["curl", "-sf", "--unix-socket", lab.host(host).socket, "http://transitd/metrics"]).output
        return text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Polls `condition` for at most `seconds`; false if it never held.
    static func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if (try? await condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(50))
        } while Date() < deadline
        return false
    }

    static func names(_ resources: [AnyResource]) -> Set<String> { Set(resources.map(\.name)) }

    static func live(_ lab: ClusterLab, via host: String) async throws -> Set<String> {
        Set(try await lab.host(host).client.list(.droplet).compactMap { if case .droplet(let d) = $0, d.status?.live == true { d.name } else { nil } })
    }

    @Test func endpointsOnThreeDropletsMeetThroughEtcd() async throws {
        let lab = try await Self.lab()
        defer { lab.teardown() }
        // Every droplet registers itself: each sees all three, alive.
        for host in ["hosta", "hostb", "hostc"] {
            #expect(await Self.eventually { try await Self.live(lab, via: host) == ["hosta", "hostb", "hostc"] }, "droplets seen by \(host)")
        }
        let applied = try lab.daemons.mizarctl("hosta", ["apply", "-f", "-"], stdin: Self.manifest)
        #expect(applied.status == 0 && applied.output.contains("network/n1 created"), "\(applied.output)\(applied.error)")

        // Endpoints created on two droplets, each through its own transitd, take different addresses.
        let (a1, a1ip) = try await Self.plug(lab, "a1", on: "hosta")
        let (c1, c1ip) = try await Self.plug(lab, "c1", on: "hostc")
        #expect(a1ip != c1ip)
        // hostb, the bouncer, held each endpoint before its ADD returned: no waiting here.
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 2, "hostb's endpoint table when the calls returned")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(c1ip)"], in: a1).output.contains("3 received"), "a1 -> c1")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(a1ip)"], in: c1).output.contains("3 received"), "c1 -> a1")
        for host in ["hosta", "hostb", "hostc"] {
            #expect(await Self.eventually { Self.names(try await lab.host(host).client.list(.endpoint)) == ["a1", "c1"] }, "endpoints seen by \(host)")
        }
        let keys = try lab.etcd.etcdctl(["get", "--prefix", "--keys-only", "/mizar/v1/"]).output
        #expect(keys.contains("/mizar/v1/endpoints/c1") && keys.contains("/mizar/v1/addresses/v1/\(c1ip)") && keys.contains("/mizar/v1/live/hostc"), "\(keys)")

        // /metrics: etcd's latency by operation, and the push of a1 to hostb that held.
        #expect(try Self.metric(lab, "hosta", #"mizar_store_requests_total{operation="kv_txn",outcome="answered"}"#) ?? 0 >= 2)
        #expect(try Self.metric(lab, "hosta", #"mizar_store_request_duration_seconds_count{operation="kv_txn"}"#) ?? 0 >= 2)
        #expect(try Self.metric(lab, "hosta", #"mizar_peer_pushes_total{outcome="held"}"#) == 1, "a1's push to hostb")
        #expect(try Self.metric(lab, "hostc", #"mizar_peer_pushes_total{outcome="held"}"#) == 1, "c1's push to hostb")

        // A push not signed with the cluster's secret, or sent more than 30 s ago, changes
        // nothing on a bouncer and gets no answer.
        let dropped = try Self.metric(lab, "hostb", #"mizar_peer_pushes_taken_total{outcome="dropped"}"#) ?? 0
        let forged = #"{"from":"hosta","to":["hostb"],"revision":999999,"events":[{"key":"/mizar/v1/endpoints/x","value":"e30="}]}"#
        #expect(try Self.push(lab, to: "hostb", body: forged, key: String(repeating: "ab", count: 32)) == "none", "a forged push")
        #expect(try Self.push(lab, to: "hostb", body: forged, age: 31) == "none", "a push 31 s old")
        #expect(try Self.metric(lab, "hostb", #"mizar_peer_pushes_taken_total{outcome="dropped"}"#) == dropped + 2)
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 2)

        // Signed with the cluster's secret but stale (older than what hostb has), or for a key
        // that is not an endpoint's: taken by nobody. Every answer names hostb.
        let stale = #"{"from":"hosta","to":["hostb"],"revision":1,"events":[{"key":"/mizar/v1/endpoints/c1"}]}"#
        #expect(try Self.push(lab, to: "hostb", body: stale) == "Nhostb\n", "a stale delete of c1")
        let live = #"{"from":"hosta","to":["hostb"],"revision":999999999,"events":[{"key":"/mizar/v1/live/hosta"}]}"#
        // Sent twice (its answer lost, say), it is answered twice and taken once.
        let heldBefore = try Self.metric(lab, "hostb", #"mizar_peer_pushes_taken_total{outcome="held"}"#) ?? 0
        #expect(try Self.push(lab, to: "hostb", body: live, times: 2) == "Hhostb\n", "nothing of hostb's tables in it")
        #expect(try Self.metric(lab, "hostb", #"mizar_peer_pushes_taken_total{outcome="held"}"#) == heldBefore + 1, "taken once")
        let wrongPeer = #"{"from":"hosta","to":["hostc"],"revision":999999999,"events":[{"key":"/mizar/v1/endpoints/c1"}]}"#
        #expect(try Self.push(lab, to: "hostb", body: wrongPeer).hasPrefix("Rhostb\npush meant for droplets hostc"), "a push meant for another droplet")
        #expect(try Self.push(lab, to: "hostb", body: "not json").hasPrefix("Rhostb\nnot a push"), "a signed datagram that is not a push")
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 2, "nothing taken")
        #expect(try await Self.live(lab, via: "hostb") == ["hosta", "hostb", "hostc"], "hosta still live on hostb")

        // A plug that fails after etcd committed (its namespace has an eth0 already; the plug
        // and the commit run at once) is taken back: nothing stays in etcd or in hostb's table.
        let taken = try lab.daemons.endpointNamespace("bad")
        #expect(try runCommand(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0x"], in: taken).status == 0)
        await #expect(throws: (any Error).self, "a plug into a namespace whose eth0 is taken") {
            try await lab.host("hosta").client.put(.endpoint(Endpoint(name: "bad", spec: EndpointSpec(network: "n1", netns: taken.path))))
        }
        let after = try lab.etcd.etcdctl(["get", "--prefix", "--keys-only", "/mizar/v1/"]).output
        #expect(!after.contains("endpoints/bad") && after.components(separatedBy: "/mizar/v1/addresses/").count == 3, "\(after)")
        #expect(await Self.eventually { Self.names(try await lab.host("hostb").client.list(.endpoint)) == ["a1", "c1"] }, "bad gone from hostb")
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 2)

        // A change too large for one datagram (three endpoints with 12 KB of labels each) is
        // pushed as several, and hostb holds all of it when the call returns.
        let pushed = try Self.metric(lab, "hosta", #"mizar_peer_pushes_total{outcome="held"}"#) ?? 0
        var large = ApplyRequest(apply: [])
        for i in 0..<3 {
            let netns = try lab.daemons.endpointNamespace("big\(i)")
            large.apply.append(.endpoint(Endpoint(name: "big\(i)", labels: ["note": String(repeating: "x", count: 12_000)], spec: EndpointSpec(network: "n1", netns: netns.path))))
        }
        _ = try await lab.host("hosta").client.apply(large)
        #expect(try KernelTables(lab.host("hostb").netns).count("endpoints") == 5, "hostb holds the three when the call returns")
        #expect(try Self.metric(lab, "hosta", #"mizar_peer_pushes_total{outcome="held"}"#) ?? 0 >= pushed + 2, "pushed in parts, each held")
        #expect(try Self.metric(lab, "hosta", #"mizar_peer_pushes_total{outcome="failed"}"#) == nil)

        // Another droplet's local details and its droplet resource are its own transitd's.
        let elsewhere = try lab.daemons.mizarctl("hostb", ["apply", "-f", "-"], stdin: """
            apiVersion: mizar.com/v1
            kind: Endpoint
            metadata: {name: evil}
            spec: {network: n1, ip: 10.1.0.200, mac: "02:00:00:00:00:aa", droplet: hosta, netns: /proc/1/ns/net, hostInterface: evilh0}
            """)
        #expect(elsewhere.status != 0 && elsewhere.error.contains("its transitd"), "\(elsewhere.output)\(elsewhere.error)")
        let moved = try lab.daemons.mizarctl("hostb", ["apply", "-f", "-"], stdin: """
            apiVersion: mizar.com/v1
            kind: Droplet
            metadata: {name: hosta}
            spec: {ip: 172.30.0.250, mac: "02:00:00:00:00:bb"}
            """)
        #expect(moved.status != 0 && moved.error.contains("registers itself"), "\(moved.output)\(moved.error)")

        // Deleted through hosta, c1 leaves hostc: its veth goes, traffic stops.
        let deleted = try lab.daemons.mizarctl("hosta", ["delete", "endpoint", "c1"])
        #expect(deleted.status == 0, "\(deleted.output)\(deleted.error)")
        #expect(await Self.eventually { (try? RouteSocket(in: c1).link(named: "eth0")) == nil }, "c1's veth removed by hostc")
        #expect(try runCommand(["ping", "-c", "1", "-W", "1", "\(c1ip)"], in: a1).status != 0)
    }

    /// etcd gone: every data plane forwards on; writes get 503 and change nothing; once etcd
    /// is back, writes go through and reach every droplet.
    @Test func etcdDownKeepsForwardingAndRefusesWrites() async throws {
        let lab = try await Self.lab()
        defer { lab.teardown() }
        let (a1, c1ip) = try await Self.twoEndpoints(lab)

        lab.etcd.stop("etcd1")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(c1ip)"], in: a1).output.contains("3 received"), "forwarding without etcd")
        let a2ns = try lab.daemons.endpointNamespace("a2")
        let refused = try lab.daemons.mizarctl("hosta", ["apply", "-f", "-"], stdin: """
            apiVersion: mizar.com/v1
            kind: Endpoint
            metadata: {name: a2}
            spec: {network: n1, netns: \(a2ns.path)}
            """)
        #expect(refused.status != 0 && refused.error.contains("unavailable"), "\(refused.output)\(refused.error)")
        #expect((try? RouteSocket(in: a2ns).link(named: "eth0")) == nil, "a refused endpoint leaves no veth")
        let health = try await lab.host("hosta").client.health()
        #expect(!health.healthy && health.checks["cluster"]?.contains("unreachable") == true, "\(health)")
        #expect(try Self.metric(lab, "hosta", #"mizar_store_requests_total{operation="kv_txn",outcome="unreachable"}"#) ?? 0 >= 1)

        try lab.etcd.start("etcd1")
        try lab.etcd.awaitHealthy()
        #expect(await Self.eventually(15) { (try? await Self.plug(lab, "a3", on: "hosta")) != nil }, "writes go through again")
        #expect(await Self.eventually(15) { Self.names(try await lab.host("hostc").client.list(.endpoint)).contains("a3") })
        #expect(await Self.eventually(15) { try await lab.host("hosta").client.health().healthy })
    }

    /// A transitd killed with SIGKILL: its droplet forwards on, its lease lapses (others see it
    /// gone); restarted, it takes in what changed meanwhile and is live again.
    @Test func killedTransitdForwardsAndResyncs() async throws {
        let lab = try await Self.lab()
        defer { lab.teardown() }
        let (a1, c1ip) = try await Self.twoEndpoints(lab)

        lab.daemons.stop("hostb", signal: SIGKILL)
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(c1ip)"], in: a1).output.contains("3 received"), "hostb forwards without transitd")
        #expect(await Self.eventually(10) { try await Self.live(lab, via: "hosta") == ["hosta", "hostc"] }, "hostb's lease lapsed")
        // Meanwhile: a network bounced by hostb and an endpoint in it, from hosta.
        try await Self.addNetworkBouncedByHostb(lab)
        try lab.daemons.start("hostb")
        #expect(await Self.eventually { try KernelTables(lab.host("hostb").netns).count("endpoints") == 3 }, "hostb took in a2")
        #expect(Self.names(try await lab.host("hostb").client.list(.network)) == ["n1", "n2"])
        #expect(await Self.eventually { try await Self.live(lab, via: "hostc") == ["hosta", "hostb", "hostc"] }, "hostb live again")
    }

    /// 3 droplets × 50 endpoints created at once, each through its own droplet's transitd:
    /// no address twice, every droplet takes addresses from blocks it claimed (one claim
    /// contended, the rest local); a transitd killed in the middle of its burst leaves no
    /// address held by nothing and no veth of an endpoint that was not stored.
    @Test func parallelAddsNeverShareAnAddress() async throws {
        let lab = try await Self.lab()
        defer { lab.teardown() }
        _ = try lab.daemons.mizarctl("hosta", ["apply", "-f", "-"], stdin: Self.manifest)
        let hosts = ["hosta", "hostb", "hostc"], perHost = 50
        var namespaces: [String: Netns] = [:]
        for host in hosts { for i in 0..<perHost { namespaces["\(host)-\(i)"] = try lab.daemons.endpointNamespace("\(host)-\(i)") } }
        #expect(await Self.eventually { Self.names(try await lab.host("hostc").client.list(.network)) == ["n1"] })
        let outcomes = await withTaskGroup(of: (String, String?).self) { group in
            for host in hosts {
                for i in 0..<perHost {
                    let name = "\(host)-\(i)", path = namespaces[name]!.path
                    let client = MizarClient(server: .unixSocket(lab.host(host).socket), timeout: .seconds(10))
                    group.addTask {
                        do {
                            _ = try await client.put(.endpoint(Endpoint(name: name, spec: EndpointSpec(network: "n1", netns: path))))
                            return (name, nil)
                        } catch { return (name, "\(error)") }
                    }
                }
            }
            // hostc dies in the middle of its burst.
            try? await Task.sleep(for: .milliseconds(150))
            lab.daemons.stop("hostc", signal: SIGKILL)
            var all: [(String, String?)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        let failed = outcomes.filter { $0.1 != nil }
        #expect(failed.allSatisfy { $0.0.hasPrefix("hostc") }, "only the killed droplet's requests may fail: \(failed.prefix(3))")
        try lab.daemons.start("hostc")

        let endpoints = try await lab.host("hostb").client.list(.endpoint).compactMap { if case .endpoint(let e) = $0 { e } else { nil } }
        let addresses = endpoints.compactMap(\.spec.ip)
        #expect(Set(addresses).count == addresses.count, "an address twice: \(addresses.sorted())")
        #expect(endpoints.filter { !$0.name.hasPrefix("hostc") }.count == 2 * perHost)
        // Every address key names its endpoint, and nothing else is held.
        let held = try lab.etcd.etcdctl(["get", "--prefix", "/mizar/v1/addresses/"]).output.split(separator: "\n").count / 2
        #expect(held == endpoints.count, "\(held) addresses held for \(endpoints.count) endpoints")
        // Blocks: each droplet's addresses come from its own blocks.
        let blocks = try lab.etcd.etcdctl(["get", "--prefix", "/mizar/v1/blocks/n1/"]).output.split(separator: "\n").map(String.init)
        var owner: [UInt32: String] = [:]
        for i in stride(from: 0, to: blocks.count - 1, by: 2) {
            if let ip = IPv4Address(String(blocks[i].split(separator: "/").last ?? "")) { owner[ip.value] = blocks[i + 1] }
        }
        for e in endpoints {
            let base = e.spec.ip!.value & ~UInt32(63)
            #expect(owner[base] == e.spec.droplet, "\(e.name) at \(e.spec.ip!) in a block of \(owner[base] ?? "nobody")")
        }
        // hostc, restarted, plugs what was stored and nothing else.
        let mine = Set(endpoints.filter { $0.spec.droplet == "hostc" }.map(\.name))
        for (name, netns) in namespaces where name.hasPrefix("hostc") {
            let plugged = (try? RouteSocket(in: netns).link(named: "eth0")) != nil
            #expect(plugged == mine.contains(name), "\(name): plugged \(plugged), stored \(mine.contains(name))")
        }
    }

    /// A member of a 3-member etcd killed: writes and watches move to the others, nothing stops.
    @Test func etcdMemberLossInterruptsNothing() async throws {
        let lab = try await Self.lab(members: 3)
        defer { lab.teardown() }
        let (a1, c1ip) = try await Self.twoEndpoints(lab)

        // Every client prefers the first member: it is the one to lose.
        lab.etcd.stop("etcd1")
        // When etcd1 led, etcd itself takes no write until the other two elect a leader (a write
        // then gets a clear 503): what is tested is that requests move to the other members.
        try lab.etcd.awaitHealthy()
        _ = try await Self.plug(lab, "a2", on: "hosta")
        #expect(await Self.eventually { try KernelTables(lab.host("hostb").netns).count("endpoints") == 3 }, "hostb's watch moved on")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(c1ip)"], in: a1).output.contains("3 received"))
        #expect(try await lab.host("hostc").client.health().healthy)
    }

    /// A member that hangs (frozen: its connections open, nothing answered) under the watch
    /// of every droplet: each notices its watch delivers nothing while etcd has newer writes,
    /// and follows again from another member. hostc, no bouncer, learns of a2 only that way.
    @Test func watchOnAHungMemberMovesOn() async throws {
        let lab = try await Self.lab(members: 3)
        defer { lab.teardown() }
        _ = try await Self.twoEndpoints(lab)
        // Every client prefers the first member: it is the one to hang.
        lab.etcd.freeze("etcd1")
        defer { lab.etcd.thaw("etcd1") }
        _ = try await Self.plug(lab, "a2", on: "hosta")
        #expect(await Self.eventually(20) { Self.names(try await lab.host("hostc").client.list(.endpoint)).contains("a2") }, "hostc's watch moved on")
        #expect(lab.host("hostc").log.contains("the watch delivers nothing"), "hostc says why")
    }

    /// A change waiting on etcd is not read back: until etcd answers (here it does not: its
    /// member hangs, and the change ends in a 503), GET and list answer with what was
    /// committed — no new endpoint, the old labels.
    @Test func readsSeeOnlyCommittedChanges() async throws {
        let lab = try await Self.lab()
        defer { lab.teardown() }
        _ = try await Self.twoEndpoints(lab)
        let hosta = lab.host("hosta").client
        guard case .endpoint(var a1) = try await hosta.get(.endpoint, "a1") else { throw BedError("a1 is not an endpoint") }
        a1.status = nil
        a1.metadata.labels = ["tier": "new"]
        let a2 = Endpoint(name: "a2", spec: EndpointSpec(network: "n1", netns: try lab.daemons.endpointNamespace("a2").path))
        lab.etcd.freeze("etcd1")
        var thawed = false
        defer { if !thawed { lab.etcd.thaw("etcd1") } }
        let write = Task { try await hosta.apply(ApplyRequest(apply: [.endpoint(a1), .endpoint(a2)])) }
        try await Task.sleep(for: .seconds(1))
        await #expect(throws: APIError.self, "a2 is not committed") { try await hosta.get(.endpoint, "a2") }
        #expect(Self.names(try await hosta.list(.endpoint)) == ["a1", "c1"])
        guard case .endpoint(let read) = try await hosta.get(.endpoint, "a1") else { throw BedError("a1 is not an endpoint") }
        #expect(read.metadata.labels?["tier"] == nil, "a1's new labels are not committed")
        let refused = await write.result
        #expect((try? refused.get()) == nil, "etcd never answered: the write fails")
        // Thawed, etcd may still apply the request it had taken in (the 503 says so; the watch
        // then brings it back). Committed, labels are read back; a change of labels alone is a change.
        lab.etcd.thaw("etcd1")
        thawed = true
        a1.metadata.labels = ["tier": "newer"]
        let relabeled = try await hosta.apply(ApplyRequest(apply: [.endpoint(a1)]))
        #expect(relabeled.items.map(\.action) == ["configured"])
        guard case .endpoint(let after) = try await hosta.get(.endpoint, "a1") else { throw BedError("a1 is not an endpoint") }
        #expect(after.metadata.labels == ["tier": "newer"])
        // The CNI plugin's own labels stay when a manifest leaves them out (its GC finds attachments by them).
        a1.metadata.labels = ["cni.mizar.com/network": "n1"]
        _ = try await hosta.apply(ApplyRequest(apply: [.endpoint(a1)]))
        a1.metadata.labels = nil
        _ = try await hosta.apply(ApplyRequest(apply: [.endpoint(a1)]))
        guard case .endpoint(let kept) = try await hosta.get(.endpoint, "a1") else { throw BedError("a1 is not an endpoint") }
        #expect(kept.metadata.labels == ["cni.mizar.com/network": "n1"])
    }

    /// A transitd whose watch fell behind history that etcd then compacted: it takes a snapshot
    /// and reconciles its data plane against it (what changed meanwhile reaches its tables).
    @Test func watchResyncsAfterCompaction() async throws {
        let lab = try await Self.lab(leaseTTL: 30)
        defer { lab.teardown() }
        let (a1, c1ip) = try await Self.twoEndpoints(lab)
        // hostb frozen, and etcd restarted meanwhile: hostb's watch is cut where it stood.
        let hostb = try #require(lab.host("hostb").process)
        kill(hostb.processID, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(hostb.processID, SIGCONT) } }
        lab.etcd.stop("etcd1")
        try lab.etcd.start("etcd1")
        try lab.etcd.awaitHealthy()
        // Changes hostb has not seen, then history up to them compacted.
        try await Self.addNetworkBouncedByHostb(lab)
        let compacted = try lab.etcd.etcdctl(["compact", "\(try lab.etcd.revision())"])
        #expect(compacted.status == 0, "\(compacted.error)")
        kill(hostb.processID, SIGCONT)
        resumed = true
        #expect(await Self.eventually(20) { try KernelTables(lab.host("hostb").netns).count("endpoints") == 3 }, "hostb took in a2 from a snapshot")
        #expect(await Self.eventually { lab.host("hostb").log.contains("resynchronized with etcd") }, "\(lab.host("hostb").log.suffix(1500))")
        #expect(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "\(c1ip)"], in: a1).output.contains("3 received"))
    }
}
