import MizarAddresses

/// Which droplets hold a role, by rendezvous (highest-random-weight) hashing: every droplet
/// gets a weight per role from a hash of both names, and the role goes to the heaviest
/// `count`. Any host computes the same answer from the same droplets, and when a droplet
/// joins or leaves only the roles it wins or held move.
public enum Placement {
    /// The `count` droplets of `droplets` that weigh most for `role` (a key such as
    /// `network/n1`), sorted by name; fewer when there are fewer droplets.
    public static func choose(_ count: Int, of droplets: some Sequence<String>, for role: String) -> [String] {
        let ranked = Set(droplets).map { ($0, weight(role, $0)) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        return ranked.prefix(max(0, count)).map(\.0).sorted()
    }

    /// FNV-1a of both names, finished with splitmix64's mixer so that similar names weigh apart.
    static func weight(_ role: String, _ droplet: String) -> UInt64 {
        var h = FNV1a()
        h.mix(role.utf8)
        h.mix([0])
        h.mix(droplet.utf8)
        var z = h.value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// The role keys of networks and VPCs.
    public static func role(network name: String) -> String { "network/" + name }
    public static func role(vpc name: String) -> String { "vpc/" + name }

    /// How many bouncers a network gets and dividers a VPC gets when its manifest does not say.
    public static let defaultCount = 2
}
