/// A CNI spec version `mizar` speaks. Results and errors are shaped for the version the
/// runtime asked for (the configuration's `cniVersion`).
public enum CNIVersion: String, Sendable, CaseIterable, Comparable, Codable {
    case v0_3_0 = "0.3.0"
    case v0_3_1 = "0.3.1"
    case v0_4_0 = "0.4.0"
    case v1_0_0 = "1.0.0"
    case v1_1_0 = "1.1.0"

    public static let latest = CNIVersion.v1_1_0

    /// Parses `text`, naming the supported versions when it is not one.
    public static func parse(_ text: String, field: String = "cniVersion") throws(CNIError) -> CNIVersion {
        guard let version = CNIVersion(rawValue: text) else {
            throw CNIError(.incompatibleVersion, "\(field) \"\(text)\" is not supported",
                           details: "supported versions: " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return version
    }

    public static func < (a: CNIVersion, b: CNIVersion) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Before 1.0.0 each IP carried `version: "4"`.
    var ipsCarryVersion: Bool { self < .v1_0_0 }
    /// 1.1.0 added the interface's `mtu`.
    var interfacesCarryMTU: Bool { self >= .v1_1_0 }
    /// The first version with the command, nil when every version has it.
    static func introducing(_ command: CNICommand) -> CNIVersion? {
        switch command {
        case .check: .v0_4_0
        case .gc, .status: .v1_1_0
        case .add, .del, .version: nil
        }
    }
}

/// The `CNI_COMMAND`s of spec 1.1.0.
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD", del = "DEL", check = "CHECK", version = "VERSION", status = "STATUS", gc = "GC"
}
