import CLibBPF
import Foundation

/// A TC classifier attached in direct-action mode to a device's clsact hook (through
/// libbpf's netlink TC API: the kernels we target have tcx, Debian's libbpf 1.1 does not).
///
/// Unlike a `BPFLink`, the attachment does not end with this value: call `detach()`,
/// in the network namespace of the device, or delete the device.
public struct TCFilter: Sendable, Hashable {
    public enum Direction: Sendable { case ingress, egress }

    public let ifindex: Int32
    public let direction: Direction
    public let handle: UInt32
    public let priority: UInt32

    /// Names a classifier slot (to query or detach one attached earlier).
    public init(ifindex: Int32, direction: Direction = .ingress, handle: UInt32 = 1, priority: UInt32 = 1) {
        self.ifindex = ifindex
        self.direction = direction
        self.handle = handle
        self.priority = priority
    }

    /// Attaches `program` (a `SEC("tc")` program) to `ifindex` in the calling thread's
    /// network namespace, replacing what holds the same handle and priority.
    public static func attach(_ program: BPFProgram, ifindex: Int32, direction: Direction = .ingress,
                              handle: UInt32 = 1, priority: UInt32 = 1) throws -> TCFilter {
        let filter = TCFilter(ifindex: ifindex, direction: direction, handle: handle, priority: priority)
        try check("attach TC program \(program.name) to ifindex \(ifindex)",
                  mz_tc_attach(ifindex, filter.isIngress, program.fd, handle, priority))
        return filter
    }

    /// Removes the classifier (in the calling thread's network namespace).
    public func detach() throws {
        try check("detach TC filter from ifindex \(ifindex)", mz_tc_detach(ifindex, isIngress, handle, priority))
    }

    /// The id of the program attached at this handle and priority, 0 when none.
    public func attachedProgramID() throws -> UInt32 {
        var id: UInt32 = 0
        try check("query TC filter of ifindex \(ifindex)", mz_tc_query(ifindex, isIngress, handle, priority, &id))
        return id
    }

    private var isIngress: Int32 { direction == .ingress ? 1 : 0 }
}
