import CMizarABI
import MizarBPF
import MizarDataplane
import MizarNet
import MizarTestSupport
import Testing

/// An upgrade from a build whose droplet index was an array map pinned as `droplet_index`:
/// that build's programs read it until they are swapped out, so the droplet keeps it right,
/// also across a restart before `attach`, and unpins it once attached. The new index is
/// pinned as `data_droplet_index`.
@Suite("Droplet index across an upgrade", .serialized)
struct DropletIndexUpgradeTests {
    @Test func anOlderBuildsIndexIsKeptRightUntilAttach() throws {
        let sandbox = try PinnedNetns()
        defer { sandbox.remove() }
        let (netns, pins) = (sandbox.netns, sandbox.pins)
        let maps = try pins.subdirectory("maps")
        let legacy = try BPFMapHandle.create(.array, name: "droplet_index", keySize: 4, valueSize: 8, maxEntries: 256)
        try maps.pin(legacy, as: "droplet_index")
        let old = try BPFMap<UInt32, UInt64>(legacy)
        func word(_ droplet: DropletAddress, _ flags: UInt64) -> UInt64 { flags << 32 | UInt64(droplet.ip.networkOrder) }
        func open() throws -> Droplet {
            try Droplet(address: Wire.d, interface: "lo", ifindex: 1, mtu: 1500, netns: netns, locator: TestPaths.locator, pins: pins)
        }

        let twin = DropletAddress(ip: IPv4Address(10, 99, 0, Wire.p.ip.bytes[3]), mac: MACAddress("02:00:00:00:00:99")!)  // ends like p
        var droplet: Droplet? = try open()
        try droplet!.setKnownDroplets([Wire.p, Wire.y])
        #expect(try old.lookup(UInt32(Wire.y.ip.bytes[3])) == word(Wire.y, 1))
        // This build's process dies before it attaches: the next one takes its programs over
        // and still writes the old index, which the old programs still read.
        droplet = nil
        droplet = try open()
        #expect(droplet!.adoptedPrograms)
        try droplet!.setKnownDroplets([Wire.p, twin, Wire.x])
        // In the old form: known (1), shared (3), gone and empty (0, slot 0's sentinel too).
        #expect(try old.lookup(UInt32(Wire.x.ip.bytes[3])) == word(Wire.x, 1))
        #expect(try old.lookup(UInt32(Wire.p.ip.bytes[3])).map { $0 >> 32 } == 3)
        #expect(try old.lookup(UInt32(Wire.y.ip.bytes[3])) == 0, "y left while the old programs still run")
        #expect(try old.lookup(0) == 0)
        #expect(try droplet!.dropletIndexSlots()[Int(Wire.x.ip.bytes[3])] == UInt64(Wire.x.ip.networkOrder))
        #expect(maps.contains("droplet_index") && maps.contains("data_droplet_index"))

        try droplet!.attach(mode: .generic)
        #expect(!maps.contains("droplet_index"), "transit XDP is swapped: the pin goes")
        try droplet!.setKnownDroplets([Wire.p, Wire.y])
        #expect(try old.lookup(UInt32(Wire.y.ip.bytes[3])) == word(Wire.y, 1), "written on, for an old agent a failed plug left")
        droplet!.detach()
        droplet = nil

        // The new index is a table like the others: a restart takes it over with them.
        let again = try open()
        #expect(again.adoptedTables && again.adoptedPrograms)
        let slots = try again.dropletIndexSlots()
        #expect(slots[Int(Wire.y.ip.bytes[3])] == UInt64(Wire.y.ip.networkOrder) && slots[Int(Wire.x.ip.bytes[3])] == 0)
    }
}
