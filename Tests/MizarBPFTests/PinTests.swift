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

    /// An object whose maps changed shape since they were pinned (a plugin upgrade): the
    /// misfit is made fresh; with `keepFitting` the maps that still fit keep their entries,
    /// without it every map starts afresh.
    @Test(arguments: [true, false])
    func aPinThatNoLongerFitsGoesAlone(keepFitting: Bool) throws {
        let dir = try BPFPinDirectory(path: "/sys/fs/bpf/" + uniquePrefix())
        defer { try? dir.removeAll() }
        do {
            let first = try BPFObject.loadPinned(in: dir, open: { try TestPaths.testObject("maps.bpf.o") })
            #expect(!first.reused)
            try BPFMap<UInt32, UInt64>(first.object.map(named: "test_hash")).update(7, 70)
        }
        // The array was pinned by an older build with 8 slots, not 16.
        #expect(try dir.unpin("test_array"))
        try dir.pin(BPFMapHandle.create(.array, name: "test_array", keySize: 4, valueSize: 8, maxEntries: 8), as: "test_array")
        let (object, reused) = try BPFObject.loadPinned(in: dir, keepFitting: keepFitting, open: { try TestPaths.testObject("maps.bpf.o") })
        #expect(!reused, "a map was made fresh")
        #expect(try object.map(named: "test_array").maxEntries == 16 && dir.openMap("test_array").maxEntries == 16)
        let kept = try BPFMap<UInt32, UInt64>(object.map(named: "test_hash")).lookup(7)
        #expect(kept == (keepFitting ? 70 : nil), "the hash, whose shape is unchanged, \(keepFitting ? "keeps" : "loses") its entry")
    }
}
