import Foundation
import MizarAPI
import MizarClient
import MizarNet
import MizarTopology

/// `make demo-cluster`: a 3-member etcd and 4 droplets in namespaces, every transitd in
/// cluster mode, two mizar-controller replicas; a manifest applied through one droplet,
/// containers plugged by the CNI plugin on two others, pinged across; then a bouncer's
/// droplet killed while pings go on, and its role re-placed.
struct ClusterDemo {
    let bin: String
    let bpfDir: String
    let examples: String

    func run() async throws {
        let droplets = ["hosta", "hostb", "hostc", "hostd"]
        print("etcd: 3 members, each in a namespace of its own on the underlay (172.30.0.100-102), data in a private directory")
        let lab = try ClusterLab(droplets: droplets, etcdMembers: 3, leaseTTL: 3, transitd: bin + "/transitd", bpfDir: bpfDir)
        defer {
            lab.teardown()
            print("\nstopped every transitd, controller and etcd member; removed every namespace and data directory")
        }
        print("$ transitd --interface eth0 --etcd \(lab.etcd.clientURLs) --lease-ttl 3   (on each of \(droplets.joined(separator: ", ")))")
        try lab.start()
        for replica in ["ctl1", "ctl2"] { try lab.startController(replica, on: nil, binary: bin + "/mizar-controller") }
        print("$ mizar-controller --etcd \(lab.etcd.clientURLs)   (two replicas: one leads)")
        let a = lab.host("hosta").client
        try await wait("every droplet registered") { try await a.status().cluster?.live.count == droplets.count }

        try mizarctl(lab, "hosta", ["apply", "-f", examples + "/cluster.yaml"])
        try mizarctl(lab, "hostb", ["get", "droplets"])
        try mizarctl(lab, "hostc", ["get", "bouncers"])
        try mizarctl(lab, "hostd", ["get", "dividers"])

        // Containers on the two droplets that do not bounce: traffic must cross the bouncers' roles.
        let bouncers = Set(try await a.bouncers().map(\.droplet))
        let hosts = droplets.filter { !bouncers.contains($0) }
        print("\ncontainers plugged as a runtime plugs them (CNI ADD), on \(hosts[0]) and \(hosts[1]): each takes an address from its droplet's block")
        var pods: [(Netns, String)] = []
        for (i, host) in hosts.prefix(2).enumerated() {
            let netns = try lab.daemons.endpointNamespace("pod\(i)")
            let config = #"{"cniVersion":"1.0.0","name":"apps","type":"mizar","network":"apps","socket":"\#(lab.host(host).socket)"}"#
            print("$ CNI_COMMAND=ADD CNI_CONTAINERID=pod\(i) CNI_NETNS=\(netns.path) CNI_IFNAME=eth0 mizar   (on \(host))")
            let add = try runCommand([bin + "/mizar"], environment: ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pod\(i)", "CNI_NETNS": netns.path,
                                                                    "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"], input: config)
            guard add.status == 0, let range = add.output.range(of: #"10\.30\.0\.\d+"#, options: .regularExpression) else {
                throw DemoError("CNI ADD on \(host) failed: \(add.output)\(add.error)")
            }
            pods.append((netns, String(add.output[range])))
            print("  pod\(i): \(add.output[range])")
        }
        let ping = try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", pods[1].1], in: pods[0].0)
        print("$ ping -c 3 \(pods[1].1)   (in pod0)\n  \(pingReplies(ping.output))/3 replies across droplets")

        let victim = bouncers.sorted()[0]
        print("\n\(victim), a bouncer of apps, dies whole (transitd killed, its link down) while pod0 pings pod1 every 50 ms")
        let running = try RunningCommand(["ping", "-c", "200", "-i", "0.05", "-W", "1", pods[1].1], in: pods[0].0)
        lab.daemons.stop(victim, signal: SIGKILL)
        try runCommand(["ip", "link", "set", "eth0", "down"], in: lab.host(victim).netns)
        let lost = Date()
        try await wait("\(victim)'s role re-placed") {
            let roles = try await lab.host(hosts[0]).client.bouncers().filter { $0.network == "apps" }
            return roles.count == 2 && !roles.contains { $0.droplet == victim } && !roles.contains { $0.pending == true }
        }
        print(String(format: "  lease lapsed and role re-placed %.1f s after the loss", Date().timeIntervalSince(lost)))
        try mizarctl(lab, hosts[0], ["get", "droplets"])
        try mizarctl(lab, hosts[0], ["get", "bouncers"])
        let replies = pingReplies(running.wait(timeout: 30).output)
        print("pings during the loss: \(replies)/200 answered")
        let keys = try lab.etcd.etcdctl(["get", "--prefix", "--keys-only", "/mizar/v1/"]).output.split(separator: "\n").filter { !$0.isEmpty }
        print("\nwhat etcd holds (\(keys.count) keys), e.g.:\n  " + keys.filter { !$0.contains("/progress/") }.prefix(12).joined(separator: "\n  "))
        guard replies > 100 else { throw DemoError("pings did not survive the loss of a bouncer's droplet") }
    }

    private func mizarctl(_ lab: ClusterLab, _ droplet: String, _ arguments: [String]) throws {
        print("\n$ mizarctl \(arguments.joined(separator: " "))   (on \(droplet))")
        let result = try runCommand([bin + "/mizarctl"] + arguments + ["--socket", lab.host(droplet).socket])
        print(result.output, terminator: "")
        guard result.status == 0 else { throw DemoError("mizarctl \(arguments.joined(separator: " ")) failed: \(result.error)") }
    }

    private func wait(_ what: String, timeout: TimeInterval = 20, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while (try? await condition()) != true {
            guard Date() < deadline else { throw DemoError("timed out waiting: \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
