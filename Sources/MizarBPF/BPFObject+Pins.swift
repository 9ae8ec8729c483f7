import CLibBPF
import Foundation

extension BPFPinDirectory {
    /// The directory `name` below this one (created if needed).
    public func subdirectory(_ name: String) throws -> BPFPinDirectory { try BPFPinDirectory(path: pathFor(name)) }

    /// True when something is pinned as `name`.
    public func contains(_ name: String) -> Bool { FileManager.default.fileExists(atPath: pathFor(name)) }

    /// The pin name of a map: bpffs refuses dots, so a data section's map (`.data.<name>`)
    /// is pinned as `data_<name>`; any other map by its own name.
    public static func pinName(ofMap map: String) -> String {
        String(map.drop { $0 == "." }.map { $0 == "." ? "_" : $0 })
    }
}

extension BPFObject {
    /// Opens (with `open`, which also sets globals, sizes and shared maps) and loads an
    /// object whose maps are pinned in `directory`: a map already pinned there is reused as
    /// it is (its entries survive the process that made it), a missing one is created and
    /// pinned. Maps shared from another object (`reuseMap`), maps named in `except` and
    /// internal ones (`.rodata`, `.bss`) are left alone, but for the data sections named in
    /// `sections` (a global that is a table, `.data.<name>`), pinned like maps.
    ///
    /// When a pinned map no longer fits the object (another key, value, type, size or flags:
    /// the object changed), the object's pins are removed and it is opened and loaded again
    /// with fresh maps; `reused` is false then (the state is gone). With `keepFitting`, only
    /// the pins that no longer fit go and the others are taken over (a plugin's upgrade:
    /// state whose shape is unchanged survives); `reused` is false then too.
    public static func loadPinned(in directory: BPFPinDirectory, except: Set<String> = [], sections: Set<String> = [],
                                  keepFitting: Bool = false, open: () throws -> BPFObject) throws -> (object: BPFObject, reused: Bool) {
        func attempt() throws -> (BPFObject, [String]) {
            let object = try open()
            let names = object.ownMapNames(including: sections).filter { !except.contains($0) }
            for map in names { try object.setPinPath(directory.pathFor(BPFPinDirectory.pinName(ofMap: map)), ofMap: map) }
            return (object, names)
        }
        let (object, names) = try attempt()
        let pinned = names.filter { directory.contains(BPFPinDirectory.pinName(ofMap: $0)) }
        do {
            try object.load()
            return (object, !pinned.isEmpty)
        } catch let error as BPFError where !pinned.isEmpty && error.code != .verifierRejected {
            // A mismatching pin fails the load before anything is created: start afresh
            // (libbpf loads an object once, so it is opened again).
            if keepFitting {
                let misfits = pinned.filter { !object.fits($0, try? directory.openMap(BPFPinDirectory.pinName(ofMap: $0))) }
                guard !misfits.isEmpty else { throw error }  // not a pin's fault: the state stays
                for map in misfits { try directory.unpin(BPFPinDirectory.pinName(ofMap: map)) }
                do {
                    let (kept, _) = try attempt()
                    try kept.load()
                    return (kept, false)
                } catch let again as BPFError where again.code != .verifierRejected {
                    // A pin libbpf refuses though it looked fitting: every map afresh, below.
                }
            }
            for map in names { try directory.unpin(BPFPinDirectory.pinName(ofMap: map)) }
            let (fresh, _) = try attempt()
            try fresh.load()
            return (fresh, false)
        }
    }

    /// True when `pinned` could stand for this object's map `name` (libbpf's own test before reusing a pin).
    func fits(_ name: String, _ pinned: BPFMapHandle?) -> Bool {
        var info = bpf_map_info()
        guard let pinned, let map = bpf_object__find_map_by_name(raw, name), mz_map_info(pinned.fd, &info) == 0 else { return false }
        return info.type == bpf_map__type(map).rawValue && info.key_size == bpf_map__key_size(map) && info.value_size == bpf_map__value_size(map)
            && info.max_entries == bpf_map__max_entries(map) && info.map_flags == bpf_map__map_flags(map) && info.map_extra == bpf_map__map_extra(map)
    }
}

extension BPFObject {
    /// The maps this object will create itself on load: neither internal (`.rodata`, `.bss`),
    /// but for the data sections named in `sections`, nor taken from another object with
    /// `reuseMap` (those already have a descriptor).
    public func ownMapNames(including sections: Set<String> = []) -> [String] {
        var names: [String] = []
        var m = bpf_object__next_map(raw, nil)
        while let map = m {
            let name = String(cString: bpf_map__name(map))
            if !name.contains(".") || sections.contains(name), bpf_map__fd(map) < 0 { names.append(name) }
            m = bpf_object__next_map(raw, map)
        }
        return names
    }
}
