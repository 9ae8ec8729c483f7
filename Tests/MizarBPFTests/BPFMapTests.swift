import Foundation
import MizarBPF
import MizarTestSupport
import Testing

/// Key of the test LPM trie: prefix length, then the address in network order.
struct LPMKey: Equatable {
    var prefixLength: UInt32
    var address: UInt32

    init(_ prefixLength: UInt32, _ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.prefixLength = prefixLength
        self.address = UInt32(bigEndian: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }
}

@Suite("Typed maps")
struct BPFMapTests {
    let object: BPFObject

    init() throws {
        object = try TestPaths.testObject("maps.bpf.o")
        try object.load()
    }

    @Test func hashLookupUpdateDeleteIterate() throws {
        let map = try BPFMap<UInt32, UInt64>(object.map(named: "test_hash"))
        #expect(try map.lookup(1) == nil)
        try map.update(1, 100)
        try map.update(2, 200)
        #expect(try map.lookup(1) == 100)
        #expect(Set(try map.keys()) == [1, 2])
        #expect { try map.update(1, 5, policy: .createOnly) } throws: { ($0 as? BPFError)?.errno == EEXIST }
        #expect(try map.delete(1))
        #expect(try !map.delete(1))
        #expect(try map.lookup(1) == nil)
        #expect(try map.entries().map(\.key) == [2])
    }

    @Test func wrongSizesOrTypesAreRejected() throws {
        let hash = try object.map(named: "test_hash")
        #expect { try BPFMap<UInt64, UInt64>(hash) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
        #expect { try BPFMap<UInt32, UInt32>(hash) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
        #expect { try PerCPUMap<UInt32, UInt64>(hash) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
        #expect { try BPFMap<UInt32, UInt64>(object.map(named: "test_percpu_hash")) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
        #expect { try ProgramArray(hash) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
    }

    @Test func arrayHoldsEveryIndexAndRefusesDelete() throws {
        let map = try BPFMap<UInt32, UInt64>(object.map(named: "test_array"))
        try map.update(3, 33)
        #expect(try map.lookup(3) == 33)
        #expect(try map.lookup(0) == 0)
        #expect(try map.keys().count == 16)
        #expect(throws: BPFError.self) { try map.delete(3) }
        #expect { try map.update(16, 1) } throws: { ($0 as? BPFError)?.errno == E2BIG }
    }

    @Test func lruEvictsOldEntries() throws {
        let map = try BPFMap<UInt32, UInt64>(object.map(named: "test_lru"))
        for i in 0..<UInt32(1000) { try map.update(i, UInt64(i)) }
        let keys = try map.keys()
        #expect(keys.count <= 64 + 2 * 2)  // capacity plus per-CPU free lists
        #expect(try map.lookup(999) == 999)
    }

    @Test func lpmTrieMatchesLongestPrefix() throws {
        let map = try BPFMap<LPMKey, UInt32>(object.map(named: "test_lpm"))
        try map.update(LPMKey(8, 10, 0, 0, 0), 1)
        try map.update(LPMKey(16, 10, 1, 0, 0), 2)
        #expect(try map.lookup(LPMKey(32, 10, 1, 2, 3)) == 2)
        #expect(try map.lookup(LPMKey(32, 10, 2, 0, 1)) == 1)
        #expect(try map.lookup(LPMKey(32, 11, 0, 0, 1)) == nil)
        #expect(try map.entries().count == 2)
    }

    @Test func batchUpdateAndLookup() throws {
        let map = try BPFMap<UInt32, UInt64>(object.map(named: "test_hash"))
        let entries = (0..<UInt32(100_000)).map { (key: $0, value: UInt64($0) * 3) }
        try map.update(batch: entries, chunkSize: 30_000)
        let read = try map.entries(batchSize: 7_000)
        #expect(read.count == 100_000)
        #expect(read.allSatisfy { $0.value == UInt64($0.key) * 3 })
    }

    @Test func batchFallsBackWhereUnsupported() throws {
        let map = try BPFMap<LPMKey, UInt32>(object.map(named: "test_lpm"))
        let batch: [(key: LPMKey, value: UInt32)] = [(LPMKey(24, 10, 0, 1, 0), 7), (LPMKey(24, 10, 0, 2, 0), 8)]
        try map.update(batch: batch)
        #expect(try map.lookup(LPMKey(32, 10, 0, 2, 9)) == 8)
    }

    @Test(arguments: ["test_percpu_hash", "test_percpu_array", "test_lru_percpu"])
    func perCPUValues(mapName: String) throws {
        let map = try PerCPUMap<UInt32, UInt64>(object.map(named: mapName))
        try map.update(1, everyCPU: 5)
        let values = try #require(try map.lookup(1))
        #expect(values.count == map.cpuCount)
        #expect(values.allSatisfy { $0 == 5 })
        let distinct = (0..<map.cpuCount).map { UInt64($0 + 1) }
        try map.update(2, perCPU: distinct)
        #expect(try map.lookup(2) == distinct)
        #expect { try map.update(1, perCPU: [1]) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
    }

    @Test func programCountsIntoPerCPUMap() throws {
        let counts = try PerCPUMap<UInt32, UInt64>(object.map(named: "test_percpu_array"))
        let program = try object.program(named: "count_packets")
        _ = try program.testRun(packet: [UInt8](repeating: 0, count: 60), repeat: 25)
        #expect(try counts.lookup(0)?.reduce(0, +) == 25)
    }
}
