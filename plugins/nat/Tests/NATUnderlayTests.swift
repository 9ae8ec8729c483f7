import CMizarABI
import Foundation
import MizarDataplane
import MizarNAT
import MizarPluginSDK
import MizarTopology
import Testing

/// An endpoint behind NAT's masquerade may reach the world, but never the overlay's own
/// underlay: a Geneve packet it builds (scapy) for another VPC, sent to a droplet, is refused
/// at its agent before SNAT could give it a droplet's source address (issue 13, item 2).
@Suite("nat masquerade cannot carry an endpoint into the underlay", .serialized)
struct NATUnderlayTests {
    @Test(arguments: [AgentHook.tc, .xdp])
    func craftedGeneveToADropletIsRefusedAtTheAgent(agentHook: AgentHook) throws {
        let lab = try OverlayLab.design(agentHook: agentHook, vpc2: true)
        defer { lab.teardown() }
        let external = try lab.addExternalHost("ext")
        let hosta = lab.host("hosta"), hostb = lab.host("hostb")
        let a1 = lab.guest("a1"), v2 = lab.guest("v2")
        let plugins = hosta.dataplane.plugins
        try plugins.register(NAT.descriptor)
        try plugins.configure("nat", NAT.Config(externalIP: hosta.address.ip.description,
                                                masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"])]))
        try plugins.setChain(.egress, ["nat"])
        try plugins.setChain(.ingress, ["nat"])
        if agentHook == .xdp {
            _ = try runCommand(["sysctl", "-qw", "net.ipv4.conf.eth0.forwarding=1"], in: hosta.netns)
            _ = try runCommand(["ping", "-c", "1", "-W", "1", external.ip.description], in: hosta.netns)
        }
        // Masquerade works: a1 reaches the external host.
        #expect(try lab.ping(from: "a1", to: external.ip, count: 2, interval: 0.1) == 2)

        let learned = try hostb.dataplane.learnedPaths()
        let agentBefore = try hosta.dataplane.agentCounters(), transitBefore = try hostb.dataplane.transitCounters()
        let v2Before = try icmpEchoesReceived(in: lab.guest("v2").netns)
        // Geneve, VNI 200, an inner ICMP echo to v2 with an RTS naming hosta: to hostb's
        // address; the same to the external host's UDP 6081 (also with DF, another TTL, MF, IP
        // options); TCP to hostb's address. Not the underlay: UDP 6082 and TCP 6081 outside.
        let script = """
        from scapy.all import *
        from scapy.contrib.geneve import GENEVE
        conf.verb = 0
        inner = Ether(src="02:00:0a:00:01:77", dst="\(v2.mac)") / IP(src="10.0.1.77", dst="\(v2.ip)") / ICMP()
        rts = bytes([0x01, 0x11, 0x48, 3]) + bytes(map(int, "\(hosta.address.ip)".split("."))) + bytes.fromhex("\(hosta.address.mac.description.replacingOccurrences(of: ":", with: ""))") + bytes(2)
        geneve = GENEVE(vni=200, proto=0x6558, optionlen=4) / Raw(rts) / inner
        send(IP(dst="\(hostb.address.ip)") / UDP(sport=40000, dport=6081) / geneve, count=5)
        send(IP(dst="\(external.ip)") / UDP(sport=40000, dport=6081) / geneve, count=3)
        send(IP(dst="\(hostb.address.ip)") / TCP(sport=40000, dport=22, flags="S"), count=2)
        send(IP(dst="\(external.ip)", flags="DF", ttl=9) / UDP(sport=40000, dport=6081) / geneve, count=2)
        send(IP(dst="\(external.ip)", flags="MF") / UDP(sport=40000, dport=6081) / geneve, count=1)
        send(IP(dst="\(external.ip)", options=[IPOption_NOP()] * 4) / UDP(sport=40000, dport=6081) / geneve, count=1)
        send(IP(dst="\(external.ip)", flags="DF") / UDP(sport=40000, dport=6082) / Raw(b"x"), count=1)
        send(IP(dst="\(external.ip)", ttl=9) / TCP(sport=40000, dport=6081, flags="S"), count=1)
        """
        let sent = try runCommand(["/usr/bin/python3", "-c", script], in: a1.netns, timeout: 60)
        #expect(sent.status == 0, "scapy: \(sent.error)")
        usleep(300_000)

        let agent = try hosta.dataplane.agentCounters().delta(since: agentBefore)
        let transit = try hostb.dataplane.transitCounters().delta(since: transitBefore)
        // Refused whatever the DF flag and TTL beside the protocol, as a first fragment (MF) and
        // behind IP options; UDP 6082 and TCP 6081 leave.
        #expect(agent[.underlayRefused].packets == 14, "\(agent)")
        #expect(agent[.leftOverlay].packets == 2, "\(agent)")
        #expect(transit[.delivered].packets == 0 && transit[.geneveFromUnknownSource].packets == 0, "\(transit)")
        #expect(try icmpEchoesReceived(in: lab.guest("v2").netns) == v2Before, "nothing reaches VPC 200")
        #expect(try hostb.dataplane.learnedPaths() == learned, "the direct-path cache is unchanged")
    }

    /// A port forward reached from another droplet (a health check, a hostPort from another
    /// node): the endpoint's replies go back to that droplet; to its UDP 6081, never.
    @Test func portForwardAnswersADropletButNeverItsOverlayPort() throws {
        let lab = try OverlayLab.design(vpc2: false)
        defer { lab.teardown() }
        let external = try lab.addExternalHost("ext")
        let hosta = lab.host("hosta"), hostb = lab.host("hostb"), a1 = lab.guest("a1")
        let plugins = hosta.dataplane.plugins
        try plugins.register(NAT.descriptor)
        try plugins.configure("nat", NAT.Config(externalIP: hosta.address.ip.description, masquerade: [NAT.Masquerade(vpc: 100, except: ["10.0.0.0/16"])],
                                                forwards: [NAT.Forward(protocol: .udp, port: 8080, vpc: 100, endpoint: a1.ip.description, endpointPort: 8080)]))
        try plugins.setChain(.egress, ["nat"])
        try plugins.setChain(.ingress, ["nat"])
        let echo = try RunningCommand(["/usr/bin/python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 8080))
            while True:
                d, a = s.recvfrom(100)
                s.sendto(d, a)
            """], in: a1.netns)
        defer { echo.interrupt() }
        usleep(300_000)
        func ask(from netns: Netns, sourcePort: UInt16) throws -> Bool {
            let result = try runCommand(["/usr/bin/python3", "-c", """
                import socket
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("0.0.0.0", \(sourcePort)))
                s.settimeout(1)
                s.sendto(b"hi", ("\(hosta.address.ip)", 8080))
                try:
                    s.recvfrom(100)
                    print("REPLY")
                except Exception:
                    print("NOREPLY")
                """], in: netns, timeout: 10)
            return result.output.contains("REPLY") && !result.output.contains("NOREPLY")
        }
        #expect(try ask(from: external.netns, sourcePort: 40000), "from outside")
        #expect(try ask(from: hostb.netns, sourcePort: 40001), "from another droplet")
        let before = try hosta.dataplane.agentCounters()
        #expect(try !ask(from: hostb.netns, sourcePort: UInt16(MZ_GENEVE_UDP_PORT)), "an answer to a droplet's UDP 6081")
        #expect(try hosta.dataplane.agentCounters().delta(since: before)[.underlayRefused].packets == 1)
    }
}
