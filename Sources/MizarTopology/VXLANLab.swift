import Foundation
import MizarBPF
import MizarNet

/// The baseline overlay for benchmarks, built the flannel way: two host namespaces on a
/// fabric bridge, each with a kernel VXLAN device (VNI 100, port 4789) in a Linux bridge
/// together with a veth to one pod. Pods p1 (10.0.1.2, host 1) and p2 (10.0.1.3, host 2).
///
/// The kernel's VXLAN device has no libnl helper here, so this lab runs `ip` and `bridge`:
/// it is measurement scaffolding, not product code. `teardown()` removes everything.
public final class VXLANLab: @unchecked Sendable {
    public let prefix: String
    public let fabric: Netns
    public private(set) var hosts: [Netns] = []
    public private(set) var pods: [Netns] = []
    public let podAddresses = [IPv4Address(10, 0, 1, 2), IPv4Address(10, 0, 1, 3)]
    private var names: [String] = []
    private var switchLinks: [BPFLink] = []

    /// - Parameters:
    ///   - wireUnderlay: underlay veths behave like a wire, as in `OverlayLab`: checksums
    ///     completed and tunnel GSO segmented on transmit. Without it 64 KB superpackets cross
    ///     the fabric, which no physical underlay carries.
    ///   - switchPortProgram: an XDP_PASS program for the fabric's ports, so that the switch
    ///     is the very one `OverlayLab` builds (there it must take frames sent from XDP).
    public init(prefix: String = uniquePrefix(), underlayMTU: UInt32 = 1500, wireUnderlay: Bool = true,
                switchPortProgram: BPFProgram? = nil) throws {
        self.prefix = prefix
        fabric = try Netns.create(named: prefix + "-vfabric")
        names.append(prefix + "-vfabric")
        do {
            let fabricSocket = try RouteSocket(in: fabric)
            _ = try fabricSocket.createBridge(name: prefix + "vbr")
            try fabricSocket.setUp(prefix + "vbr")
            let underlay = [IPv4Address(172, 31, 0, 1), IPv4Address(172, 31, 0, 2)]
            for i in 0..<2 {
                let host = try Netns.create(named: "\(prefix)-vhost\(i + 1)")
                names.append("\(prefix)-vhost\(i + 1)")
                hosts.append(host)
                let port = "\(prefix)v\(i + 1)"
                _ = try fabricSocket.createVethPair(name: port, peerName: "eth0", peerNetns: host, mtu: underlayMTU)
                try fabricSocket.setMaster(of: port, to: prefix + "vbr")
                try fabricSocket.setUp(port)
                let socket = try RouteSocket(in: host)
                if let program = switchPortProgram {
                    let index = try fabricSocket.link(named: port).index
                    switchLinks.append(try fabric.perform { try XDP.attach(program, ifindex: index, mode: .native) })
                }
                if wireUnderlay {
                    try ip(["-K", port, "tx", "off", "tx-udp_tnl-segmentation", "off", "tx-udp_tnl-csum-segmentation", "off"]
                           + (switchPortProgram == nil ? ["gro", "on"] : []), in: fabric, tool: "ethtool")
                    try ip(["-K", "eth0", "tx", "off", "tx-udp_tnl-segmentation", "off", "tx-udp_tnl-csum-segmentation", "off"], in: host, tool: "ethtool")
                }
                try socket.addAddress(IPv4Interface(underlay[i], prefixLength: 24), to: try socket.link(named: "eth0").index)
                try socket.setUp("eth0")
                try socket.setUp("lo")
                try ip(["link", "add", "vx0", "type", "vxlan", "id", "100", "dstport", "4789", "local", underlay[i].description,
                        "remote", underlay[1 - i].description, "dev", "eth0"], in: host)
                _ = try socket.createBridge(name: "br0")
                try socket.setMaster(of: "vx0", to: "br0")
                let pod = try Netns.create(named: "\(prefix)-vpod\(i + 1)")
                names.append("\(prefix)-vpod\(i + 1)")
                pods.append(pod)
                _ = try socket.createVethPair(name: "veth0", peerName: "eth0", peerNetns: pod, mtu: underlayMTU - 50)
                try socket.setMaster(of: "veth0", to: "br0")
                for name in ["vx0", "br0", "veth0"] { try socket.setUp(name) }
                let podSocket = try RouteSocket(in: pod)
                try podSocket.addAddress(IPv4Interface(podAddresses[i], prefixLength: 24), to: try podSocket.link(named: "eth0").index)
                try podSocket.setUp("eth0")
                try podSocket.setUp("lo")
                // Frames an XDP generator sends out of the pod need NAPI on the veth's far side.
                try ip(["-K", "veth0", "gro", "on"], in: host, tool: "ethtool")
            }
        } catch {
            teardown()
            throw error
        }
    }

    public func teardown() {
        switchLinks.removeAll()
        for name in names.reversed() { _ = try? Netns.delete(named: name) }
        names.removeAll()
    }

    private func ip(_ arguments: [String], in netns: Netns, tool: String = "ip") throws {
        let result = try runCommand([tool] + arguments, in: netns)
        guard result.status == 0 else {
            throw NetError(.system, operation: "\(tool) \(arguments.joined(separator: " "))", message: result.error)
        }
    }
}
