import CMizarABI
import Foundation
import MizarBPF
import MizarTestSupport
import Testing

@Suite("BPF objects: open, configure, load")
struct BPFObjectTests {
    @Test func missingFileThrowsNotFound() {
        #expect { try BPFObject(path: "/nonexistent/x.bpf.o") } throws: { ($0 as? BPFError)?.code == .notFound }
    }

    @Test func garbageBytesThrowWithoutCrashing() {
        #expect(throws: BPFError.self) { try BPFObject(bytes: Data("not an ELF file".utf8), name: "garbage") }
    }

    @Test func opensFromMemoryAndLoads() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: TestPaths.locator.path(of: MZ_PROBE_OBJECT)))
        let object = try BPFObject(bytes: bytes, name: "probe-from-memory")
        try object.load()
        #expect(Set(object.programNames).isSuperset(of: [MZ_PROBE_VERDICT_PROG, MZ_PROBE_TAIL_PROG, MZ_PROBE_REDIRECT_PROG]))
        #expect(try object.program(named: MZ_PROBE_VERDICT_PROG).testRun(packet: [UInt8](repeating: 0, count: 64)).action == .pass)
    }

    @Test func unknownProgramOrMapThrowsNotFound() throws {
        let object = try TestPaths.locator.open(MZ_PROBE_OBJECT)
        try object.load()
        #expect { try object.program(named: "nope") } throws: { ($0 as? BPFError)?.code == .notFound }
        #expect { try object.map(named: "nope") } throws: { ($0 as? BPFError)?.code == .notFound }
    }

    @Test func programsAreUnavailableBeforeLoad() throws {
        let object = try TestPaths.locator.open(MZ_PROBE_OBJECT)
        #expect { try object.program(named: MZ_PROBE_VERDICT_PROG) } throws: { ($0 as? BPFError)?.code == .invalidState }
    }

    @Test func globalSetBeforeLoadChangesBehaviour() throws {
        let object = try TestPaths.locator.open(MZ_PROBE_OBJECT)
        try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: XDPAction.drop.rawValue)
        try object.load()
        let result = try object.program(named: MZ_PROBE_VERDICT_PROG).testRun(packet: [UInt8](repeating: 0, count: 64))
        #expect(result.action == .drop)
    }

    @Test func badGlobalsAreRejected() throws {
        let object = try TestPaths.locator.open(MZ_PROBE_OBJECT)
        #expect { try object.setGlobal("no_such_variable", to: UInt32(1)) } throws: { ($0 as? BPFError)?.code == .notFound }
        #expect { try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: UInt64(1)) } throws: { ($0 as? BPFError)?.code == .typeMismatch }
        try object.load()
        #expect { try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: UInt32(1)) } throws: { ($0 as? BPFError)?.code == .invalidState }
    }

    @Test func verifierRejectionCarriesTheLog() throws {
        let object = try TestPaths.testObject("verifier_reject.bpf.o")
        do {
            try object.load()
            Issue.record("the verifier accepted an unchecked packet read")
        } catch let error as BPFError {
            #expect(error.code == .verifierRejected)
            #expect(error.log?.contains("invalid access to packet") == true, "log: \(error.log ?? "none")")
            #expect(error.description.contains("unchecked_read"))
        }
    }

    @Test func mapSizeIsSetAtLoadTime() throws {
        let object = try TestPaths.testObject("maps.bpf.o")
        try object.setMaxEntries(1234, ofMap: "test_hash")
        #expect { try object.setMaxEntries(1, ofMap: "nope") } throws: { ($0 as? BPFError)?.code == .notFound }
        try object.load()
        #expect(try object.map(named: "test_hash").maxEntries == 1234)
        #expect { try object.setMaxEntries(1, ofMap: "test_hash") } throws: { ($0 as? BPFError)?.code == .invalidState }
    }
}
