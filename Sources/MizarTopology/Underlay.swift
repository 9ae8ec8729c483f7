import Foundation
import MizarBPF
import MizarNet

/// The substrate of DESIGN §7 without any data plane: a fabric namespace whose bridge is the
/// switch, and host namespaces joined to it by veths (`eth0` at 172.30.0.`index`/24). The
/// overlay labs put droplets on it; the transitd tests run a daemon in each host namespace.
///
/// Every name starts with `prefix`; `teardown()` removes every namespace it made.
public final class Underlay: @unchecked Sendable {
    public let prefix: String
    public let fabric: Netns
    public let bridge: String
    public let mtu: UInt32
    private(set) var namespaces: [String] = []
    private var fabricLinks: [BPFLink] = []

    public init(prefix: String, mtu: UInt32 = 1500) throws {
        self.prefix = prefix
        self.mtu = mtu
        bridge = prefix + "br"
        fabric = try Netns.create(named: prefix + "-fabric")
        namespaces.append(prefix + "-fabric")
        do {
            let socket = try RouteSocket(in: fabric)
            _ = try socket.createBridge(name: bridge)
            try socket.setUp(bridge)
        } catch {
            teardown()
            throw error
        }
    }

    /// A namespace `<prefix>-<name>` on the fabric with `eth0` at 172.30.0.`index`/24, made wire-like.
    public func addHost(_ name: String, index: Int) throws -> (netns: Netns, ip: IPv4Address) {
        let netns = try addNamespace(name)
        let fabricSide = fabricPort(index)
        let fabricSocket = try RouteSocket(in: fabric)
        _ = try fabricSocket.createVethPair(name: fabricSide, peerName: "eth0", peerNetns: netns, mtu: mtu)
        try fabricSocket.setMaster(of: fabricSide, to: bridge)
        try fabricSocket.setUp(fabricSide)
        let socket = try RouteSocket(in: netns)
        let ip = IPv4Address(172, 30, 0, UInt8(index))
        // A fixed MAC (02:00 and the IP) lets manifests name the droplet.
        try socket.setMAC(of: "eth0", to: Underlay.mac(index: index))
        let link = try socket.link(named: "eth0")
        try socket.addAddress(IPv4Interface(ip, prefixLength: 24), to: link.index)
        try socket.setUp("eth0")
        try socket.setUp("lo")
        try emulateWire(fabricSide, in: fabric)
        try emulateWire("eth0", in: netns)
        return (netns, ip)
    }

    /// The MAC of host `index`'s `eth0`: 02:00:ac:1e:00:`index`.
    public static func mac(index: Int) -> MACAddress { MACAddress(bytes: [0x02, 0x00] + IPv4Address(172, 30, 0, UInt8(index)).bytes) }

    /// An empty namespace `<prefix>-<name>` (an endpoint's, say), removed by `teardown()`.
    public func addNamespace(_ name: String) throws -> Netns {
        let netns = try Netns.create(named: "\(prefix)-\(name)")
        namespaces.append("\(prefix)-\(name)")
        return netns
    }

    /// The fabric's port towards host `index`.
    public func fabricPort(_ index: Int) -> String { "\(prefix)f\(index)" }

    /// Lets the fabric port of host `index` take frames a droplet sends with XDP_TX: a frame
    /// sent into a veth needs an XDP program on its peer. `program` is an XDP_PASS program.
    public func attachFabricPeer(index: Int, program: BPFProgram) throws {
        let fabricIndex = try RouteSocket(in: fabric).link(named: fabricPort(index)).index
        fabricLinks.append(try fabric.perform { try XDP.attach(program, ifindex: fabricIndex, mode: .native) })
    }

    /// Removes every namespace made (and with them every veth, bridge and attachment).
    public func teardown() {
        fabricLinks.removeAll()
        for name in namespaces.reversed() { _ = try? Netns.delete(named: name) }
        namespaces.removeAll()
    }

    /// Makes a veth of the underlay behave like a wire: a NIC completes checksums and
    /// segments tunnel GSO on transmit, whereas a veth would hand CHECKSUM_PARTIAL and
    /// 64 KB UDP-tunnel skbs to the receiving droplet, whose XDP can keep neither.
    /// (Lab scaffolding: `ethtool`, not product code.)
    private func emulateWire(_ device: String, in netns: Netns) throws {
        let result = try runCommand(["ethtool", "-K", device, "tx", "off", "tx-udp_tnl-segmentation", "off", "tx-udp_tnl-csum-segmentation", "off"], in: netns)
        guard result.status == 0 else { throw NetError(.system, operation: "ethtool -K \(device)", message: result.error) }
    }
}
