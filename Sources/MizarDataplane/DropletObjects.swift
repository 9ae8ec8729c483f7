import CMizarABI
import Foundation
import MizarBPF
import MizarNet

/// Where a droplet's programs and maps come from: its two objects loaded now, or — with pins
/// left by an earlier process for the same objects — those very programs and maps, taken over
/// without loading anything (program IDs stay the same).
///
/// Pins (below the droplet's directory): `maps/<map>` (a data section's `.data.<name>` as
/// `data_<name>`) and `progs/<fingerprint>/<program>`,
/// where the fingerprint covers the object files and the table sizes. Objects that changed
/// get a new fingerprint: they are loaded (over the pinned maps when these still fit) and
/// swapped in by the caller; the old programs' pins go.
struct DropletObjects {
    /// The programs the droplet attaches or chains to.
    static let programs = [MZ_TRANSIT_XDP_PROG, MZ_INGRESS_CONTINUE_PROG, MZ_TRANSIT_CONTINUE_PROG, MZ_TRANSIT_AGENT_PROG, MZ_TRANSIT_AGENT_TC_PROG, MZ_VETH_PEER_PROG,
                           MZ_EGRESS_CONTINUE_TC_PROG, MZ_EGRESS_CONTINUE_PROG]
    /// The maps the droplet uses, beyond its tables.
    static let maps = DataplaneMaps.names + [MZ_PLUGIN_CTX_MAP, MZ_PLUGIN_STATS_MAP, MZ_CHAIN_ACTIVE_MAP, MZ_TRANSIT_STATS_MAP, MZ_AGENT_STATS_MAP,
                                             MZ_INGRESS_ROOT_MAP, MZ_TRANSIT_ROOT_MAP, MZ_EGRESS_ROOT_MAP, MZ_EGRESS_ROOT_TC_MAP] + traceMaps
    /// The trace filter, ring and lost-event count: one of each per droplet, as its transit XDP makes them.
    static let traceMaps = [MZ_TRACE_MAP, MZ_TRACE_EVENTS_MAP, MZ_TRACE_LOST_MAP]

    private var programByName: [String: BPFProgram] = [:]
    private var mapByName: [String: BPFMapHandle] = [:]
    /// The loaded objects (nil when adopted): they own what they made.
    private var objects: [BPFObject] = []
    /// True when the tables came from pins (their entries are an earlier process's).
    private(set) var adoptedTables = false
    /// True when the programs came from pins (nothing was loaded).
    private(set) var adoptedPrograms = false
    /// An older build's droplet index, pinned as `legacyIndexPin`, while its programs may run.
    private(set) var legacyDropletIndex: BPFMapHandle?
    static let legacyIndexPin = "droplet_index"

    init(locator: BPFObjectLocator, limits: DropletLimits, pins: BPFPinDirectory?) throws {
        let shared = DataplaneMaps.names + [MZ_PLUGIN_CTX_MAP, MZ_PLUGIN_STATS_MAP, MZ_CHAIN_ACTIVE_MAP] + DropletObjects.traceMaps
        func openTransit() throws -> BPFObject {
            let object = try locator.open(MZ_TRANSIT_XDP_OBJECT)
            for (map, size) in limits.byMap { try object.setMaxEntries(size, ofMap: map) }
            return object
        }
        func openAgent(sharing transit: BPFObject) throws -> BPFObject {
            let object = try locator.open(MZ_TRANSIT_AGENT_OBJECT)
            for map in shared { try object.reuseMap(map, from: transit.map(named: map)) }
            return object
        }
        guard let pins else {
            let transit = try openTransit()
            try transit.load()
            let agent = try openAgent(sharing: transit)
            try agent.load()
            try take(transit, agent)
            return
        }
        let maps = try pins.subdirectory("maps"), progs = try pins.subdirectory("progs")
        // Builds before the index was a data section pinned it as a map: their programs read it
        // until the droplet's attach swaps them (`Droplet.legacyDropletIndex`), also when a
        // process of this build died before attaching and this one takes its programs over.
        if maps.contains(DropletObjects.legacyIndexPin) {
            let old = try maps.openMap(DropletObjects.legacyIndexPin)
            if old.keySize == 4, old.valueSize == 8, old.maxEntries == MZ_DROPLET_INDEX_SLOTS { legacyDropletIndex = old } else { try maps.unpin(DropletObjects.legacyIndexPin) }
        }
        let fingerprint = try DropletObjects.fingerprint(locator: locator, limits: limits)
        if progs.contains(fingerprint), let adopted = try? DropletObjects.open(maps: maps, progs: progs.subdirectory(fingerprint)) {
            (programByName, mapByName) = adopted
            adoptedTables = true
            adoptedPrograms = true
            return
        }
        // Tables, counters and chain roots live in pins: a restarted daemon takes them over as they are.
        let (transit, reused) = try BPFObject.loadPinned(in: maps, sections: [MZ_DROPLET_INDEX_MAP], open: openTransit)
        let agent = try BPFObject.loadPinned(in: maps, except: Set(shared)) { try openAgent(sharing: transit) }.object
        try take(transit, agent)
        adoptedTables = reused
        // Programs of other fingerprints stay attached until the caller swaps them out; their pins go now.
        for old in try progs.names() where old != fingerprint { try progs.subdirectory(old).removeAll() }
        let mine = try progs.subdirectory(fingerprint)
        for name in DropletObjects.programs { try mine.pin(programByName[name]!, as: name) }
    }

    private mutating func take(_ transit: BPFObject, _ agent: BPFObject) throws {
        objects = [transit, agent]
        for name in DropletObjects.programs {
            programByName[name] = try (transit.programNames.contains(name) ? transit : agent).program(named: name)
        }
        for name in DropletObjects.maps {
            mapByName[name] = try (transit.mapNames.contains(name) ? transit : agent).map(named: name)
        }
    }

    private static func open(maps: BPFPinDirectory, progs: BPFPinDirectory) throws -> ([String: BPFProgram], [String: BPFMapHandle]) {
        var programs: [String: BPFProgram] = [:], handles: [String: BPFMapHandle] = [:]
        for name in DropletObjects.programs { programs[name] = try progs.openProgram(name) }
        for name in DropletObjects.maps { handles[name] = try maps.openMap(BPFPinDirectory.pinName(ofMap: name)) }
        return (programs, handles)
    }

    /// FNV-1a over the two object files and the table sizes: equal only for the same programs.
    static func fingerprint(locator: BPFObjectLocator, limits: DropletLimits) throws -> String {
        var hash = FNV1a()
        for file in [MZ_TRANSIT_XDP_OBJECT, MZ_TRANSIT_AGENT_OBJECT] {
            hash.mix(try Data(contentsOf: URL(fileURLWithPath: try locator.path(of: file))))
        }
        for (map, size) in limits.byMap.sorted(by: { $0.0 < $1.0 }) { hash.mix("\(map)=\(size);".utf8) }
        return String(hash.value, radix: 16)
    }

    func program(_ name: String) -> BPFProgram { programByName[name]! }
    func map(_ name: String) -> BPFMapHandle { mapByName[name]! }
}
