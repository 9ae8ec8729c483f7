import MizarAPI
#if canImport(Glibc)
import Glibc
#endif

/// The `mizar` plugin's commands (CNI 1.1.0). Thin by design: transitd owns the veths, maps
/// and agents; an attachment is one transitd endpoint named after it (`Attachment.endpointName`)
/// and labelled with the CNI network, container ID and interface, which DEL and GC go by.
public struct CNIPlugin {
    let environment: CNIEnvironment
    let config: NetConf
    let service: any EndpointService

    public init(environment: CNIEnvironment, config: NetConf, service: any EndpointService) {
        self.environment = environment
        self.config = config
        self.service = service
    }

    /// Runs the command; returns what goes to stdout (nil for nothing).
    public func run() throws(CNIError) -> JSONValue? {
        switch environment.command {
        case .version: return Self.versionInfo
        case .add: return try add().json(config.cniVersion)
        case .del: try del()
        case .check: try check()
        case .status: try status()
        case .gc: try gc()
        }
        return nil
    }

    public static var versionInfo: JSONValue {
        .object(["cniVersion": .string(CNIVersion.latest.rawValue), "supportedVersions": .array(CNIVersion.allCases.map { .string($0.rawValue) })])
    }

    var attachment: Attachment { Attachment(containerID: environment.containerID, ifName: environment.ifName) }
    var ipam: DelegatedIPAM? { config.ipamType.map { DelegatedIPAM(type: $0, environment: environment, config: config.raw) } }

    // MARK: ADD

    func add() throws(CNIError) -> CNIResult {
        let network = try chooseNetwork()
        let name = attachment.endpointName(network: config.name)
        var requested = try requestedAddress()
        var ipamResult: CNIResult?
        if requested == nil, let ipam {
            // A repeated ADD must not take a second address from the delegated plugin.
            if let existing = try service.endpoint(named: name) { return try repeated(existing, network: network) }
            let result = try ipam.add()
            guard let first = result.firstIPv4 else {
                try? ipam.call(.del)
                throw CNIError(.invalidConfig, "ipam plugin \(ipam.type) gave no IPv4 address")
            }
            ipamResult = result
            requested = first.address.address
        }
        let created: Endpoint?
        do {
            created = try plug(network: network, ip: requested)
        } catch {
            // Nothing of a failed ADD stays: the address goes back to the delegated plugin
            // (transitd has already undone its own part).
            if ipamResult != nil { try? ipam?.call(.del) }
            throw error
        }
        guard let created else {
            // transitd holds this attachment already (a concurrent ADD won): answer for it, never
            // re-plug it. The address the delegated plugin gave goes back, unless it is the one
            // the live attachment holds (an IPAM plugin may answer a repeated ADD that way).
            let existing = try service.endpoint(named: name)
            if let ipamResult, existing?.spec.ip != ipamResult.firstIPv4?.address.address { try? ipam?.call(.del) }
            guard let existing else { throw CNIError(.tryAgainLater, "endpoint \(name) came and went during ADD") }
            return try repeated(existing, network: network)
        }
        return result(for: created, ipam: ipamResult)
    }

    /// ADD of an attachment transitd holds (a runtime's retry): the same container, interface,
    /// namespace and network get the result again; one whose interface the kernel lost is an
    /// error (the runtime DELs and ADDs again: a repair here could lose the address to another
    /// container meanwhile); any other holder of the name is refused.
    func repeated(_ existing: Endpoint, network: String) throws(CNIError) -> CNIResult {
        let labels = existing.metadata.labels ?? [:]
        guard labels[CNILabel.network] == config.name, labels[CNILabel.containerID] == environment.containerID, labels[CNILabel.ifName] == environment.ifName,
              sameNamespace(existing.spec.netns, environment.netns), existing.spec.interface == environment.ifName, existing.spec.network == network else {
            throw CNIError(.invalidConfig, "container \(environment.containerID)'s \(environment.ifName) on \(config.name) is attached already "
                           + "(in \(existing.spec.netns ?? "?"), network \(existing.spec.network)): DEL it first")
        }
        guard let look = try service.check(endpoint: existing.name) else {
            throw CNIError(.tryAgainLater, "endpoint \(existing.name) was deleted while this ADD looked at it")
        }
        guard look.healthy else {
            throw CNIError(.internal, "container \(environment.containerID)'s \(environment.ifName) is attached but broken: DEL it, then ADD again",
                           details: look.problems.joined(separator: "; "))
        }
        return result(for: existing, ipam: nil)
    }

