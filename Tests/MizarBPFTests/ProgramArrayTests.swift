import CMizarABI
import MizarBPF
import MizarTestSupport
import Testing

@Suite("Program arrays and tail calls")
struct ProgramArrayTests {
    @Test func tailCallFollowsTheSlot() throws {
        let object = try TestPaths.locator.open(MZ_PROBE_OBJECT)
        try object.setGlobal(MZ_PROBE_VERDICT_VAR, to: XDPAction.tx.rawValue)
        try object.load()
        let chain = try ProgramArray(object.map(named: MZ_PROBE_CHAIN_MAP))
        let entry = try object.program(named: MZ_PROBE_TAIL_PROG)
        let target = try object.program(named: MZ_PROBE_VERDICT_PROG)
        let packet = [UInt8](repeating: 0, count: 64)

        #expect(try entry.testRun(packet: packet).returnValue == UInt32(MZ_PROBE_TAIL_MISSED))
        try chain.set(0, to: target)
        #expect(try chain.programID(at: 0) == target.id)
        #expect(try entry.testRun(packet: packet).action == .tx)
        #expect(try chain.clear(0))
        #expect(try !chain.clear(0))
        #expect(try chain.programID(at: 0) == nil)
        #expect(try entry.testRun(packet: packet).returnValue == UInt32(MZ_PROBE_TAIL_MISSED))
        #expect(throws: BPFError.self) { try chain.set(chain.capacity, to: target) }
    }
}
