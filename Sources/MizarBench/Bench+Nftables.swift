import Foundation
import MizarACL
import MizarBPF
import MizarNet
import MizarPacket
import MizarPluginSDK
import MizarTopology

extension MizarBench {
    /// 64-byte UDP from a1 to b1 across the overlay, 10,000 allow rules on b1's side: frames
    /// accepted per second by the acl plugin (hostb's ingress hook) against an nftables
    /// ruleset that says the same (a set of 10,000 source/port pairs, conntrack for the
    /// rest, default drop) in b1's namespace. Same lab, same generator, same run.
    func aclAgainstNftables(_ locator: BPFObjectLocator) throws -> [BenchMetric] {
        let lab = try benchLab(locator)
        defer { lab.teardown() }
        let a1 = lab.guest("a1"), b1 = lab.guest("b1")
        let plugins = lab.host("hostb").dataplane.plugins
        guard try lab.ping(from: "a1", to: b1.ip, count: 2) == 2 else { throw BenchError("ping a1 -> b1 failed") }
        let gateway = try lab.hostSideLink("a1")
        let frame = udp64(srcMAC: a1.mac, dstMAC: gateway.mac!, src: a1.ip, dst: b1.ip)
        let generator = try liveFramesGenerator(locator)
        let eth0 = try RouteSocket(in: a1.netns).link(named: "eth0").index
        /// Accepted frames per second, by whatever `accepted` counts.
        func rate(_ name: String, accepted: () throws -> UInt64) throws -> Double {
            let before = try accepted()
            let start = Date()
            try a1.netns.perform { _ = try generator.runLiveFrames(frame: frame, count: frames, ingressIfindex: UInt32(eth0)) }
            let elapsed = Date().timeIntervalSince(start)
            usleep(300_000)
            let n = try accepted() - before
            print(String(format: "  %@: %llu of %u frames accepted in %.2f s", name, n, frames, elapsed))
            return Double(n) / elapsed
        }

        print("plugins: acl vs nftables, 10,000 rules, \(frames) 64-byte frames each")
        try plugins.register(ACL.descriptor)
        try plugins.configure("acl", aclConfig(rules: 10_000, endpoint: b1.ip, direction: .ingress, first: a1.ip))
        try plugins.setChain(.ingress, ["acl"])
        var acl: [Double] = [], nft: [Double] = []
        let rulesetFile = FileManager.default.temporaryDirectory.appendingPathComponent("mizar-bench-\(getpid()).nft").path
        let allowed: [IPv4Address] = [a1.ip] + (0..<9_999).map(aclBenchRemote)
        try nftablesRuleset(allowed: allowed).write(toFile: rulesetFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: rulesetFile) }
        for _ in 0..<3 {
            try plugins.setChain(.ingress, ["acl"])
            acl.append(try rate("acl") { try plugins.counters("acl", at: .ingress)[.continue].packets })
            try plugins.setChain(.ingress, [])
            let load = try runCommand(["nft", "-f", rulesetFile], in: b1.netns)
            guard load.status == 0 else { throw BenchError("nft: \(load.error)") }
            nft.append(try rate("nftables") { try nftAccepted(in: b1.netns) })
            _ = try runCommand(["nft", "delete", "table", "inet", "mzbench"], in: b1.netns)
        }
        func med(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        return [BenchMetric(name: "acl_10000_rules_udp64_mpps", value: med(acl) / 1e6, unit: "Mpps",
                            baselineName: "nftables_10000_rules_udp64_mpps", baselineValue: med(nft) / 1e6)]
    }

    private func nftablesRuleset(allowed: [IPv4Address]) -> String {
        """
        table inet mzbench {
          set allowed { type ipv4_addr . inet_service; elements = { \(allowed.map { "\($0) . 9" }.joined(separator: ", ")) } }
          chain input {
            type filter hook input priority 0; policy drop;
            ct state established,related counter accept
            ip saddr . udp dport @allowed counter accept
          }
        }

        """
    }

    /// Packets the accept rules of the bench table counted.
    private func nftAccepted(in netns: Netns) throws -> UInt64 {
        let out = try runCommand(["nft", "-j", "list", "table", "inet", "mzbench"], in: netns).output
        guard let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let items = json["nftables"] as? [[String: Any]] else { throw BenchError("nft -j printed no JSON") }
        var total: UInt64 = 0
        for item in items {
            guard let rule = item["rule"] as? [String: Any], let expr = rule["expr"] as? [[String: Any]] else { continue }
            for e in expr { if let counter = e["counter"] as? [String: Any], let p = counter["packets"] as? Int { total += UInt64(p) } }
        }
        return total
    }
}
