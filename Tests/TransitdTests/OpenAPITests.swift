import Foundation
import MizarAPI
import MizarTestSupport
import Testing
import Yams

/// docs/openapi.yaml is the API's contract: it lists exactly the routes transitd serves, and
/// every documented operation, called on a real transitd, answers with a status the document
/// lists for it and a body that fits the schema documented for that status.
@Suite("transitd API: docs/openapi.yaml is the contract", .serialized)
struct OpenAPITests {
    static let documentPath = TestPaths.root + "/docs/openapi.yaml"
    static let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    /// The document as plain values: every mapping with String keys.
    static func document() throws -> [String: Any] {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        guard let loaded = try Yams.load(yaml: text), let doc = plain(loaded) as? [String: Any] else {
            throw BedError("\(documentPath) is not a YAML mapping")
        }
        return doc
    }

    static func plain(_ value: Any) -> Any {
        if let map = value as? [AnyHashable: Any] {
            return Dictionary(map.map { ("\($0.key.base)", plain($0.value)) }, uniquingKeysWith: { first, _ in first }) as [String: Any]
        }
        if let list = value as? [Any] { return list.map { plain($0) } }
        return value
    }

    /// Every documented operation: method (upper case), path template and its operation object.
    static func operations(_ doc: [String: Any]) -> [(method: String, path: String, operation: [String: Any])] {
        let paths = doc["paths"] as? [String: Any] ?? [:]
        var out: [(method: String, path: String, operation: [String: Any])] = []
        for (path, item) in paths.sorted(by: { $0.key < $1.key }) {
            guard let item = item as? [String: Any] else { continue }
            for method in methods {
                if let operation = item[method] as? [String: Any] { out.append((method.uppercased(), path, operation)) }
            }
        }
        return out
    }

    /// The routes `makeAPIRouter` registers.
    static var servedRoutes: Set<String> {
        var routes: Set<String> = [
            "GET /v1/health", "GET /v1/status", "GET /v1/counters", "GET /v1/bouncers", "GET /v1/dividers",
            "GET /v1/plugins", "GET /v1/plugins/{name}", "POST /v1/plugins/discover", "POST /v1/apply",
            "GET /v1/endpoints/{name}/check", "GET /v1/trace", "DELETE /v1/trace", "GET /metrics",
        ]
        for kind in Kind.allCases {
            routes.insert("GET /v1/\(kind.path)")
            for method in ["GET", "PUT", "DELETE"] { routes.insert("\(method) /v1/\(kind.path)/{name}") }
        }
        return routes
    }

    // MARK: The document alone

    @Test func documentListsEveryRouteAndType() throws {
        let doc = try Self.document()
        #expect(doc["openapi"] as? String == "3.1.0", "openapi: \(String(describing: doc["openapi"]))")
        #expect(Kind.allCases.map(\.path) == ["droplets", "vpcs", "networks", "endpoints", "pluginconfigs", "chains"],
                "the kinds' path segments changed: update docs/openapi.yaml and this test")

        let documented = Set(Self.operations(doc).map { "\($0.method) \($0.path)" })
        let missing = Self.servedRoutes.subtracting(documented).sorted()
        let extra = documented.subtracting(Self.servedRoutes).sorted()
        #expect(missing.isEmpty, "routes transitd serves that docs/openapi.yaml lacks: \(missing)")
        #expect(extra.isEmpty, "routes docs/openapi.yaml lists that transitd does not serve: \(extra)")

        let checker = SchemaChecker(doc: doc)
        // Every $ref points somewhere.
        let dangling = checker.references().filter { checker.lookup($0) == nil }
        #expect(dangling.isEmpty, "unresolved $ref: \(dangling)")

