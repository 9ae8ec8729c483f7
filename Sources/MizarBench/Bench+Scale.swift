import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet

extension MizarBench {
    /// Batch insert of the endpoint table (time, kernel memory) and random-lookup ns per size.
    func scaleMetrics(_ locator: BPFObjectLocator, bpfDir: String) throws -> [BenchMetric] {
        var rows: [(size: Int, seconds: Double, bytes: UInt64, lookupNs: Double, hotNs: Double)] = []
        let me = DropletAddress(ip: IPv4Address(192, 168, 50, 1), mac: MACAddress("02:00:00:00:00:01")!)
        let host = DropletAddress(ip: IPv4Address(192, 168, 50, 2), mac: MACAddress("02:00:00:00:00:02")!)
        for size in tableSizes {
            var limits = DropletLimits()
            limits.endpoints = UInt32(size)
            let droplet = try Droplet(address: me, interface: "lo", ifindex: 1, mtu: 1500, limits: limits, locator: locator)
            try droplet.setVPC(VPC(vni: 100, dividers: []))
            try droplet.setNetwork(Network(vni: 100, cidr: IPv4Interface("10.0.0.0/8")!, bouncers: [me]))
            let endpoints = (0..<size).map { i in
                Endpoint(vni: 100, ip: IPv4Address(value: 0x0a00_0000 + UInt32(i)), mac: MACAddress(value: 0x0200_0000_0000 + UInt64(i)), droplet: host)
            }
            print("scale: batch-inserting \(size) endpoints")
            let start = Date()
            try droplet.setEndpoints(endpoints)
            let seconds = Date().timeIntervalSince(start)
            let bytes = try droplet.maps.endpoints.handle.memoryUsage

            /// ns per lookup over keys spread across `spread` entries (1: one hot key, as within a flow).
            func lookupNs(spread: Int) throws -> Double {
                let lookup = try BPFObject(path: bpfDir + "/tests/endpoint_lookup.bpf.o")
                try lookup.setGlobal("lookup_count", to: UInt32(spread))
                try lookup.reuseMap(MZ_ENDPOINTS_MAP, from: droplet.maps.endpoints.handle)
                try lookup.load()
                let program = try lookup.program(named: "endpoint_lookup")
                let packet = [UInt8](repeating: 0, count: 64)
                guard try program.testRun(packet: packet, repeat: 1000).action == .pass else { throw BenchError("lookups missed keys in a \(size)-entry table") }
                return try median(5) { Double(try program.testRun(packet: packet, repeat: 100_000).nanosecondsPerRun) } / 64
            }
            let random = try lookupNs(spread: size), hot = try lookupNs(spread: 1)
            print(String(format: "  %.2f s, %.1f MiB kernel memory, %.1f ns per random lookup, %.1f ns per hot-key lookup", seconds, Double(bytes) / 1048576, random, hot))
            rows.append((size, seconds, bytes, random, hot))
        }
        guard let base = rows.first else { return [] }
        var metrics: [BenchMetric] = []
        for row in rows.dropFirst() {
            let label = row.size >= 1_000_000 ? "\(row.size / 1_000_000)m" : "\(row.size / 1000)k"
            // Insert time against the 10 s the issue allows for 10M, scaled to the size.
            metrics.append(BenchMetric(name: "endpoint_insert_\(label)_seconds", value: row.seconds, unit: "s",
                                       baselineName: "target_seconds", baselineValue: 10 * Double(row.size) / 10_000_000))
            metrics.append(BenchMetric(name: "endpoint_table_\(label)_mib", value: Double(row.bytes) / 1048576, unit: "MiB",
                                       baselineName: "endpoint_table_\(base.size / 1000)k_mib", baselineValue: Double(base.bytes) / 1048576))
            metrics.append(BenchMetric(name: "endpoint_lookup_random_\(label)_ns", value: row.lookupNs, unit: "ns",
                                       baselineName: "endpoint_lookup_random_\(base.size / 1000)k_ns", baselineValue: base.lookupNs))
            metrics.append(BenchMetric(name: "endpoint_lookup_hot_\(label)_ns", value: row.hotNs, unit: "ns",
                                       baselineName: "endpoint_lookup_hot_\(base.size / 1000)k_ns", baselineValue: base.hotNs))
        }
        return metrics
    }
}
