import MizarAddresses
import MizarCluster
import Testing

/// Rendezvous placement and address blocks: pure functions, checked exhaustively enough.
@Suite("placement and address blocks")
struct PlacementTests {
    static let droplets = (1...20).map { "droplet-\($0)" }
    static let networks = (1...300).map { "net-\($0)" }

    static func placement(_ droplets: [String], count: Int = 2) -> [String: Set<String>] {
        Dictionary(uniqueKeysWithValues: networks.map { ($0, Set(Placement.choose(count, of: droplets, for: Placement.role(network: $0)))) })
    }

    @Test func sameAnswerEverywhereAndCapped() {
        #expect(Placement.choose(2, of: ["a", "b", "c"], for: "network/n1") == Placement.choose(2, of: ["c", "a", "b"], for: "network/n1"))
        #expect(Placement.choose(5, of: ["a", "b"], for: "network/n1").count == 2)
        #expect(Placement.choose(2, of: [String](), for: "network/n1").isEmpty)
        // Roles spread: no droplet holds more than twice its share of 300 × 2 roles.
        var load: [String: Int] = [:]
        for set in Self.placement(Self.droplets).values { for d in set { load[d, default: 0] += 1 } }
        #expect(load.count == 20 && load.values.max()! <= 2 * 600 / 20, "\(load)")
    }

    /// A droplet leaving moves only the roles it held; one joining moves only the roles it wins.
    @Test func joinAndLeaveMoveOnlyWhatTheyMust() {
        let before = Self.placement(Self.droplets)
        let lost = "droplet-7"
        let after = Self.placement(Self.droplets.filter { $0 != lost })
        var moved = 0, held = 0
        for net in Self.networks {
            moved += before[net]!.subtracting(after[net]!).count
            if before[net]!.contains(lost) { held += 1 }
            #expect(before[net]!.subtracting([lost]).isSubset(of: after[net]!), "\(net): a role moved off a droplet that stayed")
        }
        #expect(moved == held, "\(moved) roles moved for \(held) held by the droplet that left")

        let joined = Self.placement(Self.droplets + ["droplet-21"])
        var won = 0
        for net in Self.networks {
            let gained = joined[net]!.subtracting(before[net]!)
            #expect(gained.isSubset(of: ["droplet-21"]), "\(net): roles moved between droplets that stayed")
            won += gained.count
        }
        // About 600 / 21 roles for the newcomer, and never more than it should take.
        #expect((10...60).contains(won), "the new droplet won \(won) roles")
    }

    @Test func blocksSplitANetwork() throws {
        let cidr = try #require(IPv4Interface("10.1.0.0/24"))
        #expect(AddressBlocks.bases(of: cidr).map { IPv4Address(value: $0).description } == ["10.1.0.0", "10.1.0.64", "10.1.0.128", "10.1.0.192"])
        let first = AddressBlocks.usable(AddressBlocks.bases(of: cidr)[0], in: cidr)
        #expect(first.first?.description == "10.1.0.2" && first.count == 62, "the network and gateway addresses are nobody's")
        #expect(AddressBlocks.usable(AddressBlocks.bases(of: cidr)[3], in: cidr).last?.description == "10.1.0.254")
        let small = try #require(IPv4Interface("10.2.0.0/28"))
        #expect(AddressBlocks.bases(of: small).count == 1 && AddressBlocks.usable(0x0a02_0000, in: small).count == 13)
        #expect(AddressBlocks.base(of: IPv4Address("10.1.0.77")!, in: cidr) == IPv4Address("10.1.0.64")!.value)
    }
}
