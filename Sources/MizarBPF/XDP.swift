import CLibBPF
import Foundation

/// Where an XDP program runs on a device.
public enum XDPMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// In the driver (veth, most NICs): the fast path. Fails where the driver lacks XDP.
    case native
    /// On the skb after allocation: works everywhere, slowly.
    case generic
    /// Native where supported, else generic (the kernel decides).
    case auto

    var flags: UInt32 {
        switch self {
        case .native: UInt32(XDP_FLAGS_DRV_MODE)
        case .generic: UInt32(XDP_FLAGS_SKB_MODE)
        case .auto: 0
        }
    }

    public var description: String { rawValue }
}

/// A bpf_link: an attachment that lasts while a descriptor to it (or a pin) exists.
public final class BPFLink: @unchecked Sendable {
    public let fd: Int32
    private var closed = false

    init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        if !closed { close(fd) }
    }

    /// Opens a link pinned at `path` (it keeps its program attached meanwhile).
    public static func openPinned(_ path: String) throws -> BPFLink {
        let fd = bpf_obj_get(path)
        try check("open pinned link \(path)", fd)
        return BPFLink(fd: fd)
    }

    /// Pins the link so the attachment outlives this process.
    public func pin(at path: String) throws {
        try check("pin link at \(path)", bpf_obj_pin(fd, path))
    }

    /// Replaces the link's program atomically: no packet sees the device without a program.
    public func update(to program: BPFProgram) throws {
        try check("update link to program \(program.name)", bpf_link_update(fd, program.fd, nil))
    }

    /// Detaches now, even if the link is pinned or shared.
    public func detach() throws {
        try check("detach link", bpf_link_detach(fd))
    }
}

/// What is attached at the XDP hook of a device.
public struct XDPAttachment: Sendable, Equatable {
    public var mode: XDPMode?
    public var programID: UInt32
    public var programName: String?

    public static let none = XDPAttachment(mode: nil, programID: 0, programName: nil)
}

/// XDP attach, detach and query on devices of the caller's network namespace.
/// To act on another namespace, call from inside `Netns.perform`.
public enum XDP {
    /// Attaches `program` to device `ifindex` through a bpf_link.
    /// The program stays attached while the link (or a pin of it) lives.
    public static func attach(_ program: BPFProgram, ifindex: Int32, mode: XDPMode = .native) throws -> BPFLink {
        try requireDevice(ifindex, "attach XDP program \(program.name) to ifindex \(ifindex)")
        let fd = mz_xdp_link_create(program.fd, ifindex, mode.flags)
        if fd < 0 {
            var error = BPFError.system("attach XDP program \(program.name) to ifindex \(ifindex) in \(mode) mode", errno: -fd)
            if -fd == EOPNOTSUPP || -fd == EINVAL, mode == .native {
                error.message += "; the driver may lack native XDP (try generic mode), or the device MTU is too large for a non-frags program"
            }
            throw error
        }
        return BPFLink(fd: fd)
    }

    /// What is attached to `ifindex`; `XDPAttachment.none` when nothing is.
    public static func query(ifindex: Int32) throws -> XDPAttachment {
        try requireDevice(ifindex, "query XDP on ifindex \(ifindex)")
        var mode: UInt8 = 0
        var progID: UInt32 = 0, drvID: UInt32 = 0, skbID: UInt32 = 0
        let rc = mz_xdp_query(ifindex, &mode, &progID, &drvID, &skbID)
        try check("query XDP on ifindex \(ifindex)", rc)
        let id = progID != 0 ? progID : (drvID != 0 ? drvID : skbID)
        guard id != 0 else { return .none }
        let attachedMode: XDPMode? = switch UInt32(mode) {
        case UInt32(XDP_ATTACHED_DRV): .native
        case UInt32(XDP_ATTACHED_SKB): .generic
        default: nil
        }
        let name = try? BPFProgram.open(id: id).name
        return XDPAttachment(mode: attachedMode, programID: id, programName: name)
    }

    /// The kernel answers EINVAL or an empty query for a missing device; name it plainly instead.
    private static func requireDevice(_ ifindex: Int32, _ operation: String) throws {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        guard ifindex > 0, if_indextoname(UInt32(ifindex), &name) != nil else {
            throw BPFError(.notFound, errno: ENODEV, operation: operation, message: "no device with index \(ifindex) in this network namespace")
        }
    }

    /// Removes a program attached without a link (by netlink, e.g. `ip link set xdp`).
    /// Link-based attachments refuse this (EBUSY): detach their `BPFLink` instead.
    public static func detachNetlinkAttachment(ifindex: Int32, mode: XDPMode) throws {
        try requireDevice(ifindex, "detach XDP from ifindex \(ifindex)")
        try check("detach XDP from ifindex \(ifindex)", bpf_xdp_detach(ifindex, mode.flags, nil))
    }
}
