import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// GC, delegated IPAM, 50 containers at once, and a transitd killed in the middle of ADDs:
/// each leaves no endpoint, veth, table entry or address behind.
@Suite("CNI lifecycle", .serialized)
struct CNILifecycleTests {
    /// host-local allocating from a range inside transitd's net0, its files in the test's folder.
    static func hostLocal(_ bed: CNIBed) -> [String: Any] {
        ["ipam": ["type": "host-local", "dataDir": bed.lab.root + "/ipam", "ranges": [[["subnet": "10.20.0.0/16", "rangeStart": "10.20.5.1", "rangeEnd": "10.20.5.100"]]]]]
    }

    /// Addresses host-local holds (one file per address).
    static func hostLocalAddresses(_ bed: CNIBed) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: bed.lab.root + "/ipam/mizarnet")) ?? []).filter { $0.hasPrefix("10.") }.sorted()
    }

    @Test func delegatedIPAMAndGC() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config("1.1.0", Self.hostLocal(bed))
        var addresses: [String: String] = [:]
        for id in ["a", "b", "c"] {
            let ns = try bed.container(id)
            let add = try bed.cni("ADD", container: id, netns: ns.path, config: config)
            #expect(add.status == 0, "\(add)")
            addresses[id] = CNIBed.address(add.json)
            let check = try bed.cni("CHECK", container: id, netns: ns.path, config: bed.config("1.1.0", Self.hostLocal(bed).merging(["prevResult": add.json ?? [:]]) { $1 }))
            #expect(check.status == 0, "\(check)")
        }
        #expect(addresses.values.sorted() == ["10.20.5.1", "10.20.5.2", "10.20.5.3"], "\(addresses)")
        #expect(Self.hostLocalAddresses(bed) == ["10.20.5.1", "10.20.5.2", "10.20.5.3"])
        #expect(try await bed.endpoints().compactMap(\.spec.ip?.description).sorted() == ["10.20.5.1", "10.20.5.2", "10.20.5.3"])

        // transitd refuses the address host-local gives: host-local gets it back.
        _ = try await bed.client.put(.endpoint(Endpoint(name: "squatter", spec: EndpointSpec(network: "net0", ip: IPv4Address("10.20.5.4"),
                                                                                           netns: try bed.container("s").path))))
        let refused = try bed.cni("ADD", container: "d", netns: try bed.container("d").path, config: config)
        #expect(refused.status != 0 && refused.code == 7, "\(refused)")
        #expect(Self.hostLocalAddresses(bed) == ["10.20.5.1", "10.20.5.2", "10.20.5.3"])
        _ = try await bed.client.delete(.endpoint, "squatter")

        // STATUS: Debian's host-local predates the command and is not asked; an IPAM plugin
        // that speaks 1.1.0 is, and its failure is STATUS's.
        #expect(try bed.cni("STATUS", config: config).status == 0)
        let scripts = bed.lab.root + "/ipam-bin"
        try FileManager.default.createDirectory(atPath: scripts, withIntermediateDirectories: true)
        try #"""
            #!/bin/sh
            case "$CNI_COMMAND" in
            VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
            STATUS) echo '{"cniVersion":"1.1.0","code":50,"msg":"pool service down"}'; exit 1 ;;
            *) exit 1 ;;
            esac
            """#.write(toFile: scripts + "/status-ipam", atomically: true, encoding: .utf8)
        chmod(scripts + "/status-ipam", 0o755)
        let delegated = try bed.cni("STATUS", config: bed.config("1.1.0", ["ipam": ["type": "status-ipam"]]), path: scripts)
        #expect(delegated.status != 0 && delegated.code == 50 && (delegated.json?["msg"] as? String)?.contains("pool service down") == true, "\(delegated)")

        // GC keeps what the runtime names; the rest go with their veths and addresses.
        let gc = try bed.cni("GC", config: bed.config("1.1.0", Self.hostLocal(bed).merging(["cni.dev/valid-attachments": [["containerID": "a", "ifname": "eth0"]]]) { $1 }))
        #expect(gc.status == 0 && gc.stdout.isEmpty, "\(gc)")
        let kept = try #require(addresses["a"])
        #expect(try await bed.endpoints().compactMap(\.spec.ip?.description) == [kept])
        #expect(Self.hostLocalAddresses(bed) == [kept])
        #expect(try bed.endpointVeths().count == 1)
        // GC of another CNI network leaves this one's alone; an empty list removes the rest.
        #expect(try bed.cni("GC", config: bed.config("1.1.0", name: "othernet", ["cni.dev/valid-attachments": []])).status == 0)
        #expect(try await bed.endpoints().count == 1)
        #expect(try bed.cni("GC", config: bed.config("1.1.0", Self.hostLocal(bed).merging(["cni.dev/valid-attachments": []]) { $1 })).status == 0)
        #expect(try await bed.endpoints().isEmpty)
        #expect(Self.hostLocalAddresses(bed).isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
        #expect(try bed.kernelEndpointEntries() == 0)
    }

    /// A runtime retrying a sandbox sends DEL then ADD at once: the interface name is free the
    /// moment DEL returns (transitd deletes the old veth in the background).
    @Test func addRightAfterDel() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config()
        let ns = try bed.container("retry")
        for round in 0..<5 {
            let add = try bed.cni("ADD", container: "retry", netns: ns.path, config: config)
            #expect(add.status == 0, "round \(round): \(add)")
            let del = try bed.cni("DEL", container: "retry", netns: ns.path, config: config)
            #expect(del.status == 0, "round \(round): \(del)")
            #expect(try runCommand(["ip", "link", "show", "eth0"], in: ns).status != 0, "eth0 is still there after DEL")
        }
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
    }

    @Test func fiftyParallelAddsThenDels() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config()
        let namespaces = try (0..<50).map { try bed.container("p\($0)") }
        let adds = try parallel(50) { i in try bed.cni("ADD", container: "pod\(i)", netns: namespaces[i].path, config: config) }
        #expect(adds.allSatisfy { $0.status == 0 }, "\(adds.filter { $0.status != 0 })")
        let ips = adds.compactMap { CNIBed.address($0.json) }
        #expect(Set(ips).count == 50, "duplicate addresses: \(ips.sorted())")
        #expect(try await bed.endpoints().count == 50)
        #expect(try bed.endpointVeths().count == 50)
        #expect(try bed.kernelEndpointEntries() == 50)
        // The first and the last reach each other.
        #expect(try pingReplies(runCommand(["ping", "-c", "2", "-i", "0.2", "-W", "2", ips[49]], in: namespaces[0]).output) == 2)

        let dels = try parallel(50) { i in try bed.cni("DEL", container: "pod\(i)", netns: namespaces[i].path, config: config) }
        #expect(dels.allSatisfy { $0.status == 0 }, "\(dels.filter { $0.status != 0 })")
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
        #expect(try bed.kernelEndpointEntries() == 0)
    }

    /// transitd killed while ADDs are in flight: whatever each ADD answered, after a restart
    /// the DELs succeed and nothing is left.
    @Test func transitdKilledDuringAdds() async throws {
        let bed = try CNIBed()
        defer { bed.teardown() }
        let config = bed.config("1.1.0", Self.hostLocal(bed))
        let namespaces = try (0..<12).map { try bed.container("k\($0)") }
        let killer = Thread {
            usleep(150_000)
            bed.lab.stop(bed.host, signal: SIGKILL)
        }
        killer.start()
        let adds = try parallel(12) { i -> CNIBed.Call in
            usleep(UInt32(i) * 25_000)
            return try bed.cni("ADD", container: "k\(i)", netns: namespaces[i].path, config: config)
        }
        while bed.lab.host(bed.host).process?.isRunning == true { usleep(10_000) }
        // Every failure is one a runtime retries or reports; none is a crash of the plugin.
        #expect(adds.allSatisfy { $0.status == 0 || [7, 11].contains($0.code ?? 0) }, "\(adds)")
        #expect(adds.contains { $0.code == 11 }, "the ADDs after the kill failed as transient: \(adds)")
        try bed.lab.start(bed.host)
        for i in 0..<12 {
            let del = try bed.cni("DEL", container: "k\(i)", netns: namespaces[i].path, config: config)
            #expect(del.status == 0, "k\(i): \(del)")
        }
        #expect(try await bed.endpoints().isEmpty)
        #expect(try bed.endpointVeths().isEmpty)
        #expect(try bed.kernelEndpointEntries() == 0)
        #expect(Self.hostLocalAddresses(bed).isEmpty)
    }
}
