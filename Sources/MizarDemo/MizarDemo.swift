import ArgumentParser
import Foundation
import MizarBPF
import MizarDataplane
import MizarNet
import MizarPacket
import MizarTopology

/// `make demo`: transit XDP on a real veth between two namespaces, real traffic across,
/// its counters before and after, and everything removed at the end.
@main
struct MizarDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mizar-demo",
        abstract: "Attach transit XDP natively to a veth between two namespaces, send pings and Geneve frames across, show the counters.",
        discussion: "Needs root. Creates namespaces and a veth pair named mzdemo<N>*, removes them on exit."
    )

    @Option(name: .customLong("bpf-dir"), help: "Directory of compiled BPF objects.")
    var bpfDir: String?

    @Option(help: "Pings and Geneve frames to send.")
    var count = 5

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)  // keep our lines in order with ping's
        let host = try VethPairTopology(prefix: "mzdemo\(getpid() % 10000)")
        defer {
            host.teardown()
            print("\nremoved namespaces \(host.nsA.path) and \(host.nsB.path) (and with them the veth pair)")
        }
        print("namespaces \(host.nsA.path) and \(host.nsB.path), veth \(host.nameA) (\(host.addressA)) <-> \(host.nameB) (\(host.addressB))")

        let transit = try Droplet(interface: host.nameB, in: host.nsB, locator: BPFObjectLocator(explicit: bpfDir))
        let link = try host.nsB.perform { try XDP.attach(transit.transitProgram, ifindex: host.indexB, mode: .native) }
        defer { _ = link }
        let attached = try host.nsB.perform { try XDP.query(ifindex: host.indexB) }
        print("transit XDP attached to \(host.nameB): program \(attached.programName ?? "?") id \(attached.programID), \(attached.mode?.description ?? "?") mode")

        let before = try transit.transitCounters()
        printCounters("counters before", before)

        print("\n$ nsenter --net=\(host.nsA.path) ping -c \(count) \(host.addressB)")
        print(try runCommand(["ping", "-c", "\(count)", "-i", "0.2", host.addressB.description], in: host.nsA).output)

        print("\nsending \(count) Geneve frames (VNI 100, RTS option) from a UDP socket in \(host.nsA.path) to \(host.addressB):6081")
        let inner = PacketBuilder.ethernet(
            src: MACAddress("02:00:0a:00:01:02")!, dst: MACAddress("02:00:0a:00:01:03")!, etherType: PacketBuilder.etherTypeIPv4,
            payload: PacketBuilder.ipv4(src: IPv4Address(10, 0, 1, 2), dst: IPv4Address(10, 0, 1, 3), protocol: PacketBuilder.protocolICMP,
                                        payload: PacketBuilder.icmpEcho(identifier: 7, sequence: 1)))
        let macA = try RouteSocket(in: host.nsA).link(named: host.nameA).mac ?? .broadcast
        let geneve = PacketBuilder.geneve(vni: 100, options: [.returnToSender(dropletIP: host.addressA, dropletMAC: macA)], payload: inner)
        try host.sendUDP(geneve, count: count, port: 6081)

        let after = try transit.transitCounters()
        printCounters("counters after", after)
        printCounters("moved", after.delta(since: before))
        guard after.delta(since: before).totalPackets > 0 else { throw ExitCode.failure }
    }

    private func printCounters(_ title: String, _ counters: TransitCounters) {
        print("\n\(title):")
        print("  " + "SLOT".padding(toLength: 24, withPad: " ", startingAt: 0) + "PACKETS".leftPad(10) + "BYTES".leftPad(12))
        for stat in TransitStat.allCases where counters[stat].packets > 0 {
            print("  " + stat.description.padding(toLength: 24, withPad: " ", startingAt: 0) + "\(counters[stat].packets)".leftPad(10) + "\(counters[stat].bytes)".leftPad(12))
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
