import CMizarABI
import MizarBPF
import MizarNet

/// The endpoint's own end of its veth pair (inside the container or VM namespace).
public struct EndpointPeer: Hashable, Sendable {
    public var netns: Netns
    public var interface: String

    public init(netns: Netns, interface: String) {
        self.netns = netns
        self.interface = interface
    }
}

/// An endpoint hosted by this droplet, behind a veth whose host side is in the droplet's namespace.
public struct LocalEndpoint: Hashable, Sendable {
    public var vni: VNI
    public var ip: IPv4Address
    public var mac: MACAddress
    /// The host-side veth (in the droplet's namespace): the transit agent attaches here.
    public var hostInterface: String
    /// When given, the endpoint side is prepared too: an MTU that leaves room for the overlay,
    /// and what lets it take frames transit XDP redirects into the veth — GRO with the TC
    /// agent; with the XDP agent an XDP_PASS program and tx checksum offload off (a partial
    /// checksum does not survive an XDP redirect).
    public var peer: EndpointPeer?
    /// Where this endpoint's agent runs; nil takes the droplet's `agentHook`. TC suits bulk
    /// TCP, XDP small packets and latency (docs/transit-agent.md).
    public var agentHook: AgentHook?

    public init(vni: VNI, ip: IPv4Address, mac: MACAddress, hostInterface: String, peer: EndpointPeer? = nil, agentHook: AgentHook? = nil) {
        self.vni = vni
        self.ip = ip
        self.mac = mac
        self.hostInterface = hostInterface
        self.peer = peer
        self.agentHook = agentHook
    }

    public var id: EndpointID { EndpointID(vni: vni, ip: ip) }
}

/// A plugged endpoint: its spec, its host-side ifindex and how to undo its attachments.
final class PluggedEndpoint: @unchecked Sendable {
    let spec: LocalEndpoint
    let ifindex: Int32
    var detachers: [() -> Void] = []
    /// Where the agent runs: "tc", or the XDP mode it got ("native", "generic").
    var agentAttachment = ""
    /// The bouncer entry this endpoint hides while plugged, put back when it is unplugged.
    var shadowed: mz_endpoint?
    /// Its slot of `endpoint_stats` (0: not counted, every slot taken).
    var statsSlot: UInt16 = 0

    init(spec: LocalEndpoint, ifindex: Int32) {
        self.spec = spec
        self.ifindex = ifindex
    }

    /// Detaches what is still attached; a veth already deleted took its programs with it.
    func detach() {
        for undo in detachers.reversed() { undo() }
        detachers = []
    }
}

extension Droplet {
    /// Hosts an endpoint here: attaches the transit agent to its host-side veth, prepares the
    /// peer side, and enters it in the tables so traffic to it is delivered locally.
    /// On failure nothing stays attached or entered. Plugging an endpoint that is already
    /// plugged the same way succeeds and changes nothing (runtimes retry).
    public func plug(_ endpoint: LocalEndpoint, mode: XDPMode = .auto) throws {
        try lock.withLock {
            if let plugged = state.locals[endpoint.id] {
                guard plugged.spec == endpoint else { throw DataplaneError(.conflict, "endpoint \(endpoint.id) is already plugged differently") }
                return
            }
            guard let network = state.network(containing: endpoint.ip, in: endpoint.vni) else {
                throw DataplaneError(.notFound, "endpoint \(endpoint.id): no network of VPC \(endpoint.vni) holds \(endpoint.ip)")
            }
            let host = try RouteSocket(in: netns).link(named: endpoint.hostInterface)
            guard let gatewayMAC = host.mac else { throw DataplaneError(.invalidArgument, "\(endpoint.hostInterface) has no MAC address") }
            if state.locals.values.contains(where: { $0.ifindex == host.index }) {
                throw DataplaneError(.conflict, "\(endpoint.hostInterface) already serves another endpoint")
            }
            let plugged = PluggedEndpoint(spec: endpoint, ifindex: host.index)
            do {
                // Read before anything is written, so that a failure puts back exactly this.
                // A local entry found here was left by an earlier process (pinned tables): nothing to put back.
                plugged.shadowed = try maps.endpoints.lookup(endpoint.id.key).flatMap { $0.flags & UInt8(MZ_ENDPOINT_LOCAL) == 0 ? $0 : nil }
                if let peer = endpoint.peer { try preparePeer(peer, of: plugged, mode: mode) }
                if host.mtu > endpointMTU { try RouteSocket(in: netns).setMTU(of: endpoint.hostInterface, to: endpointMTU) }
                try attachAgent(to: host.index, of: plugged, mode: mode)
                plugged.statsSlot = try statsSlot(for: endpoint, ifindex: host.index)

                let plen = UInt8(network.cidr.prefixLength)
                var local = mz_local_endpoint()
                local.vni = endpoint.vni.rawValue
                local.ip = endpoint.ip.networkOrder
                withMAC(&local.mac, endpoint.mac)
                withMAC(&local.gw_mac, gatewayMAC)
                local.net_plen = plen
                local.stats_slot = plugged.statsSlot
                var entry = mz_endpoint()
                entry.droplet = address.c
                withMAC(&entry.mac, endpoint.mac)
                entry.flags = UInt8(MZ_ENDPOINT_LOCAL)
                entry.net_plen = plen
                entry.ifindex = UInt32(host.index)
                entry.stats_slot = plugged.statsSlot
                withMAC(&entry.gw_mac, gatewayMAC)
                try maps.localEndpoints.update(UInt32(host.index), local)
                try maps.endpoints.update(endpoint.id.key, entry)
                state.endpointsBound = state.endpointsBound.map { $0 + 1 }
            } catch {
                plugged.detach()
                _ = try? maps.localEndpoints.delete(UInt32(host.index))
                try? restoreEndpointEntry(of: plugged)
                throw error
            }
            state.locals[endpoint.id] = plugged
        }
    }

