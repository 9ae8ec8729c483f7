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
        // Documents are parsed on every core: libyaml and Yams' decoder cost ~0.3 ms a
        // document, and manifests of 10,000 endpoints are what a platform applies.
        let documents = splitDocuments(text)
        let slices = documents.count < 256 ? 1 : ProcessInfo.processInfo.activeProcessorCount * 2
        let per = (documents.count + slices - 1) / max(slices, 1)
        var results = [Result<[AnyResource], any Error>?](repeating: nil, count: slices)
        results.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: slices) { slice in
                let range = min(slice * per, documents.count)..<min((slice + 1) * per, documents.count)
                out[slice] = Result { try documents[range].flatMap { try parseDocument($0.text, number: $0.number, source: source) } }
            }
        }
        return try results.flatMap { try $0!.get() }
    }

    /// The text of each document (split at `---` lines, where YAML itself ends a document) and
    /// the number of the first document in it.
    private static func splitDocuments(_ text: String) -> [(text: String, number: Int)] {
        // Bytes, not Characters: a 10,000-document manifest is split in milliseconds.
        let bytes = Array(text.utf8)
        var documents: [(text: String, number: Int)] = []
        var start = 0, lineStart = 0
        func close(at end: Int) {
            if end > start { documents.append((String(decoding: bytes[start..<end], as: UTF8.self), documents.count + 1)) }
        }
        while lineStart < bytes.count {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let isMarker = lineEnd - lineStart >= 3 && bytes[lineStart] == UInt8(ascii: "-") && bytes[lineStart + 1] == UInt8(ascii: "-")
                && bytes[lineStart + 2] == UInt8(ascii: "-") && (lineEnd - lineStart == 3 || bytes[lineStart + 3] == UInt8(ascii: " "))
            if isMarker {
                close(at: lineStart)
                // "--- {...}" keeps its content; a bare "---" is only the marker.
                start = lineEnd - lineStart == 3 ? min(lineEnd + 1, bytes.count) : lineStart + 4
            }
            lineStart = lineEnd + 1
        }
        close(at: bytes.count)
        return documents.filter { !$0.text.allSatisfy(\.isWhitespace) }.enumerated().map { ($0.element.text, $0.offset + 1) }
    }

    /// Plain scalars stay untyped text: the resources' own decoders parse numbers and
    /// addresses, and the default resolver's regular expressions cost most of the parse.
    private static let resolver = Resolver.basic.appending(.null)

    private static func parseDocument(_ text: String, number: Int, source: String) throws -> [AnyResource] {
        let nodes: [Node]
        do { nodes = Array(try Yams.compose_all(yaml: text, resolver, .default, .utf8)) } catch {
            throw APIError(.badRequest, "\(source), document \(number): not YAML or JSON: \(error)")
        }
        let decoder = YAMLDecoder()
        var resources: [AnyResource] = []
        for node in nodes {
            do {
                if case .sequence = node {
                    resources += try decoder.decode([AnyResource].self, from: node)
                } else {
                    resources.append(try decoder.decode(AnyResource.self, from: node))
                }
            } catch let error as DecodingError {
                throw APIError(.badRequest, "\(source), document \(number): \(error.summary)")
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
