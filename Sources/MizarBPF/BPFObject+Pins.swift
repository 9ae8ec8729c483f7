import CLibBPF
import Foundation

extension BPFPinDirectory {
    /// The directory `name` below this one (created if needed).
    public func subdirectory(_ name: String) throws -> BPFPinDirectory { try BPFPinDirectory(path: pathFor(name)) }

    /// True when something is pinned as `name`.
    public func contains(_ name: String) -> Bool { FileManager.default.fileExists(atPath: pathFor(name)) }
}

extension BPFObject {
    /// Opens (with `open`, which also sets globals, sizes and shared maps) and loads an
    /// object whose maps are pinned in `directory`: a map already pinned there is reused as
    /// it is (its entries survive the process that made it), a missing one is created and
    /// pinned. Maps shared from another object (`reuseMap`), maps named in `except` and
    /// internal ones (`.rodata`, `.bss`) are left alone.
    ///
    /// When a pinned map no longer fits the object (another key, value, type or size: the
    /// object changed), the object's pins are removed and it is opened and loaded again with
    /// fresh maps; `reused` is false then (the state is gone).
    public static func loadPinned(in directory: BPFPinDirectory, except: Set<String> = [],
                                  open: () throws -> BPFObject) throws -> (object: BPFObject, reused: Bool) {
        func attempt() throws -> (BPFObject, [String]) {
            let object = try open()
            let names = object.ownMapNames.filter { !except.contains($0) }
            for map in names { try object.setPinPath(directory.pathFor(map), ofMap: map) }
            return (object, names)
        }
        let (object, names) = try attempt()
        let hadPins = names.contains { directory.contains($0) }
        do {
            try object.load()
            return (object, hadPins)
        } catch let error as BPFError where hadPins && error.code != .verifierRejected {
            // A mismatching pin fails the load before anything is created: start afresh
            // (libbpf loads an object once, so it is opened again).
            for map in names { try directory.unpin(map) }
            let (fresh, _) = try attempt()
            try fresh.load()
            return (fresh, false)
        }
    }
}

extension BPFObject {
    /// The maps this object will create itself on load: neither internal (`.rodata`, `.bss`)
    /// nor taken from another object with `reuseMap` (those already have a descriptor).
    public var ownMapNames: [String] {
        var names: [String] = []
        var m = bpf_object__next_map(raw, nil)
        while let map = m {
            let name = String(cString: bpf_map__name(map))
            if !name.contains("."), bpf_map__fd(map) < 0 { names.append(name) }
            m = bpf_object__next_map(raw, map)
        }
        return names
    }
}
