import Foundation
import MizarBPF
import MizarTestSupport
import Testing

@Suite("Pinning on bpffs")
struct PinTests {
    @Test func pinnedMapOutlivesItsObject() throws {
        let dir = try BPFPinDirectory(path: "/sys/fs/bpf/" + uniquePrefix())
        defer { try? dir.removeAll() }
        do {
            let object = try TestPaths.testObject("maps.bpf.o")
            try object.load()
            let handle = try object.map(named: "test_hash")
            try BPFMap<UInt32, UInt64>(handle).update(7, 70)
            try dir.pin(handle, as: "hash")
            try dir.pin(object.program(named: "count_packets"), as: "prog")
        }
        #expect(try dir.names() == ["hash", "prog"])
        let reopened = try BPFMap<UInt32, UInt64>(dir.openMap("hash"))
        #expect(try reopened.lookup(7) == 70)
        #expect(reopened.handle.name == "test_hash")
        #expect(try dir.openProgram("prog").name == "count_packets")
        #expect(try dir.unpin("hash"))
        #expect(try !dir.unpin("hash"))
        #expect { try dir.openMap("hash") } throws: { ($0 as? BPFError)?.code == .notFound }
    }

    @Test func directoryOutsideBpffsIsRejected() throws {
        let path = NSTemporaryDirectory() + uniquePrefix()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try BPFPinDirectory(path: path) } throws: { ($0 as? BPFError)?.code == .invalidState }
    }

    @Test func pinPathMakesLoadReuseTheMap() throws {
        let dir = try BPFPinDirectory(path: "/sys/fs/bpf/" + uniquePrefix())
        defer { try? dir.removeAll() }
        for round in 0..<2 {
            let object = try TestPaths.testObject("maps.bpf.o")
            try object.setPinPath(dir.pathFor("shared"), ofMap: "test_hash")
            try object.load()
            let map = try BPFMap<UInt32, UInt64>(object.map(named: "test_hash"))
            if round == 0 { try map.update(1, 11) } else { #expect(try map.lookup(1) == 11) }
        }
    }
}
