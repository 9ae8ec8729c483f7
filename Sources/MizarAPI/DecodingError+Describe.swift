extension DecodingError {
    /// One line that says where in the document the problem is and what it is
    /// (`spec.vni: VNI 0 is out of range ...`), for API errors and CLI messages.
    public var summary: String {
        func path(_ context: Context) -> String {
            let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.hasPrefix(".") ? String(p.dropFirst()) : p
        }
        switch self {
        case .keyNotFound(let key, let context):
            let at = path(context)
            return "\(at.isEmpty ? "" : at + ".")\(key.stringValue) is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context)): expected \(type), found null"
        case .dataCorrupted(let context):
            let at = path(context)
            var why = context.debugDescription
            if let underlying = context.underlyingError { why += " (\(underlying))" }
            return at.isEmpty ? why : "\(at): \(why)"
        @unknown default:
            return "\(self)"
        }
    }
}
