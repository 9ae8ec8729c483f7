import CLibBPF
import Foundation

/// A `BPF_MAP_TYPE_PROG_ARRAY`: the slots that tail calls jump through.
public struct ProgramArray: @unchecked Sendable {
    public let handle: BPFMapHandle

    public init(_ handle: BPFMapHandle) throws {
        try handle.expect([.programArray], key: 4, value: 4, as: "ProgramArray")
        self.handle = handle
    }

    public var capacity: UInt32 { handle.maxEntries }

    /// Puts `program` in `slot`; the swap is atomic for packets tail-calling it.
    public func set(_ slot: UInt32, to program: BPFProgram) throws {
        var key = slot, value = UInt32(bitPattern: program.fd)
        try check("set slot \(slot) of program array \(handle.name) to \(program.name)", bpf_map_update_elem(handle.fd, &key, &value, 0))
    }

    /// Empties `slot`: tail calls to it fall through. Returns false when it was empty.
    @discardableResult
    public func clear(_ slot: UInt32) throws -> Bool {
        var key = slot
        if bpf_map_delete_elem(handle.fd, &key) != 0 {
            if errno == ENOENT { return false }
            try check("clear slot \(slot) of program array \(handle.name)", -1)
        }
        return true
    }

    /// The id of the program in `slot`, or nil when empty.
    public func programID(at slot: UInt32) throws -> UInt32? {
        var key = slot, value: UInt32 = 0
        if bpf_map_lookup_elem(handle.fd, &key, &value) != 0 {
            if errno == ENOENT { return nil }
            try check("read slot \(slot) of program array \(handle.name)", -1)
        }
        return value
    }
}
