/// The shape of the resources' JSON as an OpenAPI v3 schema: what the Kubernetes CRDs in
/// deploy/crds/ say (`mizarctl crds`). A test encodes every kind with every field set and
/// checks both ways that the schema and the types agree.
public indirect enum Schema: Sendable, Hashable {
    case string(description: String, pattern: String? = nil, values: [String]? = nil)
    case integer(description: String, minimum: Int? = nil, maximum: Int? = nil)
    case boolean(description: String)
    case array(Schema, description: String, maxItems: Int? = nil)
    case object([String: Schema], description: String, required: [String] = [])
    /// Any JSON object (a plugin's own configuration).
    case anyObject(description: String)

    /// The schema as the JSON value an OpenAPI document holds.
    public var json: JSONValue {
        func described(_ d: String, _ fields: [String: JSONValue]) -> JSONValue { .object(fields.merging(["description": .string(d)]) { $1 }) }
        switch self {
        case .string(let d, let pattern, let values):
            var f: [String: JSONValue] = ["type": .string("string")]
            if let pattern { f["pattern"] = .string(pattern) }
            if let values { f["enum"] = .array(values.map(JSONValue.string)) }
            return described(d, f)
        case .integer(let d, let minimum, let maximum):
            var f: [String: JSONValue] = ["type": .string("integer")]
            if let minimum { f["minimum"] = .number(Double(minimum)) }
            if let maximum { f["maximum"] = .number(Double(maximum)) }
            return described(d, f)
        case .boolean(let d): return described(d, ["type": .string("boolean")])
        case .array(let items, let d, let maxItems):
            var f: [String: JSONValue] = ["type": .string("array"), "items": items.json]
            if let maxItems { f["maxItems"] = .number(Double(maxItems)) }
            return described(d, f)
        case .object(let properties, let d, let required):
            var f: [String: JSONValue] = ["type": .string("object"), "properties": .object(properties.mapValues(\.json))]
            if !required.isEmpty { f["required"] = .array(required.sorted().map(JSONValue.string)) }
            return described(d, f)
        case .anyObject(let d): return described(d, ["type": .string("object"), "x-kubernetes-preserve-unknown-fields": .bool(true)])
        }
    }

    static let ipv4 = #"^(\d{1,3}\.){3}\d{1,3}$"#
    static let cidr = #"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"#
    static let mac = #"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"#
    static let names = Schema.array(.string(description: "A droplet's name."), description: "Droplet names.", maxItems: 16)

    /// The `spec` of `kind`.
    public static func spec(of kind: Kind) -> Schema {
        switch kind {
        case .droplet:
            .object(["ip": .string(description: "The droplet's substrate IPv4 address.", pattern: ipv4),
                     "mac": .string(description: "The substrate interface's MAC.", pattern: mac)],
                    description: "A host's substrate interface on the underlay.", required: ["ip", "mac"])
        case .vpc:
            .object(["vni": .integer(description: "The VPC's VNI, unique among VPCs.", minimum: 1, maximum: 16_777_215),
                     "dividers": names,
                     "dividerCount": .integer(description: "Cluster mode: how many live droplets divide the VPC (placed).", minimum: 1, maximum: 16)],
                    description: "A tenant network and the droplets that route between its networks.", required: ["vni"])
        case .network:
            .object(["vpc": .string(description: "The VPC's name."),
                     "cidr": .string(description: "The network's CIDR, /8 to /30, host bits zero.", pattern: cidr),
                     "bouncers": names,
                     "bouncerCount": .integer(description: "Cluster mode: how many live droplets bounce the network (placed).", minimum: 1, maximum: 16)],
                    description: "A subnet of a VPC and the droplets that hold its endpoint table.", required: ["vpc", "cidr"])
        case .endpoint:
            .object(["network": .string(description: "The network's name."),
                     "ip": .string(description: "The endpoint's address; omitted, one is allocated.", pattern: ipv4),
                     "mac": .string(description: "The endpoint's MAC; omitted, a random local one.", pattern: mac),
                     "droplet": .string(description: "The droplet hosting the endpoint; omitted, the one applied to."),
                     "netns": .string(description: "The network namespace transitd plugs the endpoint into (a path)."),
                     "interface": .string(description: "The endpoint's interface inside netns (default eth0)."),
                     "hostInterface": .string(description: "The host side veth: named by transitd with netns, else an existing one."),
                     "agentHook": .string(description: "Where the transit agent runs.", values: AgentHook.allCases.map(\.rawValue)),
                     "bandwidth": .object(["ingressRate": .integer(description: "Bits per second."), "ingressBurst": .integer(description: "Bits."),
                                           "egressRate": .integer(description: "Bits per second."), "egressBurst": .integer(description: "Bits.")],
                                          description: "Rate limits the shaper plugin keeps for the endpoint."),
                     "portMappings": .array(.object(["hostPort": .integer(description: "The droplet's port.", minimum: 1, maximum: 65535),
                                                     "containerPort": .integer(description: "The endpoint's port.", minimum: 1, maximum: 65535),
                                                     "protocol": .string(description: "tcp or udp.", values: ["tcp", "udp"]),
                                                     "hostIP": .string(description: "Empty, 0.0.0.0 or the droplet's address.")],
                                                    description: "A droplet port forwarded to the endpoint.", required: ["hostPort", "containerPort"]),
                                            description: "Ports the nat plugin forwards to the endpoint.")],
                    description: "A VM or container interface in a network.", required: ["network"])
        case .pluginConfig:
            .anyObject(description: "The plugin's own configuration document (docs/plugins.md).")
        case .pluginChain:
            .object(["plugins": .array(.string(description: "A plugin's name."), description: "Plugins in the order frames cross them.")],
                    description: "The plugin chain of one hook (the resource's name: egress, ingress or transit).", required: ["plugins"])
        }
    }

    /// The `status` transitd reports for `kind`, nil when it reports none.
    public static func status(of kind: Kind) -> Schema? {
        switch kind {
        case .droplet:
            .object(["local": .boolean(description: "True on the droplet's own transitd."), "interface": .string(description: "The substrate interface."),
                     "mtu": .integer(description: "The substrate MTU."), "xdpMode": .string(description: "native or generic."),
                     "live": .boolean(description: "Cluster mode: the droplet's lease is alive.")],
                    description: "The droplet as transitd sees it.")
        case .network:
            .object(["vni": .integer(description: "The VPC's VNI."), "gateway": .string(description: "Every endpoint's gateway.", pattern: ipv4),
                     "endpoints": .integer(description: "Endpoints in the network.")], description: "The network as transitd sees it.")
        case .endpoint:
            .object(["vni": .integer(description: "The VPC's VNI."), "local": .boolean(description: "True on the hosting droplet."),
                     "address": .string(description: "Address and prefix inside the namespace.", pattern: cidr),
                     "gateway": .string(description: "The gateway.", pattern: ipv4), "mtu": .integer(description: "The veth's MTU."),
                     "attachment": .string(description: "How the agent is attached."),
                     "defaultRoute": .boolean(description: "The namespace's default route goes through the endpoint.")],
                    description: "The endpoint as transitd sees it.")
        case .vpc, .pluginConfig, .pluginChain: nil
        }
    }
}
