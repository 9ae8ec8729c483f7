import Foundation
import MizarAPI
import Yams

/// Manifests: YAML (several documents per file, `---` between them) or JSON, each document
/// one resource in `mizar.com/v1` form, or a list of them.
public enum Manifests {
    /// The resources of one file's text; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> [AnyResource] {
        // JSON is YAML, but JSONDecoder reads a large one many times faster.
        if let first = text.first(where: { !$0.isWhitespace }), first == "[" || first == "{",
           let parsed = try? JSONDecoder().decode(OneOrMany.self, from: Data(text.utf8)) {
            return parsed.resources
        }
        var resources: [AnyResource] = []
        let nodes: [Node]
        do { nodes = Array(try Yams.compose_all(yaml: text)) } catch {
            throw APIError(.badRequest, "\(source): not YAML or JSON: \(error)")
        }
        let decoder = YAMLDecoder()
        for (index, node) in nodes.enumerated() {
            do {
                if case .sequence = node {
                    resources += try decoder.decode([AnyResource].self, from: node)
                } else {
                    resources.append(try decoder.decode(AnyResource.self, from: node))
                }
            } catch let error as DecodingError {
                throw APIError(.badRequest, "\(source), document \(index + 1): \(error.summary)")
            }
        }
        return resources
    }

    /// The resources of a file, of every `.yaml`/`.yml`/`.json` file of a directory (in name
    /// order), or of standard input for `-`.
    public static func load(_ path: String) throws -> [AnyResource] {
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return try parse(String(decoding: data, as: UTF8.self), source: "standard input")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw APIError(.badRequest, "no file \(path)") }
        if isDirectory.boolValue {
            let files = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }
            return try files.flatMap { try load((path as NSString).appendingPathComponent($0)) }
        }
        return try parse(try String(contentsOfFile: path, encoding: .utf8), source: path)
    }

    /// Resources as YAML documents, `---` between them.
    public static func yaml(_ resources: [AnyResource]) throws -> String {
        try resources.map { try YAMLEncoder().encode($0) }.joined(separator: "---\n")
    }
}

extension Manifests {
    /// One YAML or JSON document as a value (a plugin's configuration).
    public static func value(_ text: String, source: String) throws -> JSONValue {
        do { return try YAMLDecoder().decode(JSONValue.self, from: text) } catch let error as DecodingError {
            throw APIError(.badRequest, "\(source): \(error.summary)")
        }
    }
}

/// A JSON manifest: one resource or a list of them.
private struct OneOrMany: Decodable {
    let resources: [AnyResource]

    init(from decoder: any Decoder) throws {
        if let list = try? [AnyResource](from: decoder) { resources = list } else { resources = [try AnyResource(from: decoder)] }
    }
}
