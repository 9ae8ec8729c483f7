#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// HTTP/1.1 exchanges with transitd over its Unix socket: SwiftNIO's HTTP codec in an
/// `EmbeddedChannel` (no event loop, no thread), the bytes carried by a blocking socket.
/// The plugin is a process that lives for one call, so its start is its latency: an event
/// loop and a bootstrap cost ~1.4 ms per call here, AsyncHTTPClient and the Foundation it
/// needs ~2 ms more (measured: docs/benchmarks.md).
final class TransitdHTTP {
    let socket: String
    /// Seconds a send or a receive may block.
    let timeout: Int

    init(socket: String, timeout: Int) {
        self.socket = socket
        self.timeout = timeout
    }

    /// transitd did not answer: nothing listens, the socket is missing, or the call timed out.
    struct Unreachable: Error, CustomStringConvertible {
        let socket: String
        let reason: String
        var description: String { "cannot reach transitd at \(socket): \(reason)" }
    }

    /// Sends one request and returns the status and body.
    func exchange(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) throws -> (status: Int, body: [UInt8]) {
        let fd = try connect()
        defer { close(fd) }
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        try channel.pipeline.syncOperations.addHTTPClientHandlers()

        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "transitd")
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.count))
        }
        try channel.writeOutbound(HTTPClientRequestPart.head(head))
        if let body { try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            try send(buffer, on: fd)
        }

        var status = 0, responseBody: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw Unreachable(socket: socket, reason: errno == EAGAIN ? "no answer within \(timeout) s" : "read: \(String(cString: strerror(errno)))") }
            if n == 0 { _ = try? channel.finish(acceptAlreadyClosed: true) } else { try channel.writeInbound(ByteBuffer(bytes: chunk[0..<n])) }
            while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head): status = Int(head.status.code)
                case .body(var buffer): responseBody += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end: return (status, responseBody)
                }
            }
            if n == 0 { throw Unreachable(socket: socket, reason: "transitd closed the connection before answering") }
        }
    }

    /// A blocking Unix-socket connection with send and receive timeouts.
    private func connect() throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Unreachable(socket: socket, reason: "socket: \(String(cString: strerror(errno)))") }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socket.utf8.count < capacity else {
            close(fd)
            throw Unreachable(socket: socket, reason: "the path is longer than a Unix socket's \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in socket.utf8.enumerated() { raw[i] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let why = errno == ENOENT ? "no socket there: is transitd running?" : "nothing answers on the socket (\(String(cString: strerror(errno))))"
            close(fd)
            throw Unreachable(socket: socket, reason: why)
        }
        return fd
    }

    private func send(_ buffer: ByteBuffer, on fd: Int32) throws {
        var bytes = buffer.readableBytesView[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw Unreachable(socket: socket, reason: "send: \(String(cString: strerror(errno)))") }
            bytes = bytes.dropFirst(n)
        }
    }
}
