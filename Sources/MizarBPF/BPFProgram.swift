import CLibBPF
import Foundation

/// A loaded BPF program. It stays valid while the object or descriptor owning it lives.
public struct BPFProgram: @unchecked Sendable {
    /// The program's file descriptor (owned by `owner`).
    public let fd: Int32
    /// The program's function name.
    public let name: String
    let owner: AnyObject

    init(fd: Int32, name: String, owner: AnyObject) {
        self.fd = fd
        self.name = name
        self.owner = owner
    }

    /// Wraps a descriptor obtained elsewhere (pin, id); takes ownership of it.
    public init(owning fd: Int32) throws {
        let owner = OwnedFileDescriptor(fd)
        var info = bpf_prog_info()
        try check("read program info of fd \(fd)", mz_prog_info(fd, &info))
        self.init(fd: fd, name: withUnsafeBytes(of: info.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }, owner: owner)
    }

    /// The kernel's id of this program.
    public var id: UInt32 {
        get throws {
            var info = bpf_prog_info()
            try check("read program info of \(name)", mz_prog_info(fd, &info))
            return info.id
        }
    }

    /// Opens a loaded program by its kernel id.
    public static func open(id: UInt32) throws -> BPFProgram {
        let fd = bpf_prog_get_fd_by_id(id)
        try check("open program id \(id)", fd)
        return try BPFProgram(owning: fd)
    }
}

/// The verdict of an XDP program.
public enum XDPAction: UInt32, Sendable, CustomStringConvertible {
    case aborted = 0, drop, pass, tx, redirect

    public var description: String {
        switch self {
        case .aborted: "XDP_ABORTED"
        case .drop: "XDP_DROP"
        case .pass: "XDP_PASS"
        case .tx: "XDP_TX"
        case .redirect: "XDP_REDIRECT"
        }
    }
}

/// The verdict of a TC program (`TC_ACT_*`) that Mizar uses.
public enum TCAction: UInt32, Sendable {
    case ok = 0, shot = 2, redirect = 7
}

/// What one `BPF_PROG_TEST_RUN` of an XDP (or TC) program returned.
public struct XDPTestRunResult: Sendable {
    /// The raw return value; `action` (XDP) or `tcAction` (TC) when it is a known verdict.
    public var returnValue: UInt32
    public var action: XDPAction? { XDPAction(rawValue: returnValue) }
    public var tcAction: TCAction? { TCAction(rawValue: returnValue) }
    /// The packet as the program left it.
    public var packet: [UInt8]
    /// Average run time of one repetition, as measured by the kernel.
    public var nanosecondsPerRun: UInt32
}

extension BPFProgram {
    /// Runs the program on `packet` with `BPF_PROG_TEST_RUN`, `repeat` times.
    ///
    /// - Parameters:
    ///   - ingressIfindex: the device the packet pretends to arrive on (0 for none).
    public func testRun(packet: [UInt8], repeat count: UInt32 = 1, ingressIfindex: UInt32 = 0) throws -> XDPTestRunResult {
        try testRun(packet, count, ingressIfindex, what: "test-run program \(name)", mz_xdp_test_run)
    }

    /// Runs a TC (`SEC("tc")`) program on `packet` with `BPF_PROG_TEST_RUN`, `repeat` times.
    ///
    /// - Parameters:
    ///   - ifindex: the device the skb belongs to (`skb->ifindex`), in the caller's netns; 0 for none.
    /// - Returns: the TC verdict as `returnValue` (see `tcAction`), and the packet as the program left it.
    public func testRunSKB(packet: [UInt8], repeat count: UInt32 = 1, ifindex: UInt32 = 0) throws -> XDPTestRunResult {
        try testRun(packet, count, ifindex, what: "test-run TC program \(name)", mz_skb_test_run)
    }

    private func testRun(_ packet: [UInt8], _ count: UInt32, _ ifindex: UInt32, what: String,
                         _ runner: (Int32, UnsafeMutablePointer<mz_test_run>) -> Int32) throws -> XDPTestRunResult {
        // Room for headers a program may push (bpf_xdp_adjust_head, bpf_skb_adjust_room).
        var out = [UInt8](repeating: 0, count: packet.count + 512)
        var run = mz_test_run()
        run.data_size_in = UInt32(packet.count)
        run.data_size_out = UInt32(out.count)
        run.ingress_ifindex = ifindex
        run.repeat = count
        let rc = packet.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { output in
                run.data_in = input.baseAddress
                run.data_out = output.baseAddress
                return runner(fd, &run)
            }
        }
        try check(what, rc)
        return XDPTestRunResult(returnValue: run.retval, packet: Array(out.prefix(Int(run.data_size_out))), nanosecondsPerRun: run.duration)
    }

    /// Sends `count` copies of `frame` through the program as live frames
    /// (`BPF_F_TEST_XDP_LIVE_FRAMES`): XDP_TX and XDP_REDIRECT really transmit,
    /// which makes the program a line-rate traffic generator.
    ///
    /// - Parameters:
    ///   - ingressIfindex: the device frames pretend to arrive on, in the caller's netns;
    ///     XDP_TX transmits out of it.
    ///   - batchSize: frames per batch (0 lets the kernel choose, 64).
    /// - Returns: average nanoseconds per frame, as measured by the kernel.
    @discardableResult
    public func runLiveFrames(frame: [UInt8], count: UInt32, ingressIfindex: UInt32, batchSize: UInt32 = 0) throws -> UInt32 {
        var run = mz_test_run()
        run.data_size_in = UInt32(frame.count)
        run.ingress_ifindex = ingressIfindex
        run.repeat = count
        run.flags = UInt32(BPF_F_TEST_XDP_LIVE_FRAMES)
        run.batch_size = batchSize
        let rc = frame.withUnsafeBytes { input in
            run.data_in = input.baseAddress
            return mz_xdp_test_run(fd, &run)
        }
        try check("live-frames run of program \(name)", rc)
        return run.duration
    }
}
