import CNetlink
import Foundation

extension Netns {
    /// Whether device `name` computes transmit checksums in hardware/offload ("tx-checksumming").
    public func txChecksumming(of name: String) throws -> Bool {
        try ethtool(name, command: cnl_ethtool_get_txcsum(), value: 0, operation: "read tx-checksumming of \(name) in \(self)") != 0
    }

    /// Turns transmit checksum offload of device `name` on or off.
    ///
    /// Across XDP-redirected veths the offloaded partial checksum is lost (DESIGN §4), so an
    /// endpoint's veth needs it off unless the data plane completes checksums itself.
    public func setTxChecksumming(of name: String, _ enabled: Bool) throws {
        _ = try ethtool(name, command: cnl_ethtool_set_txcsum(), value: enabled ? 1 : 0, operation: "set tx-checksumming of \(name) \(enabled ? "on" : "off") in \(self)")
    }

    /// Whether device `name` does generic receive offload ("generic-receive-offload").
    public func gro(of name: String) throws -> Bool {
        try ethtool(name, command: cnl_ethtool_get_gro(), value: 0, operation: "read GRO of \(name) in \(self)") != 0
    }

    /// Turns generic receive offload of device `name` on or off. On a veth it also makes the
    /// device take frames its peer sends from XDP (XDP_TX, redirects) without an XDP program.
    public func setGRO(of name: String, _ enabled: Bool) throws {
        _ = try ethtool(name, command: cnl_ethtool_set_gro(), value: enabled ? 1 : 0, operation: "set GRO of \(name) \(enabled ? "on" : "off") in \(self)")
    }

    private func ethtool(_ name: String, command: UInt32, value: UInt32, operation: String) throws -> UInt32 {
        try perform {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw NetError.system(operation, errno: errno) }
            defer { close(fd) }
            var data = value
            guard cnl_ethtool_value(fd, name, command, &data) == 0 else { throw NetError.system(operation, errno: errno) }
            return data
        }
    }
}
