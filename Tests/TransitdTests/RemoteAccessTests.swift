import Foundation
import MizarAPI
import MizarTestSupport
import Testing

/// The TCP listener: TLS and a bearer token, or nothing.
@Suite("transitd remote API: TLS and a token, or refused", .serialized)
struct RemoteAccessTests {
    @Test func refusedWithoutTheTokenOrTLS() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(uniquePrefix()).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cert = dir + "/cert.pem", key = dir + "/key.pem", token = dir + "/token"
        let made = try runCommand(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                                   "-subj", "/CN=transitd", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert])
        #expect(made.status == 0, "\(made.error)")
        try "s3cret-token-of-the-test-0123456789".write(toFile: token, atomically: true, encoding: .utf8)
        try "wrong-token-but-long-enough-0000".write(toFile: dir + "/wrong", atomically: true, encoding: .utf8)

        // A weak listener is refused at start.
        let weak = try runCommand([Binaries.transitd, "--interface", "lo", "--config", "/dev/null", "--listen", "127.0.0.1:7443"])
        #expect(weak.status != 0 && weak.error.contains("--token-file"), "\(weak.error)")

        let lab = try DaemonLab.running(["hosta"], extra: ["--listen", "127.0.0.1:7443", "--token-file", token, "--tls-cert", cert, "--tls-key", key])
        defer { lab.teardown() }
        let netns = lab.host("hosta").netns
        let url = "https://127.0.0.1:7443/v1/vpcs/remote1"
        let body = #"{"metadata":{"name":"remote1"},"spec":{"vni":77}}"#
        func curl(_ extra: [String], _ target: String = url) throws -> (Int32, String) {
            let r = try runCommand(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cert, "-X", "PUT", "-H", "Content-Type: application/json",
                                    "--data-binary", body] + extra + [target], in: netns)
            return (r.status, r.output)
        }
        #expect(try curl([]).1 == "401", "no token")
        #expect(try curl(["-H", "Authorization: Bearer wrong-token-but-long-enough-0000"]).1 == "401", "wrong token")
        #expect(try curl(["-H", "Authorization: Bearer s3cret-token-of-the-test-012345678"]).1 == "401", "a prefix of the token")
        #expect(try curl(["-H", "Authorization: Bearer s3cret-token-of-the-test-0123456789"], "http://127.0.0.1:7443/v1/vpcs/remote1").0 != 0,
                "plain HTTP must not be answered")
        #expect(try await lab.host("hosta").client.list(.vpc).map(\.name) == ["vpc0"], "a refused request changed something")

        // mizarctl with the token and the CA works; with a wrong token it exits 1 with the reason.
        let ok = try runCommand([Binaries.mizarctl, "get", "vpcs", "--server", "https://127.0.0.1:7443", "--token-file", token, "--cacert", cert], in: netns)
        #expect(ok.status == 0 && ok.output.contains("vpc0"), "\(ok.output)\(ok.error)")
        let wrong = try runCommand([Binaries.mizarctl, "get", "vpcs", "--server", "https://127.0.0.1:7443", "--token-file", dir + "/wrong", "--cacert", cert], in: netns)
        #expect(wrong.status == 1 && wrong.error.contains("unauthorized"), "\(wrong.output)\(wrong.error)")
        #expect(try curl(["-H", "Authorization: Bearer s3cret-token-of-the-test-0123456789"]).1 == "201")
    }
}
