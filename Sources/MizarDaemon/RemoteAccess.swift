import Foundation
import Hummingbird
import HummingbirdTLS
import MizarAPI
import NIOSSL

/// The optional TCP listener for remote management: TLS always, and a bearer token on every
/// request. Off unless `listen` is configured (docs/transitd.md).
public struct RemoteAccess: Sendable {
    public let host: String
    public let port: Int
    public let tls: TLSConfiguration
    let token: [UInt8]

    /// Reads the token, certificate chain and key; refuses what would make the listener weak.
    public init(listen: String, tokenFile: String?, certificate: String?, key: String?) throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else {
            throw APIError(.invalid, "listen \(listen): give HOST:PORT")
        }
        host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
        guard let tokenFile, let certificate, let key else {
            throw APIError(.invalid, "--listen needs --token-file, --tls-cert and --tls-key: the remote API is never served without TLS and a token")
        }
        guard let handle = FileHandle(forReadingAtPath: tokenFile) else { throw APIError(.invalid, "cannot read the token file \(tokenFile)") }
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        try? handle.close()
        guard text.utf8.count >= 16 else { throw APIError(.invalid, "the token in \(tokenFile) is shorter than 16 characters") }
        token = Array(text.utf8)
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } catch {
            throw APIError(.invalid, "TLS certificate \(certificate) or key \(key): \(error)")
        }
    }

    /// True when `header` is `Bearer <token>`; compared in time independent of where they differ.
    func accepts(_ header: String?) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.utf8.dropFirst(7))
        var difference = UInt8(given.count == token.count ? 0 : 1)
        for i in 0..<max(given.count, token.count) {
            difference |= (i < given.count ? given[i] : 0) ^ (i < token.count ? token[i] : 0)
        }
        return difference == 0
    }
}

/// Refuses requests without the remote listener's bearer token (401), before any handler runs.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let access: RemoteAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.accepts(request.headers[.authorization]) else {
            throw APIError(.unauthorized, "a valid bearer token is required (Authorization: Bearer <token>)")
        }
        return try await next(request, context)
    }
}
