import MizarDataplane
import MizarNet
import MizarPacket

/// SplitMix64: a seeded generator, so a run that finds something can be replayed exactly.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d4_9bb3_1330_11eb
        return z ^ (z >> 31)
    }
}

/// Frames for the fuzz run: well-formed frames of every kind the data plane meets, then
/// (most of the time) mutated — bytes overwritten, bits flipped, cut short, padded.
struct FrameGenerator {
    var random: SeededRandom
    /// Droplets of the lab (known) and an address that is none.
    let droplets: [DropletAddress]
    let stranger = DropletAddress(ip: IPv4Address(172, 30, 0, 77), mac: MACAddress(value: 0x0200_ac1e_004d))
    /// Inner addresses worth aiming at: endpoints of both VPCs, a free address, no network.
    let innerTargets: [IPv4Address]
    let vnis: [UInt32] = [100, 200, 300]

    init(seed: UInt64, droplets: [DropletAddress], innerTargets: [IPv4Address]) {
        random = SeededRandom(seed: seed)
        self.droplets = droplets
        self.innerTargets = innerTargets
    }

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }

    /// An inner (or endpoint) frame from `src`/`srcMAC` to `dst`: ICMP echo, UDP, TCP or ARP.
    mutating func endpointFrame(src: IPv4Address, srcMAC: MACAddress, dst: IPv4Address, dstMAC: MACAddress) -> [UInt8] {
        let ttl = pick([UInt8(64), 1, 0, 2])
        let ipv4 = { (proto: UInt8, payload: [UInt8]) in
            PacketBuilder.ethernet(src: srcMAC, dst: dstMAC, etherType: PacketBuilder.etherTypeIPv4,
                                   payload: PacketBuilder.ipv4(src: src, dst: dst, protocol: proto, payload: payload, ttl: ttl))
        }
        switch Int.random(in: 0..<5, using: &random) {
        case 0: return ipv4(PacketBuilder.protocolICMP, PacketBuilder.icmpEcho(identifier: UInt16.random(in: 0...0xffff, using: &random), sequence: 1, payload: bytes(16)))
        case 1: return ipv4(PacketBuilder.protocolUDP, PacketBuilder.udp(src: src, dst: dst, sourcePort: 40000, destinationPort: pick([53, 6081, 9]), payload: bytes(18)))
        case 2: return ipv4(PacketBuilder.protocolTCP, PacketBuilder.tcp(src: src, dst: dst, sourcePort: 40000, destinationPort: 80))
        case 3: return PacketBuilder.ethernet(src: srcMAC, dst: .broadcast, etherType: PacketBuilder.etherTypeARP,
                                              payload: PacketBuilder.arp(senderMAC: srcMAC, senderIP: src, targetIP: dst))
        default: return ipv4(UInt8.random(in: 0...255, using: &random), bytes(Int.random(in: 0...40, using: &random)))
        }
    }

    /// A Geneve frame to `to` from a droplet (or a stranger), any VNI, with RTS, unknown or critical options.
    mutating func geneveFrame(to: DropletAddress) -> [UInt8] {
        let from = chance(0.9) ? pick(droplets) : stranger
        var options: [GeneveOption] = []
        if chance(0.7) {
            let named = chance(0.9) ? pick(droplets) : stranger
            options.append(.returnToSender(dropletIP: named.ip, dropletMAC: chance(0.9) ? named.mac : stranger.mac))
        }
        if chance(0.2) { options.append(GeneveOption(type: 0x49, data: bytes(4))) }
        if chance(0.05) { options.append(GeneveOption(type: 0xc9, data: [])) }
        options.shuffle(using: &random)
        let inner = endpointFrame(src: IPv4Address(10, 0, 1, UInt8.random(in: 1...254, using: &random)),
                                  srcMAC: MACAddress(value: UInt64.random(in: 0...0xffff_ffff, using: &random) | 0x0200_0000_0000),
                                  dst: pick(innerTargets), dstMAC: MACAddress(value: 0x0200_0a00_0101))
        let vni = chance(0.95) ? pick(vnis) : UInt32.random(in: 0..<(1 << 24), using: &random)
        return PacketBuilder.geneveFrame(outerSrcMAC: from.mac, outerDstMAC: to.mac, outerSrc: from.ip, outerDst: to.ip,
                                         sourcePort: UInt16.random(in: 32768...61000, using: &random), vni: vni, options: options, inner: inner)
    }

    /// Up to four mutations, or none (a third of frames stay well formed).
    mutating func mutate(_ frame: [UInt8]) -> [UInt8] {
        var f = frame
        guard chance(0.67) else { return f }
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where !f.isEmpty: f[Int.random(in: 0..<f.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            case 1 where !f.isEmpty: f[Int.random(in: 0..<f.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
            case 2 where f.count > 14: f.removeLast(Int.random(in: 1...(f.count - 14), using: &random))
            default: f += bytes(Int.random(in: 1...32, using: &random))
            }
        }
        return f
    }
}