    /// Two paths name one namespace (`/run/netns/x` and `/var/run/netns/x`, say): same file.
    func sameNamespace(_ a: String?, _ b: String) -> Bool {
        guard let a else { return false }
        if a == b { return true }
        var sa = stat(), sb = stat()
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// The network: runtimeConfig's, else CNI_ARGS', else the configuration's, else the only
    /// network of the chosen VPC, else transitd's default `net0`.
    func chooseNetwork() throws(CNIError) -> String {
        // An empty value is no choice (a runtime's template may leave one blank).
        func given(_ value: String?) -> String? { value?.isEmpty == false ? value : nil }
        let vpc = given(config.runtimeConfig.vpc) ?? given(environment.args["MIZAR_VPC"]) ?? given(config.vpc)
        let named = given(config.runtimeConfig.network) ?? given(environment.args["MIZAR_NETWORK"]) ?? given(config.network)
        // They come from the runtime and go into request paths: resource names only.
        for name in [vpc, named].compactMap({ $0 }) {
            if let problem = ObjectMeta.problem(with: name) { throw CNIError(.invalidConfig, "VPC or network \"\(name)\": \(problem)") }
        }
        if let named {
            if let vpc {
                guard let network = try service.network(named: named) else { throw CNIError(.invalidConfig, "transitd has no network \(named)") }
                guard network.spec.vpc == vpc else { throw CNIError(.invalidConfig, "network \(named) belongs to VPC \(network.spec.vpc), not \(vpc)") }
            }
            return named
        }
        guard let vpc else { return "net0" }
        let inVPC = try service.networks().filter { $0.spec.vpc == vpc }
        guard inVPC.count == 1 else {
            throw CNIError(.invalidConfig, inVPC.isEmpty ? "VPC \(vpc) has no network" : "VPC \(vpc) has \(inVPC.count) networks: name one (network, MIZAR_NETWORK)")
        }
        return inVPC[0].name
    }

    /// Capability `ips` (or `args.cni.ips`), else `CNI_ARGS` `IP`.
    func requestedAddress() throws(CNIError) -> IPv4Address? {
        for text in config.runtimeConfig.ips + [environment.args["IP"]].compactMap({ $0 }) {
            if let address = IPv4Interface(cidrOrAddress: text)?.address { return address }
            guard text.contains(":") else { throw CNIError(.invalidConfig, "requested IP \"\(text)\" is not an address") }
        }
        return nil
    }

    /// Creates the endpoint (create only: nil when transitd holds one of that name).
    func plug(network: String, ip: IPv4Address?, mac given: MACAddress? = nil) throws(CNIError) -> Endpoint? {
        var mac = given
        if let text = config.runtimeConfig.mac ?? environment.args["MAC"] {
            guard let parsed = MACAddress(text) else { throw CNIError(.invalidConfig, "requested MAC \"\(text)\" is not a MAC address") }
            mac = parsed
        }
        var labels = [CNILabel.network: config.name, CNILabel.containerID: environment.containerID, CNILabel.ifName: environment.ifName]
        labels[CNILabel.podNamespace] = environment.args["K8S_POD_NAMESPACE"]
        labels[CNILabel.podName] = environment.args["K8S_POD_NAME"]
        // Capabilities the runtime filled in: shaper limits and nat forwards, kept by transitd for this endpoint.
        let mappings = config.runtimeConfig.portMappings.map { m in
            EndpointPortMapping(hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol?.lowercased(), hostIP: m.hostIP)
        }
        let spec = EndpointSpec(network: network, ip: ip, mac: mac, netns: environment.netns, interface: environment.ifName, agentHook: config.agentHook,
                                bandwidth: config.runtimeConfig.bandwidth, portMappings: mappings.isEmpty ? nil : mappings)
        return try service.create(Endpoint(name: attachment.endpointName(network: config.name), labels: labels, spec: spec))
    }

    /// The result: the host veth, the container's interface, its address and default route,
    /// after what earlier plugins of a chain reported.
    func result(for endpoint: Endpoint, ipam: CNIResult?) -> CNIResult {
        var result = config.prevResult ?? CNIResult()
        let first = result.interfaces.count
        result.interfaces.append(["name": .string(endpoint.spec.hostInterface ?? "")])
        var inside: [String: JSONValue] = ["name": .string(environment.ifName), "sandbox": .string(environment.netns)]
        if let mac = endpoint.spec.mac { inside["mac"] = .string(mac.description) }
        if let mtu = endpoint.status?.mtu { inside["mtu"] = .number(Double(mtu)) }
        result.interfaces.append(inside)
        if let status = endpoint.status {
            result.ips.append(["address": .string(status.address.description), "gateway": .string(status.gateway.description),
                               "interface": .number(Double(first + 1))])
            // The namespace's first interface gets the default route; a second one (another network) does not.
            if status.defaultRoute ?? true { result.routes.append(["dst": .string("0.0.0.0/0"), "gw": .string(status.gateway.description)]) }
        }
        if let dns = config.dns ?? ipam?.dns { result.dns = dns }
        return result
    }

    // MARK: DEL, CHECK

    /// Idempotent: an attachment transitd never saw, a namespace or interface already gone
    /// all succeed.
    func del() throws(CNIError) {
        try service.deleteEndpoint(named: attachment.endpointName(network: config.name))
        try ipam?.call(.del)
    }

    func check() throws(CNIError) {
        let name = attachment.endpointName(network: config.name)
        guard let endpoint = try service.endpoint(named: name), endpoint.metadata.labels?[CNILabel.containerID] == environment.containerID else {
            throw CNIError(.unknownContainer, "transitd holds no attachment of container \(environment.containerID) (\(environment.ifName)) on network \(config.name)")
        }
        guard let status = endpoint.status else { throw CNIError(.internal, "transitd reported no status for endpoint \(name)") }
        if let prev = config.prevResult, let reported = prev.firstIPv4, reported.address != status.address {
            throw CNIError(.internal, "prevResult says \(reported.address) but transitd holds \(status.address) for endpoint \(name)")
        }
        guard sameNamespace(endpoint.spec.netns, environment.netns), endpoint.spec.interface == environment.ifName else {
            throw CNIError(.unknownContainer, "endpoint \(name) serves \(endpoint.spec.interface ?? "?") in \(endpoint.spec.netns ?? "?"), not \(environment.ifName) in \(environment.netns)")
        }
        guard let look = try service.check(endpoint: name) else {
            throw CNIError(.unknownContainer, "transitd holds no attachment of container \(environment.containerID) (\(environment.ifName)) on network \(config.name)")
        }
        guard look.healthy else {
            throw CNIError(look.gone ? .unknownContainer : .internal, "endpoint \(name) is not as ADD left it", details: look.problems.joined(separator: "; "))
        }
        try ipam?.call(.check)
    }

    // MARK: STATUS, GC

    /// Code 50 when transitd cannot be reached or its store is not open; 51 when it answers
    /// but transit XDP is gone (existing containers are cut off). An endpoint of its own in
    /// trouble does not stop ADDs: CHECK reports that one.
    func status() throws(CNIError) {
        let health: Health
        do { health = try service.health() } catch {
            throw CNIError(.notAvailable, "transitd is not available", details: error.message)
        }
        let failing = { (check: String) in health.checks[check].map { !$0.hasPrefix("ok") } ?? false }
        if failing("transitXDP") {
            throw CNIError(.limitedConnectivity, "transitd's data plane is not in place", details: health.checks["transitXDP"] ?? "")
        }
        if failing("store") { throw CNIError(.notAvailable, "transitd's store is not open", details: health.checks["store"] ?? "") }
        // Spec: a plugin that delegates IPAM asks it too.
        try ipam?.status()
    }

    /// Removes this network's attachments on this droplet that the runtime no longer names,
    /// with their veths and addresses.
    func gc() throws(CNIError) {
        let valid = Set(config.validAttachments)
        var firstError: CNIError?
        for endpoint in try service.endpoints() {
            guard endpoint.status?.local ?? true, let labels = endpoint.metadata.labels, labels[CNILabel.network] == config.name,
                  let id = labels[CNILabel.containerID], let ifName = labels[CNILabel.ifName] else { continue }
            let attachment = Attachment(containerID: id, ifName: ifName)
            guard !valid.contains(attachment) else { continue }
            do {
                try service.deleteEndpoint(named: endpoint.name)
                try ipam?.call(.del, attachment: attachment)
            } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }
}
