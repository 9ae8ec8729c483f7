import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// HTTP/1.1 exchanges with transitd over its Unix socket, blocking, on one NIO event loop.
/// The plugin is a process that lives for one call, so its start is its latency: NIO's HTTP
/// codec on one thread costs well under a millisecond, where AsyncHTTPClient, and the
/// Foundation it needs, added about 2 ms to every CNI call (measured: docs/cni.md).
final class TransitdHTTP {
    let socket: String
    let timeout: TimeAmount
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(socket: String, timeout: TimeAmount) {
        self.socket = socket
        self.timeout = timeout
    }

    // No shutdown of the loop: the process ends right after its one call, and a graceful
    // shutdown costs threads of its own.

    /// transitd did not answer: nothing listens, the socket is missing, or the call timed out.
    struct Unreachable: Error, CustomStringConvertible {
        let socket: String
        let reason: String
        var description: String { "cannot reach transitd at \(socket): \(reason)" }
    }

    /// Sends one request and returns the status and body.
    func exchange(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) throws -> (status: Int, body: [UInt8]) {
        let loop = group.next()
        let promise = loop.makePromise(of: (status: Int, body: [UInt8]).self)
        let channel: any Channel
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(unixDomainSocketPath: socket).wait()
        } catch {
            promise.fail(error)
            throw Unreachable(socket: socket, reason: access(socket, F_OK) == 0 ? "nothing answers on the socket (\(error))" : "no socket there: is transitd running?")
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "transitd")
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(body.count))
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let deadline = loop.scheduleTask(in: timeout) { promise.fail(Unreachable(socket: self.socket, reason: "no answer within \(self.timeout.nanoseconds / 1_000_000_000) s")) }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        do { return try promise.futureResult.wait() } catch let error as Unreachable { throw error } catch {
            throw Unreachable(socket: socket, reason: "\(error)")
        }
    }
}

/// Collects one response and completes the promise (once: a timeout, an error or the end).
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(status: Int, body: [UInt8])>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var buffer): body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end: promise.succeed((status, body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