        // The types of MizarAPI have their schemas.
        let schemas = (doc["components"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
        let needed = ["ObjectMeta", "Droplet", "VPC", "Network", "Endpoint", "PluginConfig", "PluginChain", "AnyResource", "ApplyRequest",
                      "ApplyResult", "ResourceReference", "Health", "DaemonStatus", "PluginInfo", "DiscoverResult", "Counters", "CounterValue",
                      "BouncerRole", "DividerRole", "APIError"]
        let absent = needed.filter { schemas[$0] == nil }
        #expect(absent.isEmpty, "component schemas missing: \(absent)")

        // Kinds, resources and the discriminator agree with MizarAPI.
        let kindEnum = Set(((schemas["Kind"] as? [String: Any])?["enum"] as? [Any] ?? []).compactMap { $0 as? String })
        #expect(kindEnum == Set(Kind.allCases.map(\.rawValue)), "Kind enum: \(kindEnum.sorted())")
        let mapping = ((schemas["AnyResource"] as? [String: Any])?["discriminator"] as? [String: Any])?["mapping"] as? [String: Any] ?? [:]
        #expect(Set(mapping.keys) == Set(Kind.allCases.map(\.rawValue)), "AnyResource's discriminator maps \(mapping.keys.sorted())")
        for kind in Kind.allCases {
            let resource = checker.resolve(["$ref": mapping[kind.rawValue] as? String ?? "#/components/schemas/\(kind.rawValue)"])
            let properties = resource["properties"] as? [String: Any] ?? [:]
            let kindConst = (properties["kind"] as? [String: Any])?["const"] as? String
            #expect(kindConst == kind.rawValue, "\(kind.rawValue)'s schema has kind const \(String(describing: kindConst))")
            let apiVersion = checker.resolve(properties["apiVersion"] as? [String: Any] ?? [:])["const"] as? String
            #expect(apiVersion == MizarAPI.apiVersion, "\(kind.rawValue)'s apiVersion const is \(String(describing: apiVersion))")
        }

        // The error codes, and every documented error status is one an error code maps to.
        let codes = Set(((((schemas["APIError"] as? [String: Any])?["properties"] as? [String: Any])?["code"] as? [String: Any])?["enum"] as? [Any] ?? [])
            .compactMap { $0 as? String })
        #expect(codes == Set(APIError.Code.allCases.map(\.rawValue)), "APIError.code enum: \(codes.sorted())")
        let errorStatuses = Set(APIError.Code.allCases.map(\.httpStatus))
        for (method, path, operation) in Self.operations(doc) {
            let responses = operation["responses"] as? [String: Any] ?? [:]
            #expect(!responses.isEmpty, "\(method) \(path) documents no response")
            for (status, response) in responses {
                let resolved = checker.resolve(response as? [String: Any] ?? [:])
                let schema = checker.jsonSchema(of: resolved)
                // The trace streams NDJSON: one JSON document (of the schema) per line.
                let content = resolved["content"] as? [String: Any]
                let ndjson = (content?["application/x-ndjson"] as? [String: Any])?["schema"], text = (content?["text/plain"] as? [String: Any])?["schema"]
                let streams = (path == "/v1/trace" && ndjson != nil) || (path == "/metrics" && text != nil)
                #expect(schema != nil || (status == "200" && streams), "\(method) \(path) \(status): no application/json schema")
                guard let code = Int(status), code >= 400 else { continue }
                if checker.isAPIError(schema) {
                    #expect(errorStatuses.contains(code), "\(method) \(path) documents \(code), which no APIError code maps to")
                } else {
                    #expect(path == "/v1/health" && code == 503, "\(method) \(path) \(status): an error answer whose body is not APIError")
                }
            }
            if method == "PUT" || method == "POST" && path == "/v1/apply" {
                #expect(operation["requestBody"] != nil, "\(method) \(path) documents no request body")
            }
        }
    }

    // MARK: The document against a running transitd

    /// One request: a documented operation, a name for `{name}`, a body and the status it must get.
    struct Call: CustomStringConvertible {
        var method: String
        var template: String
        var name: String? = nil
        var body: String? = nil
        var expect: Int
        /// Extra request headers (`If-None-Match: *`).
        var headers: [String] = []
        /// A query string (without `?`).
        var query = ""

        var path: String { (name.map { template.replacingOccurrences(of: "{name}", with: $0) } ?? template) + (query.isEmpty ? "" : "?" + query) }
        var operation: String { "\(method) \(template)" }
        var description: String { "\(method) \(path)" }
    }

    /// A raw request with curl over the socket: status, content type and body.
    func send(_ lab: DaemonLab, _ call: Call) throws -> (status: Int, contentType: String, body: String) {
        let bodyFile = lab.root + "/openapi-\(UUID().uuidString)"
        var args = ["curl", "-s", "-o", bodyFile, "-w", "%{http_code}\n%{content_type}", "--unix-socket", lab.host("hosta").socket,
                    "-X", call.method, "-H", "Content-Type: application/json"] + call.headers.flatMap { ["-H", $0] }
        if let body = call.body {
            try body.write(toFile: bodyFile + ".in", atomically: true, encoding: .utf8)
            args += ["--data-binary", "@" + bodyFile + ".in"]
        }
        let result = try runCommand(args + ["http://transitd" + call.path])
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let text = (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? ""
        return (Int(lines.first ?? "") ?? -1, lines.count > 1 ? lines[1] : "", text)
    }

    /// What the test sends for each documented operation. Names that exist are read; the
    /// default VPC, network and this droplet are never deleted (their DELETE is a 409).
    static func calls() -> [Call] {
        let missing = "oa-missing"
        let big = #"{"metadata":{"name":"oa-big"},"spec":{"vni":7},"pad":""# + String(repeating: "x", count: 1_100_000) + #""}"#
        var calls: [Call] = [
            Call(method: "GET", template: "/v1/health", expect: 200),
            Call(method: "GET", template: "/v1/status", expect: 200),
            Call(method: "GET", template: "/v1/counters", expect: 200),
            Call(method: "GET", template: "/v1/bouncers", expect: 200),
            Call(method: "GET", template: "/v1/dividers", expect: 200),
            Call(method: "GET", template: "/v1/plugins", expect: 200),
            Call(method: "GET", template: "/v1/plugins/{name}", name: "acl", expect: 200),
            Call(method: "GET", template: "/v1/plugins/{name}", name: missing, expect: 404),
            Call(method: "POST", template: "/v1/plugins/discover", expect: 200),
            // The 200 stream is NDJSON (TraceDaemonTests reads it); here its refusals.
            Call(method: "GET", template: "/metrics", expect: 200),
            Call(method: "DELETE", template: "/v1/trace", expect: 200),
            Call(method: "GET", template: "/v1/trace", expect: 400, query: "vni=0"),
            Call(method: "GET", template: "/v1/trace", expect: 400, query: "color=red"),
            Call(method: "GET", template: "/v1/endpoints/{name}/check", name: missing, expect: 404),
            Call(method: "POST", template: "/v1/apply", body: #"{"apply":[],"delete":[]}"#, expect: 200),
            Call(method: "POST", template: "/v1/apply", body: #"{"apply":["#, expect: 400),
            Call(method: "POST", template: "/v1/apply", body: #"{"apply":[]}"#, expect: 200),
            Call(method: "POST", template: "/v1/apply",
                 body: #"{"apply":[{"kind":"Network","metadata":{"name":"oa-net"},"spec":{"vpc":"oa-none","cidr":"10.99.0.0/24"}}],"delete":[]}"#,
                 expect: 422),
            Call(method: "POST", template: "/v1/apply",
                 body: #"{"apply":[{"kind":"VPC","metadata":{"name":"oa-clash"},"spec":{"vni":1}}],"delete":[]}"#, expect: 409),
            Call(method: "POST", template: "/v1/apply",
                 body: #"{"apply":[],"delete":[{"kind":"Endpoint","name":"oa-missing"}],"pad":""# + String(repeating: "x", count: 1_100_000) + #""}"#,
                 expect: 413),
        ]
        let existing: [Kind: String] = [.droplet: "hosta", .vpc: "vpc0", .network: "net0"]
        for kind in Kind.allCases {
            let collection = "/v1/\(kind.path)", item = collection + "/{name}"
            calls.append(Call(method: "GET", template: collection, expect: 200))
            if let name = existing[kind] {
                calls.append(Call(method: "GET", template: item, name: name, expect: 200))
            } else {
                calls.append(Call(method: "GET", template: item, name: missing, expect: 404))
            }
            calls.append(Call(method: "PUT", template: item, name: missing, body: "{}", expect: 400))
            switch kind {
            case .droplet:
                calls.append(Call(method: "DELETE", template: item, name: "hosta", expect: 409))
            case .vpc:
                calls += [
                    Call(method: "PUT", template: item, name: "vpc0", body: #"{"metadata":{"name":"vpc0"},"spec":{"vni":1}}"#, expect: 200),
                    Call(method: "PUT", template: item, name: "oa-vpc", body: #"{"metadata":{"name":"oa-vpc"},"spec":{"vni":4242}}"#, expect: 201),
                    Call(method: "PUT", template: item, name: "oa-vpc", body: #"{"metadata":{"name":"oa-vpc"},"spec":{"vni":4242}}"#, expect: 200),
                    Call(method: "PUT", template: item, name: "oa-vpc", body: #"{"metadata":{"name":"oa-vpc"},"spec":{"vni":4242}}"#, expect: 412,
                         headers: ["If-None-Match: *"]),
                    Call(method: "PUT", template: item, name: "oa-vpc2", body: #"{"metadata":{"name":"oa-vpc2"},"spec":{"vni":1}}"#, expect: 409),
                    Call(method: "PUT", template: item, name: "oa-vpc3", body: #"{"metadata":{"name":"oa-other"},"spec":{"vni":4243}}"#, expect: 400),
                    Call(method: "PUT", template: item, name: "Bad_Name", body: #"{"metadata":{"name":"Bad_Name"},"spec":{"vni":4244}}"#, expect: 422),
                    Call(method: "PUT", template: item, name: "oa-big", body: big, expect: 413),
                    Call(method: "DELETE", template: item, name: "vpc0", expect: 409),
                    Call(method: "DELETE", template: item, name: "oa-vpc", expect: 200),
                    Call(method: "DELETE", template: item, name: "oa-vpc", expect: 200),
                ]
            case .network, .endpoint, .pluginConfig, .pluginChain:
                calls.append(Call(method: "DELETE", template: item, name: missing, expect: 200))
            }
        }
        return calls
    }

    @Test func everyOperationAnswersAsDocumented() throws {
        let doc = try Self.document()
        let checker = SchemaChecker(doc: doc)
        let operations = Dictionary(Self.operations(doc).map { ("\($0.method) \($0.path)", $0.operation) }, uniquingKeysWith: { a, _ in a })
        let calls = Self.calls()
        let untested = Set(operations.keys).subtracting(calls.map(\.operation)).sorted()
        #expect(untested.isEmpty, "documented operations this test does not call: \(untested)")

        let lab = try DaemonLab.running(["hosta"])
        defer { lab.teardown() }
        for call in calls {
            guard let operation = operations[call.operation] else {
                Issue.record("\(call.operation) is not in docs/openapi.yaml")
                continue
            }
            let (status, contentType, text) = try send(lab, call)
            let responses = operation["responses"] as? [String: Any] ?? [:]
            let documented = responses.keys.sorted()
            #expect(status == call.expect, "\(call): HTTP \(status), expected \(call.expect); body \(text.prefix(300))")
            guard let response = responses["\(status)"] as? [String: Any] else {
                Issue.record("\(call): HTTP \(status) is not among the documented \(documented); body \(text.prefix(300))")
                continue
            }
            if call.template == "/metrics" {  // Prometheus text (MetricsTests parses it)
                #expect(contentType.hasPrefix("text/plain") && text.contains("# TYPE mizar_transit_xdp_packets_total counter"), "\(call): \(contentType)")
                continue
            }
            #expect(contentType.hasPrefix("application/json"), "\(call): content type \(contentType)")
            guard let body = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
                Issue.record("\(call): HTTP \(status) with a body that is not JSON: \(text.prefix(300))")
                continue
            }
            let schema = checker.jsonSchema(of: checker.resolve(response))
            if status >= 400, checker.isAPIError(schema) {
                let error = try? JSONDecoder().decode(APIError.self, from: Data(text.utf8))
                #expect(error != nil && error?.code.isEmpty == false && error?.message.isEmpty == false,
                        "\(call): HTTP \(status) without an APIError body: \(text.prefix(300))")
                if let error {
                    #expect(APIError.Code(rawValue: error.code)?.httpStatus == status, "\(call): code \(error.code) with HTTP \(status)")
                }
            }
            if let schema {
                let problems = checker.problems(body, schema, at: "$")
                #expect(problems.isEmpty, "\(call): HTTP \(status) body does not fit its documented schema: \(problems.prefix(10)); body \(text.prefix(300))")
            } else {
                Issue.record("\(call): HTTP \(status) has no documented application/json schema")
            }
        }
        // What the test created is gone; what it must not touch is there.
        let (vpcs, _, listed) = try send(lab, Call(method: "GET", template: "/v1/vpcs", expect: 200))
        #expect(vpcs == 200 && listed.contains("\"vpc0\"") && !listed.contains("oa-"), "VPCs after the test: \(listed.prefix(300))")
        #expect(lab.host("hosta").process?.isRunning == true)
    }
}

/// Checks a JSON value against the subset of JSON Schema (2020-12) docs/openapi.yaml uses:
/// $ref, type, const, enum, required, properties, additionalProperties, items, min/maxItems,
/// minimum/maximum, min/maxLength, pattern, allOf, and oneOf (through its discriminator).
struct SchemaChecker {
    let doc: [String: Any]

    /// The node a local reference (`#/components/...`) points to.
    func lookup(_ ref: String) -> [String: Any]? {
        guard ref.hasPrefix("#/") else { return nil }
        var node: Any = doc
        for part in ref.dropFirst(2).split(separator: "/") {
            let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let map = node as? [String: Any], let next = map[key] else { return nil }
            node = next
        }
        return node as? [String: Any]
    }

    /// `node` with its references followed.
    func resolve(_ node: [String: Any]) -> [String: Any] {
        var node = node
        var hops = 0
        while let ref = node["$ref"] as? String, hops < 16, let target = lookup(ref) {
            node = target
            hops += 1
        }
        return node
    }

    /// Every `$ref` in the document.
    func references() -> [String] {
        var out: [String] = []
        func walk(_ value: Any) {
            if let map = value as? [String: Any] {
                if let ref = map["$ref"] as? String { out.append(ref) }
                map.values.forEach(walk)
            } else if let list = value as? [Any] {
                list.forEach(walk)
            }
        }
        walk(doc)
        return out
    }

    /// The application/json schema of a (resolved) response object.
    func jsonSchema(of response: [String: Any]) -> [String: Any]? {
        ((response["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any]
    }

    func isAPIError(_ schema: [String: Any]?) -> Bool {
        (schema?["$ref"] as? String)?.hasSuffix("/APIError") == true
    }

    func problems(_ value: JSONValue, _ node: [String: Any], at path: String) -> [String] {
        let schema = resolve(node)
        var out: [String] = []
        for sub in (schema["allOf"] as? [Any] ?? []).compactMap({ $0 as? [String: Any] }) { out += problems(value, sub, at: path) }
        if let options = schema["oneOf"] as? [Any] {
            let discriminator = schema["discriminator"] as? [String: Any]
            if let property = discriminator?["propertyName"] as? String, case .object(let object) = value {
                if case .string(let tag)? = object[property], let ref = (discriminator?["mapping"] as? [String: Any])?[tag] as? String {
                    out += problems(value, ["$ref": ref], at: path)
                } else {
                    out.append("\(path).\(property): missing or not one of the mapped values")
                }
            } else {
                let matching = options.compactMap { $0 as? [String: Any] }.filter { problems(value, $0, at: path).isEmpty }.count
                if matching != 1 { out.append("\(path): fits \(matching) of the oneOf schemas") }
            }
        }
        if let constant = schema["const"], !equals(value, constant) { out.append("\(path): \(value) is not \(constant)") }
        if let options = schema["enum"] as? [Any], !options.contains(where: { equals(value, $0) }) {
            out.append("\(path): \(value) is not one of \(options)")
        }
        let types = (schema["type"] as? String).map { [$0] } ?? (schema["type"] as? [Any])?.compactMap { $0 as? String }
        if let types, !types.contains(where: { has(type: $0, value) }) {
            out.append("\(path): \(value) is not of type \(types.joined(separator: " or "))")
            return out
        }
        switch value {
        case .object(let object):
            let required = (schema["required"] as? [Any] ?? []).compactMap { $0 as? String }
            for key in required where object[key] == nil { out.append("\(path).\(key) is missing") }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, member) in object.sorted(by: { $0.key < $1.key }) {
                if let sub = properties[key] as? [String: Any] {
                    out += problems(member, sub, at: "\(path).\(key)")
                } else if let sub = schema["additionalProperties"] as? [String: Any] {
                    out += problems(member, sub, at: "\(path).\(key)")
                } else if schema["additionalProperties"] as? Bool == false {
                    out.append("\(path).\(key) is not allowed")
                }
            }
        case .array(let items):
            if let min = schema["minItems"] as? Int, items.count < min { out.append("\(path): \(items.count) items, fewer than \(min)") }
            if let max = schema["maxItems"] as? Int, items.count > max { out.append("\(path): \(items.count) items, more than \(max)") }
            if let sub = schema["items"] as? [String: Any] {
                for (i, item) in items.enumerated() { out += problems(item, sub, at: "\(path)[\(i)]") }
            }
        case .string(let text):
            if let min = schema["minLength"] as? Int, text.count < min { out.append("\(path): \"\(text)\" is shorter than \(min)") }
            if let max = schema["maxLength"] as? Int, text.count > max { out.append("\(path): \"\(text)\" is longer than \(max)") }
            if let pattern = schema["pattern"] as? String {
                if let regex = try? NSRegularExpression(pattern: pattern) {
                    let range = NSRange(text.startIndex..., in: text)
                    if regex.firstMatch(in: text, options: [], range: range) == nil { out.append("\(path): \"\(text)\" does not match \(pattern)") }
                } else {
                    out.append("\(path): the pattern \(pattern) does not compile")
                }
            }
        case .number(let n):
            if let min = number(schema["minimum"]), n < min { out.append("\(path): \(n) is below \(min)") }
            if let max = number(schema["maximum"]), n > max { out.append("\(path): \(n) is above \(max)") }
        case .bool, .null:
            break
        }
        return out
    }

    private func has(type: String, _ value: JSONValue) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null), ("number", .number): true
        case ("integer", .number(let n)): n.rounded() == n
        default: false
        }
    }

    private func number(_ any: Any?) -> Double? {
        if let i = any as? Int { return Double(i) }
        return any as? Double
    }

    private func equals(_ value: JSONValue, _ any: Any) -> Bool {
        switch value {
        case .string(let s): (any as? String) == s
        case .bool(let b): (any as? Bool) == b
        case .number(let n): number(any) == n
        case .null: any is NSNull
        case .array, .object: false
        }
    }
}
