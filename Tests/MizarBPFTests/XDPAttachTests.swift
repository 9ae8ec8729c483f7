import Foundation
import MizarBPF
import MizarNet
import MizarTestSupport
import Testing

@Suite("XDP attach through bpf_link on real veths", .serialized)
struct XDPAttachTests {
    @Test(arguments: [XDPMode.native, XDPMode.generic])
    func attachCountsRealTrafficAndDetaches(mode: XDPMode) throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        let object = try TestPaths.testObject("maps.bpf.o")
        try object.load()
        let program = try object.program(named: "count_packets")
        let counts = try PerCPUMap<UInt32, UInt64>(object.map(named: "test_percpu_array"))

        var link: BPFLink? = try bed.nsB.perform { try XDP.attach(program, ifindex: bed.indexB, mode: mode) }
        let attached = try bed.nsB.perform { try XDP.query(ifindex: bed.indexB) }
        #expect(attached.mode == mode)
        #expect(attached.programName == "count_packets")
        #expect(attached.programID == (try program.id))

        #expect(try bed.ping(count: 3) == 3)
        let seen = try counts.lookup(0)?.reduce(0, +) ?? 0
        #expect(seen >= 3, "at least the 3 echo requests crossed B's ingress")

        _ = link
        link = nil  // closing the last descriptor detaches
        #expect(try bed.nsB.perform { try XDP.query(ifindex: bed.indexB) } == .none)
    }

    @Test func pinnedLinkKeepsProgramAttached() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        let dir = try BPFPinDirectory(path: "/sys/fs/bpf/" + bed.prefix)
        defer { try? dir.removeAll() }
        let object = try TestPaths.testObject("maps.bpf.o")
        try object.load()
        let program = try object.program(named: "count_packets")
        try bed.nsB.perform {
            let link = try XDP.attach(program, ifindex: bed.indexB)
            try dir.pin(link, as: "link")
        }
        #expect(try bed.nsB.perform { try XDP.query(ifindex: bed.indexB) }.programName == "count_packets")
        // Attaching again fails while the link holds the hook.
        #expect(throws: BPFError.self) { try bed.nsB.perform { try XDP.attach(program, ifindex: bed.indexB) } }
        try dir.openLink("link").detach()
        #expect(try bed.nsB.perform { try XDP.query(ifindex: bed.indexB) } == .none)
    }

    @Test func attachToMissingDeviceThrows() throws {
        let object = try TestPaths.testObject("maps.bpf.o")
        try object.load()
        let program = try object.program(named: "count_packets")
        #expect { try XDP.attach(program, ifindex: 999_999) } throws: { ($0 as? BPFError)?.code == .notFound }
        #expect { try XDP.query(ifindex: 999_999) } throws: { ($0 as? BPFError)?.code == .notFound }
    }

    @Test func linkUpdateSwapsProgramAtomically() throws {
        let bed = try VethPairTopology()
        defer { bed.teardown() }
        let maps = try TestPaths.testObject("maps.bpf.o")
        try maps.load()
        let probe = try TestPaths.locator.open("probe.bpf.o")
        try probe.load()
        let link = try bed.nsB.perform { try XDP.attach(maps.program(named: "count_packets"), ifindex: bed.indexB) }
        try link.update(to: probe.program(named: "probe_verdict"))
        #expect(try bed.nsB.perform { try XDP.query(ifindex: bed.indexB) }.programName == "probe_verdict")
    }
}