    /// Stops hosting an endpoint: detaches its agent, removes its entries. Traffic to it is
    /// then dropped and counted here (or bounced, if a bouncer entry for it was programmed).
    /// Unplugging an endpoint that is not plugged succeeds.
    public func unplug(_ id: EndpointID) throws {
        try lock.withLock {
            guard let plugged = state.locals[id] else { return }
            try unplugLocked(plugged)
        }
    }

    /// Endpoints hosted here.
    public var localEndpoints: [LocalEndpoint] { lock.withLock { state.locals.values.map(\.spec) } }

    /// How each program of this droplet is attached, by interface: transit XDP on the
    /// substrate interface ("xdp native" or, where native XDP is impossible, "xdp generic",
    /// which is also logged) and the agent on each endpoint's veth ("tc" or "xdp <mode>").
    public var attachments: [String: String] {
        lock.withLock {
            var result: [String: String] = [:]
            if let mode = attachedMode { result[interface] = "xdp \(mode)" }
            for plugged in state.locals.values where !plugged.detachers.isEmpty { result[plugged.spec.hostInterface] = plugged.agentAttachment }
            return result
        }
    }

    func unplugLocked(_ plugged: PluggedEndpoint) throws {
        plugged.detach()
        try maps.localEndpoints.delete(UInt32(plugged.ifindex))
        try restoreEndpointEntry(of: plugged)
        state.locals[plugged.spec.id] = nil
    }

    /// Puts back the bouncer entry a local endpoint shadowed, or deletes the entry.
    private func restoreEndpointEntry(of plugged: PluggedEndpoint) throws {
        if let remote = plugged.shadowed {
            try maps.endpoints.update(plugged.spec.id.key, remote)
        } else {
            try maps.endpoints.delete(plugged.spec.id.key)
        }
    }

    private func preparePeer(_ peer: EndpointPeer, of plugged: PluggedEndpoint, mode: XDPMode) throws {
        let socket = try RouteSocket(in: peer.netns)
        let link = try socket.link(named: peer.interface)
        if link.mtu > endpointMTU { try socket.setMTU(of: peer.interface, to: endpointMTU) }
        let hook = plugged.spec.agentHook ?? agentHook
        if hook == .xdp { try peer.netns.setTxChecksumming(of: peer.interface, false) }
        if hook == .tc {
            try peer.netns.setGRO(of: peer.interface, true)
        } else {
            let pin = "peer-" + plugged.spec.hostInterface
            let peerLink = try attachXDP(vethPeerProgram, ifindex: link.index, in: peer.netns, mode: mode, what: "veth peer of \(plugged.spec.id)", pin: pin).0
            plugged.detachers.append { [pins] in
                _ = try? pins?.subdirectory("links").unpin(pin)
                try? peerLink.detach()
            }
        }
    }

    private func attachAgent(to ifindex: Int32, of plugged: PluggedEndpoint, mode: XDPMode) throws {
        switch plugged.spec.agentHook ?? agentHook {
        case .xdp:
            let pin = "agent-" + plugged.spec.hostInterface
            let (link, used) = try attachXDP(agentProgram, ifindex: ifindex, in: netns, mode: mode, what: "transit agent on \(plugged.spec.hostInterface)", pin: pin)
            plugged.agentAttachment = "xdp \(used)"
            plugged.detachers.append { [pins] in
                _ = try? pins?.subdirectory("links").unpin(pin)
                try? link.detach()
            }
        case .tc:
            plugged.agentAttachment = "tc"
            // NAPI on the host side: the endpoint's sends are batched (and may be sent from XDP).
            try netns.setGRO(of: plugged.spec.hostInterface, true)
            let filter = try netns.perform { try TCFilter.attach(agentTCProgram, ifindex: ifindex) }
            let netns = self.netns
            plugged.detachers.append { _ = try? netns.perform { try filter.detach() } }
        }
    }
}
