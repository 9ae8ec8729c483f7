import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing

/// Many clients at once: requests are applied one at a time, and the store and the kernel
/// end up saying the same thing.
@Suite("transitd under concurrent clients", .serialized)
struct ConcurrencyTests {
    @Test func fiftyClientsLeaveStoreAndMapsEqual() async throws {
        let lab = try DaemonLab.running(["hosta"])
        defer { lab.teardown() }
        let socket = lab.host("hosta").socket
        _ = try await lab.host("hosta").client.apply(ApplyRequest(apply: [
            .droplet(Droplet(name: "far", spec: DropletSpec(ip: IPv4Address(172, 30, 0, 99), mac: MACAddress("02:00:00:00:00:63")!))),
            .vpc(VPC(name: "v1", spec: VPCSpec(vni: 100))),
            .network(Network(name: "n1", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.1.0.0/16")!))),
        ]))
        func endpoint(_ client: Int, _ i: Int) -> AnyResource {
            let n = client * 10 + i
            return .endpoint(Endpoint(name: "c\(client)-\(i)", spec: EndpointSpec(network: "n1", ip: IPv4Address(value: 0x0a01_0100 + UInt32(n)),
                                                                                 mac: MACAddress(value: 0x0200_0000_1000 + UInt64(n)), droplet: "far")))
        }
        // Each client adds 6 endpoints one by one, deletes 3 of them, and re-puts one (idempotent);
        // two clients also race for the same address (one must get 409).
        let outcomes = try await withThrowingTaskGroup(of: [String].self) { group in
            for c in 0..<50 {
                group.addTask {
                    let client = MizarClient(server: .unixSocket(socket))
                    var log: [String] = []
                    for i in 0..<6 { _ = try await client.put(endpoint(c, i)) }
                    for i in [1, 3, 5] { _ = try await client.delete(.endpoint, "c\(c)-\(i)") }
                    _ = try await client.put(endpoint(c, 0))
                    if c < 2 {
                        let clash = Endpoint(name: "clash-\(c)", spec: EndpointSpec(network: "n1", ip: IPv4Address("10.1.200.1"),
                                                                                    mac: MACAddress("02:00:00:00:20:01")!, droplet: "far"))
                        do { _ = try await client.put(.endpoint(clash)); log.append("won") } catch let error as APIError { log.append(error.code) }
                    }
                    return log
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(outcomes.sorted() == ["conflict", "won"], "\(outcomes)")

        let stored = try await lab.host("hosta").client.list(.endpoint)
        #expect(stored.count == 50 * 3 + 1)
        let table = try KernelTables(lab.host("hosta").netns)
        #expect(table.count("endpoints") == stored.count, "store \(stored.count), kernel \(table.count("endpoints"))")
        // The same addresses on both sides: keys are {vni, ip} in the kernel's dump.
        let kernelIPs = Set(table.maps["endpoints"]!.compactMap { entry -> UInt32? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(entry.utf8)) as? [String: Any],
                  let key = (object["formatted"] as? [String: Any])?["key"] as? [String: Any], let ip = key["ip"] as? Int else { return nil }
            return UInt32(ip).byteSwapped
        })
        let storedIPs = Set(stored.compactMap { r -> UInt32? in if case .endpoint(let e) = r { e.spec.ip?.value } else { nil } })
        #expect(kernelIPs == storedIPs)
    }
}
