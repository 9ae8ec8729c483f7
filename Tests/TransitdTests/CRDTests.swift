import Foundation
import MizarAPI
import MizarClient
import MizarTestSupport
import Testing
import Yams

/// deploy/crds/ against the MizarAPI types: the committed files are what the types generate,
/// and every field a fully set resource encodes is in its schema with the right type (and
/// the schema names no field the types lack).
@Suite("Kubernetes CRDs")
struct CRDTests {
    /// One resource of each kind with every optional field set.
    static let full: [AnyResource] = [
        .droplet(Droplet(name: "d1", spec: DropletSpec(ip: IPv4Address(10, 0, 0, 1), mac: MACAddress("02:00:00:00:00:01")!),
                         status: .init(local: true, interface: "eth0", mtu: 1500, xdpMode: "native", live: true))),
        .vpc(VPC(name: "v1", spec: VPCSpec(vni: 7, dividers: ["d1"], dividerCount: 1))),
        .network(Network(name: "n1", spec: NetworkSpec(vpc: "v1", cidr: IPv4Interface("10.1.0.0/24")!, bouncers: ["d1"], bouncerCount: 1),
                         status: .init(vni: 7, gateway: IPv4Address(10, 1, 0, 1), endpoints: 1))),
        .endpoint(Endpoint(name: "e1", spec: EndpointSpec(network: "n1", ip: IPv4Address(10, 1, 0, 2), mac: MACAddress("02:00:00:00:00:02")!,
                                                          droplet: "d1", netns: "/run/netns/x", interface: "eth0", hostInterface: "mz1", agentHook: .tc,
                                                          bandwidth: EndpointBandwidth(ingressRate: 1, ingressBurst: 2, egressRate: 3, egressBurst: 4),
                                                          portMappings: [EndpointPortMapping(hostPort: 80, containerPort: 8080, protocol: "tcp", hostIP: "0.0.0.0")]),
                           status: .init(vni: 7, local: true, address: IPv4Interface("10.1.0.2/24")!, gateway: IPv4Address(10, 1, 0, 1), mtu: 1450,
                                         attachment: "tc", defaultRoute: true))),
        .pluginConfig(PluginConfig(name: "acl", spec: PluginConfigSpec(config: .object(["rules": .array([])])))),
        .pluginChain(PluginChain(name: "egress", spec: PluginChainSpec(plugins: ["acl"]))),
    ]

    @Test func committedFilesAreWhatTheTypesGenerate() throws {
        for kind in Kind.allCases {
            let path = TestPaths.root + "/deploy/crds/" + CustomResourceDefinitions.fileName(kind)
            let committed = try String(contentsOfFile: path, encoding: .utf8)
            #expect(committed == (try CustomResourceDefinitions.yaml(kind)), "\(path) is stale: run mizarctl crds -o deploy/crds")
        }
    }

    @Test func schemasMatchTheTypes() throws {
        #expect(Set(Self.full.map(\.kind)) == Set(Kind.allCases))
        for resource in Self.full {
            guard case .object(let json) = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(resource)) else { throw BedError("not an object") }
            let spec = Schema.spec(of: resource.kind).json
            check(json["spec"]!, against: spec, at: "\(resource.kind.rawValue).spec")
            covered(spec, by: json["spec"]!, at: "\(resource.kind.rawValue).spec")
            if let status = Schema.status(of: resource.kind)?.json {
                check(json["status"]!, against: status, at: "\(resource.kind.rawValue).status")
                covered(status, by: json["status"]!, at: "\(resource.kind.rawValue).status")
            } else {
                #expect(json["status"] == nil, "\(resource.kind) reports a status its CRD lacks")
            }
        }
        // The CRD a cluster would load parses and names the kind.
        let yaml = try Yams.load(yaml: try CustomResourceDefinitions.yaml(.network)) as! [String: Any]
        let names = (yaml["spec"] as! [String: Any])["names"] as! [String: Any]
        #expect(names["kind"] as? String == "Network" && names["plural"] as? String == "networks")
    }

    /// Every value in `value` fits `schema` (type, enum, pattern, bounds).
    func check(_ value: JSONValue, against schema: JSONValue, at path: String) {
        guard case .object(let s) = schema, case .string(let type)? = s["type"] else { Issue.record("\(path): no type"); return }
        switch value {
        case .object(let object):
            #expect(type == "object", "\(path): an object where the schema says \(type)")
            if case .bool(true)? = s["x-kubernetes-preserve-unknown-fields"] { return }
            guard case .object(let properties)? = s["properties"] else { Issue.record("\(path): no properties"); return }
            for (key, field) in object {
                guard let sub = properties[key] else { Issue.record("\(path).\(key) is encoded but not in the schema"); continue }
                check(field, against: sub, at: "\(path).\(key)")
            }
        case .array(let array):
            #expect(type == "array", "\(path): an array where the schema says \(type)")
            if let items = s["items"] { for (i, item) in array.enumerated() { check(item, against: items, at: "\(path)[\(i)]") } }
        case .bool:
            #expect(type == "boolean", "\(path): a boolean where the schema says \(type)")
        case .number(let number):
            #expect(type == "integer" && number.rounded() == number, "\(path): \(number) where the schema says \(type)")
            if case .number(let min)? = s["minimum"] { #expect(number >= min, "\(path) under its minimum") }
            if case .number(let max)? = s["maximum"] { #expect(number <= max, "\(path) over its maximum") }
        case .string(let string):
            #expect(type == "string", "\(path): a string where the schema says \(type)")
            if case .string(let pattern)? = s["pattern"] { #expect(string.range(of: pattern, options: .regularExpression) != nil, "\(path): \(string) !~ \(pattern)") }
            if case .array(let values)? = s["enum"] { #expect(values.contains(.string(string)), "\(path): \(string) not in its enum") }
        case .null:
            Issue.record("\(path): null")
        }
    }

    /// Every property the schema names appears in the fully set `value`: no stale schema fields.
    func covered(_ schema: JSONValue, by value: JSONValue, at path: String) {
        guard case .object(let s) = schema else { return }
        if case .array(let array) = value, let items = s["items"], let first = array.first { return covered(items, by: first, at: path + "[]") }
        guard case .object(let properties)? = s["properties"], case .object(let object) = value else { return }
        for (key, sub) in properties {
            guard let field = object[key] else { Issue.record("\(path).\(key) is in the schema but the type does not encode it"); continue }
            covered(sub, by: field, at: "\(path).\(key)")
        }
    }
}
