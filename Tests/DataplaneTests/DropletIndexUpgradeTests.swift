import CMizarABI
import MizarBPF
import MizarDataplane
import MizarNet
import MizarTestSupport
import Testing

/// An upgrade from a build whose droplet index was an array map pinned as `droplet_index`:
/// that build's programs read it until they are swapped out, so the droplet keeps it right
/// until `attach`, then unpins it. The new index is pinned as `data_droplet_index`.
@Suite("Droplet index across an upgrade", .serialized)
struct DropletIndexUpgradeTests {
    @Test func anOlderBuildsIndexIsKeptRightUntilAttach() throws {
        let prefix = uniquePrefix()
        let netns = try Netns.create(named: prefix)
        let pins = try BPFPinDirectory(path: "/sys/fs/bpf/" + prefix)
        defer {
            try? pins.removeAll()
            _ = try? Netns.delete(named: prefix)
        }
        let maps = try pins.subdirectory("maps")
        let legacy = try BPFMapHandle.create(.array, name: "droplet_index", keySize: 4, valueSize: 8, maxEntries: 256)
        try maps.pin(legacy, as: "droplet_index")
        let old = try BPFMap<UInt32, UInt64>(legacy)
        func word(_ droplet: DropletAddress, _ flags: UInt64) -> UInt64 { flags << 32 | UInt64(droplet.ip.networkOrder) }
        try old.update(UInt32(Wire.y.ip.bytes[3]), word(Wire.y, 1))  // y was a droplet

        let twin = DropletAddress(ip: IPv4Address(10, 99, 0, Wire.p.ip.bytes[3]), mac: MACAddress("02:00:00:00:00:99")!)  // ends like p
        var droplet: Droplet? = try Droplet(address: Wire.d, interface: "lo", ifindex: 1, mtu: 1500, netns: netns, locator: TestPaths.locator, pins: pins)
        try droplet!.setKnownDroplets([Wire.p, twin, Wire.x])
        // In the old form: known (1), shared (3), gone (0).
        #expect(try old.lookup(UInt32(Wire.x.ip.bytes[3])) == word(Wire.x, 1))
        #expect(try old.lookup(UInt32(Wire.p.ip.bytes[3])).map { $0 >> 32 } == 3)
        #expect(try old.lookup(UInt32(Wire.y.ip.bytes[3])) == 0, "y left while the old programs still run")
        #expect(try droplet!.dropletIndexSlots()[Int(Wire.x.ip.bytes[3])] == UInt64(Wire.x.ip.networkOrder))
        #expect(maps.contains("droplet_index") && maps.contains("data_droplet_index"))

        try droplet!.attach(mode: .generic)
        #expect(!maps.contains("droplet_index"), "no program reads it once transit XDP is swapped")
        try droplet!.setKnownDroplets([Wire.p, Wire.y])
        #expect(try old.lookup(UInt32(Wire.y.ip.bytes[3])) == 0, "no longer written")
        droplet!.detach()
        droplet = nil

        // The new index is a table like the others: a restart takes it over with them.
        let again = try Droplet(address: Wire.d, interface: "lo", ifindex: 1, mtu: 1500, netns: netns, locator: TestPaths.locator, pins: pins)
        #expect(again.adoptedTables && again.adoptedPrograms)
        let slots = try again.dropletIndexSlots()
        #expect(slots[Int(Wire.y.ip.bytes[3])] == UInt64(Wire.y.ip.networkOrder) && slots[Int(Wire.x.ip.bytes[3])] == 0)
    }
}
