import MizarAPI
import Yams

/// Kubernetes CustomResourceDefinitions (apiextensions.k8s.io/v1, group mizar.com) of the
/// API's kinds, generated from `Schema`: deploy/crds/<plural>.mizar.com.yaml.
public enum CustomResourceDefinitions {
    /// The plural a CRD names a kind by (lowercase kind + s: a CRD's plural must be unique and tell the kind).
    public static func plural(_ kind: Kind) -> String {
        switch kind {
        case .vpc: "vpcs"
        case .pluginChain: "pluginchains"
        case .pluginConfig: "pluginconfigs"
        default: kind.path
        }
    }

    /// The file name of `kind`'s CRD.
    public static func fileName(_ kind: Kind) -> String { "\(plural(kind)).mizar.com.yaml" }

    /// The CRD of `kind` as YAML.
    public static func yaml(_ kind: Kind) throws -> String {
        var properties: [String: JSONValue] = [
            "apiVersion": .object(["type": .string("string")]), "kind": .object(["type": .string("string")]),
            "metadata": .object(["type": .string("object")]), "spec": Schema.spec(of: kind).json,
        ]
        if let status = Schema.status(of: kind) { properties["status"] = status.json }
        var version: [String: JSONValue] = [
            "name": .string("v1"), "served": .bool(true), "storage": .bool(true),
            "schema": .object(["openAPIV3Schema": .object(["type": .string("object"), "properties": .object(properties), "required": .array([.string("spec")])])]),
        ]
        if Schema.status(of: kind) != nil { version["subresources"] = .object(["status": .object([:])]) }
        let singular = kind.rawValue.lowercased()
        var names: [String: JSONValue] = ["kind": .string(kind.rawValue), "listKind": .string(kind.rawValue + "List"),
                                          "plural": .string(plural(kind)), "singular": .string(singular)]
        let short = ["ep": Kind.endpoint, "net": .network, "chain": .pluginChain].filter { $0.value == kind }.map(\.key)
        if !short.isEmpty { names["shortNames"] = .array(short.map(JSONValue.string)) }
        let crd: JSONValue = .object([
            "apiVersion": .string("apiextensions.k8s.io/v1"), "kind": .string("CustomResourceDefinition"),
            "metadata": .object(["name": .string("\(plural(kind)).mizar.com")]),
            "spec": .object(["group": .string("mizar.com"), "scope": .string("Cluster"), "names": .object(names), "versions": .array([.object(version)])]),
        ])
        let header = "# Generated from the MizarAPI types by `mizarctl crds`; do not edit (docs/cluster.md).\n"
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        return header + (try encoder.encode(crd))
    }
}
