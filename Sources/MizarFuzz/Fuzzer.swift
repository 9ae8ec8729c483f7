import CMizarABI
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTopology

/// One program under fuzz: transit XDP of a droplet, or the agent of an endpoint.
struct FuzzTarget {
    let name: String
    let netns: Netns
    let program: BPFProgram
    let ingressIfindex: UInt32
    let isAgent: Bool
    let droplet: Droplet
}

/// What the run found.
struct FuzzReport {
    var frames = 0
    var outcomes: [String: Int] = [:]
    var violations: [String] = []

    mutating func violation(_ what: String, target: String, frame: [UInt8]) {
        if violations.count < 1000 {
            violations.append("\(target): \(what)\n  frame: \(frame.map { String(format: "%02x", $0) }.joined())")
        }
    }
}

/// Runs frames through the targets (`BPF_PROG_TEST_RUN`) and checks after each one:
/// - counted exactly once: one outcome slot moved, by one packet;
/// - the verdict is the one the slot's C row names; a passed frame is untouched;
/// - only droplets speak Geneve: nothing from another outer source is forwarded;
/// - nothing crosses VNIs: a delivered frame reaches an endpoint of the Geneve VNI and the
///   inner destination; a bounced frame keeps its VNI and inner frame; the agent encapsulates
///   only with its endpoint's VNI;
/// - no checksum is broken: what the data plane rewrites (outer headers, TTLs) keeps a valid
///   IPv4 header checksum valid, and encapsulation writes a valid one.
struct Fuzzer {
    let targets: [FuzzTarget]
    /// Host-side veth MAC (the source MAC of delivered frames) → the endpoint behind it.
    let endpointsByGateway: [MACAddress: (vni: UInt32, ip: IPv4Address)]
    /// The agent's endpoint: its VNI.
    let agentVNI: UInt32
    var generator: FrameGenerator

    mutating func run(frames: Int, report: inout FuzzReport) throws {
        for _ in 0..<frames {
            let target = generator.pick(targets)
            let frame = generator.mutate(try wellFormed(for: target))
            try check(frame, on: target, report: &report)
            report.frames += 1
        }
    }

    private mutating func wellFormed(for target: FuzzTarget) throws -> [UInt8] {
        if target.isAgent {
            let lep = try target.droplet.maps.localEndpoints.lookup(target.ingressIfindex)
            let ip = lep.map { IPv4Address(networkOrder: $0.ip) } ?? IPv4Address(10, 0, 1, 2)
            let mac = lep.map { MACAddress(bytes: withUnsafeBytes(of: $0.mac) { Array($0) }) } ?? .broadcast
            let dst = generator.chance(0.1) ? generator.pick(generator.droplets).ip : generator.pick(generator.innerTargets)
            return generator.endpointFrame(src: generator.chance(0.9) ? ip : IPv4Address(10, 0, 1, 99), srcMAC: mac, dst: dst,
                                           dstMAC: MACAddress(value: 0x0200_0a00_0101))
        }
        let me = target.droplet.address
        switch Int.random(in: 0..<10, using: &generator.random) {
        case 0: return generator.bytes(Int.random(in: 14...200, using: &generator.random))
        case 1: return PacketBuilder.ethernet(src: generator.pick(generator.droplets).mac, dst: me.mac, etherType: PacketBuilder.etherTypeIPv4,
                                              payload: PacketBuilder.ipv4(src: generator.pick(generator.droplets).ip, dst: me.ip, protocol: PacketBuilder.protocolUDP,
                                                                          payload: PacketBuilder.udp(src: me.ip, dst: me.ip, sourcePort: 1, destinationPort: 53, payload: generator.bytes(8))))
        default: return generator.geneveFrame(to: me)
        }
    }

    private func check(_ frame: [UInt8], on target: FuzzTarget, report: inout FuzzReport) throws {
        let before = target.isAgent ? try outcomes(target.droplet.agentCounters()) : try outcomes(target.droplet.transitCounters())
        let result = try target.netns.perform { try target.program.testRun(packet: frame, ingressIfindex: target.ingressIfindex) }
        let after = target.isAgent ? try outcomes(target.droplet.agentCounters()) : try outcomes(target.droplet.transitCounters())
        let moved = after.filter { $0.value.packets != before[$0.key]?.packets }
        guard moved.count == 1, let (slot, counter) = moved.first, counter.packets - (before[slot]?.packets ?? 0) == 1 else {
            report.violation("counted \(moved.count) times: \(moved.keys.map(\.name).sorted())", target: target.name, frame: frame)
            return
        }
        report.outcomes["\(target.name) \(slot.name)", default: 0] += 1
        if result.action != slot.action {
            report.violation("verdict \(result.action.map { "\($0)" } ?? "\(result.returnValue)") but slot \(slot.name) says \(slot.action.map { "\($0)" } ?? "event")",
                             target: target.name, frame: frame)
        }
        if let problem = target.isAgent ? agentProblem(frame, result, slot.name) : transitProblem(frame, result, slot.name) {
            report.violation(problem, target: target.name, frame: frame)
        }
    }

