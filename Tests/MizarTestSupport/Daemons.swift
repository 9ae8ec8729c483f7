import Foundation

/// The binaries of this build that tests run.
public enum Binaries {
    public static let transitd = TestPaths.root + "/.build/debug/transitd"
    public static let mizarctl = TestPaths.root + "/.build/debug/mizarctl"
    /// The CNI plugin.
    public static let mizar = TestPaths.root + "/.build/debug/mizar"
    public static let controller = TestPaths.root + "/.build/debug/mizar-controller"
}

extension DaemonLab {
    /// A lab of `droplets` with transitd started on each (torn down when start fails).
    public static func running(_ droplets: [String], extra: [String] = []) throws -> DaemonLab {
        let lab = try DaemonLab(droplets: droplets, transitd: Binaries.transitd, bpfDir: TestPaths.bpfDir)
        lab.extraArguments = extra
        do {
            for name in droplets { try lab.start(name) }
        } catch {
            lab.teardown()
            throw error
        }
        return lab
    }
}
