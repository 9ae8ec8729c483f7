import Foundation
import MizarACL
import MizarDataplane
import MizarPluginSDK
import MizarShaper
import MizarTopology

extension MizarDemo {
    /// The plugin chain on the same overlay: an ACL on hostb that admits only pings from
    /// 10.0.1.0/24, then a shaper on a1 added to hosta's chain while traffic could flow.
    func pluginSteps(_ lab: OverlayLab) throws {
        let hostb = lab.host("hostb").dataplane.plugins, hosta = lab.host("hosta").dataplane.plugins
        print("\nplugins: acl on hostb's ingress chain; b1 admits ICMP echo from 10.0.1.0/24 only")
        try hostb.register(ACL.descriptor)
        try hostb.configure("acl", ACL.Config(
            rules: [ACL.Rule(vpc: 100, direction: .ingress, source: "10.0.1.0/24", protocol: .icmp, ports: 8...8, action: .allow)],
            endpoints: [ACL.EndpointPolicy(vpc: 100, ip: "10.0.1.3", defaultEgress: .allow, defaultIngress: .deny)]))
        try hostb.setChain(.ingress, ["acl"])
        let pings = try lab.ping(from: "a1", to: IPv4Address(10, 0, 1, 3), count: 3, interval: 0.2)
        let udp = try runCommand(["iperf3", "-c", "10.0.1.3", "-t", "1", "--connect-timeout", "1000"], in: lab.guest("a1").netns, timeout: 10)
        print("  ping a1 -> b1: \(pings)/3 replies; iperf3 a1 -> b1: \(udp.status == 0 ? "connected" : "blocked by the ACL (its SYNs dropped)")")
        print("  acl counters on hostb ingress: \(try hostb.counters("acl", at: .ingress))  (reason2 = default deny)")

        print("\nplugins: shaper on hosta's egress chain, a1 limited to 20 Mbit/s; chain switched live")
        try hostb.setChain(.ingress, [])
        try hosta.register(Shaper.descriptor)
        try hosta.configure("shaper", Shaper.Config(limits: [Shaper.Limit(vpc: 100, endpoint: "10.0.1.2", bitsPerSecond: 20_000_000)]))
        try hosta.insert("shaper", into: .egress)
        let end = try lab.iperf(from: "a1", to: "b1", seconds: 2, extra: ["-u", "-b", "60M", "-l", "1400"])
        let bps = ((end["sum"] as? [String: Any])?["bits_per_second"] as? Double) ?? 0
        let lost = ((end["sum"] as? [String: Any])?["lost_percent"] as? Double) ?? 0
        print(String(format: "  UDP offered at 60 Mbit/s: %.1f Mbit/s sent, %.0f%% dropped by the shaper", bps / 1e6, lost))
        print("  shaper counters on hosta egress: \(try hosta.counters("shaper", at: .egress))  (reason1 = rate-limited)")
    }
}