    private func outcomes<S: DescribedSlot>(_ counters: SlotCounters<S>) -> [SlotInfo: Counter] {
        var result: [SlotInfo: Counter] = [:]
        for slot in S.allCases where !slot.isEvent { result[slot.info] = counters[slot] }
        return result
    }

    /// Whether the outer IPv4 source of `frame` is a droplet of the lab.
    private func fromDroplet(_ frame: [UInt8]) -> Bool {
        frame.count >= 30 && generator.droplets.contains { $0.ip == IPv4Address(bytes: Array(frame[26..<30])) }
    }

    private func transitProblem(_ input: [UInt8], _ result: XDPTestRunResult, _ slot: String) -> String? {
        let output = result.packet
        if result.action == .redirect || result.action == .tx, !fromDroplet(input) {
            return "forwarded Geneve from \(IPv4Address(bytes: Array(input[26..<30]))), which is no droplet"
        }
        switch result.action {
        case .pass?:
            return output == input ? nil : "a passed frame was changed"
        case .redirect?:
            guard let outer = Overlay(input), output.count >= 34 else { return "delivered, but the input is no Geneve frame" }
            guard let endpoint = endpointsByGateway[MACAddress(bytes: Array(output[6..<12]))] else { return "delivered to no endpoint's veth" }
            guard endpoint.vni == outer.vni else { return "crossed VNIs: Geneve VNI \(outer.vni) delivered to an endpoint of VNI \(endpoint.vni)" }
            guard IPv4Address(bytes: Array(output[30..<34])) == endpoint.ip else { return "delivered to an endpoint that is not the inner destination" }
            return Array(output[12...]) == Array(input[(outer.innerStart + 12)...]) ? nil : "the delivered inner frame differs from the one sent beyond its MACs"
        case .tx?:
            guard let before = Overlay(input), let after = Overlay(output) else { return "sent on, but not as a Geneve frame" }
            if after.vni != before.vni { return "crossed VNIs: sent on with VNI \(after.vni), received with \(before.vni)" }
            if before.checksumValid && !after.checksumValid { return "sent on with a broken outer IPv4 checksum" }
            return Array(output[after.innerStart...]) == Array(input[before.innerStart...]) ? nil : "the inner frame changed on a bounce"
        default:
            return nil
        }
    }

    private func agentProblem(_ input: [UInt8], _ result: XDPTestRunResult, _ slot: String) -> String? {
        guard result.action == .redirect else { return nil }
        let output = result.packet
        if slot == "local" {
            guard output.count >= 12, let endpoint = endpointsByGateway[MACAddress(bytes: Array(output[6..<12]))] else { return "redirected to no endpoint" }
            return endpoint.vni == agentVNI ? nil : "crossed VNIs: an endpoint of VNI \(agentVNI) reached one of VNI \(endpoint.vni)"
        }
        guard let outer = Overlay(output) else { return "\(slot): not encapsulated" }
        if outer.vni != agentVNI { return "crossed VNIs: encapsulated with VNI \(outer.vni) for an endpoint of VNI \(agentVNI)" }
        if !outer.checksumValid { return "encapsulated with a broken outer IPv4 checksum" }
        let innerValid = ipv4ChecksumValid(output, at: outer.innerStart + 14)
        return innerValid == ipv4ChecksumValid(input, at: 14) ? nil : "the inner IPv4 checksum went from \(!innerValid) to \(innerValid)"
    }
}

/// The outer headers of an Ethernet/IPv4/UDP 6081/Geneve frame.
struct Overlay {
    let vni: UInt32
    let checksumValid: Bool
    /// Where the inner Ethernet frame starts.
    let innerStart: Int

    init?(_ f: [UInt8]) {
        guard f.count >= 14 + 20 + 8 + 8, f[12] == 0x08, f[13] == 0x00, f[14] >> 4 == 4 else { return nil }
        let ihl = Int(f[14] & 0x0f) * 4
        let udp = 14 + ihl
        guard ihl >= 20, f[23] == 17, f.count >= udp + 16, Int(f[udp + 2]) << 8 | Int(f[udp + 3]) == Int(MZ_GENEVE_UDP_PORT) else { return nil }
        let gnv = udp + 8
        vni = UInt32(f[gnv + 4]) << 16 | UInt32(f[gnv + 5]) << 8 | UInt32(f[gnv + 6])
        innerStart = gnv + 8 + Int(f[gnv] & 0x3f) * 4
        guard innerStart <= f.count else { return nil }
        checksumValid = ipv4ChecksumValid(f, at: 14)
    }
}

/// Whether the IPv4 header at `offset` has a valid checksum (false when it is cut short).
func ipv4ChecksumValid(_ f: [UInt8], at offset: Int) -> Bool {
    guard f.count >= offset + 20 else { return false }
    let ihl = Int(f[offset] & 0x0f) * 4
    guard ihl >= 20, f.count >= offset + ihl else { return false }
    return PacketBuilder.internetChecksum(Array(f[offset..<offset + ihl])) == 0
}
