import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A droplet's UDP socket on its substrate address and `--peer-port` (`PeerDatagram`): it
/// takes pushes from other droplets, checked on the event loop and answered by `take`, and
/// sends this droplet's pushes, collecting the bouncers' answers there too.
public final class PeerSocket: Sendable {
    /// A push waiting for its answers: on the socket's event loop only.
    private final class Pending {
        let secret: [UInt8]
        let datagram: ByteBuffer
        var unanswered: [SocketAddress: String]
        var held: Set<String> = []
        let promise: EventLoopPromise<Set<String>>
        let started = ContinuousClock.now
        var timers: [Scheduled<Void>] = []
        let answered: @Sendable (_ name: String, _ outcome: String, _ after: Duration) -> Void

        init(secret: [UInt8], datagram: ByteBuffer, targets: [SocketAddress: String], promise: EventLoopPromise<Set<String>>,
             answered: @escaping @Sendable (String, String, Duration) -> Void) {
            (self.secret, self.datagram, self.unanswered, self.promise, self.answered) = (secret, datagram, targets, promise, answered)
        }
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        /// This droplet's pushes waiting for answers, by nonce. Like everything below: on the event loop only.
        var pending: [UInt64: Pending] = [:]
        /// Pushes taken within their 30 s, by nonce, with the answer once made: a push sent
        /// again (its sender heard nothing for 100 ms) or replayed is answered from here, never
        /// taken twice. `order` lists them oldest first, for pruning.
        var taken: [UInt64: ByteBuffer?] = [:]
        var order: [(nonce: UInt64, sentAt: Int64)] = [], orderStart = 0
        let secret: NIOLockedValueBox<[UInt8]?>
        let dropped: @Sendable () -> Void
        let take: @Sendable ([UInt8]) async -> [UInt8]

        init(secret: NIOLockedValueBox<[UInt8]?>, dropped: @escaping @Sendable () -> Void, take: @escaping @Sendable ([UInt8]) async -> [UInt8]) {
            (self.secret, self.dropped, self.take) = (secret, dropped, take)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let datagram = envelope.data
            guard let kind = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) else { return dropped() }
            if kind == PeerDatagram.reply { return answer(datagram, from: envelope.remoteAddress) }
            // Checked here, on the event loop: unsigned, stale or replayed datagrams never reach the daemon.
            let now = PeerDatagram.now()
            guard kind == PeerDatagram.push, let secret = secret.withLockedValue({ $0 }), let push = PeerDatagram.open(datagram, secret: secret),
                  abs(now - push.sentAt) < PeerDatagram.maxAgeMilliseconds else { return dropped() }
            let channel = context.channel, take = take, sender = envelope.remoteAddress, loop = context.eventLoop
            if let seen = taken[push.nonce] {
                if let answer = seen { channel.writeAndFlush(AddressedEnvelope(remoteAddress: sender, data: answer), promise: nil) }
                return
            }
            remember(push.nonce, sentAt: push.sentAt, now: now)
            Task {
                let answer = await take(push.body)
                let reply = PeerDatagram.seal(kind: PeerDatagram.reply, nonce: push.nonce, body: answer, secret: secret, allocator: channel.allocator)
                loop.execute { if self.taken[push.nonce] != nil { self.taken[push.nonce] = reply } }
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: sender, data: reply), promise: nil)
            }
        }

        /// Notes a push as taken, and forgets those past their 30 s (a replay of one is dropped as stale).
        private func remember(_ nonce: UInt64, sentAt: Int64, now: Int64) {
            while orderStart < order.count, now - order[orderStart].sentAt >= PeerDatagram.maxAgeMilliseconds {
                taken[order[orderStart].nonce] = nil
                orderStart += 1
            }
            if orderStart > 1024, orderStart * 2 > order.count { (order, orderStart) = (Array(order[orderStart...]), 0) }
            taken[nonce] = .some(nil)
            order.append((nonce, sentAt))
        }

        /// A bouncer's answer: counted once, and only when signed, from the address the push went to, and by that droplet's name.
        private func answer(_ datagram: ByteBuffer, from address: SocketAddress) {
            // A late answer (the push timed out) or a repeated one finds nothing to wait for.
            guard let nonce = PeerDatagram.nonce(of: datagram), let push = pending[nonce], let name = push.unanswered[address] else { return }
            guard let reply = PeerDatagram.open(datagram, secret: push.secret), reply.kind == PeerDatagram.reply,
                  let answer = PeerAnswer(reply.body), answer.from == name else { return dropped() }
            push.unanswered[address] = nil
            if answer.outcome == .held { push.held.insert(name) }
            push.answered(name, answer.outcome == .held ? "held" : answer.outcome == .notHeld ? "not_held" : "refused", ContinuousClock.now - push.started)
            if push.unanswered.isEmpty { finish(nonce) }
        }

        /// Ends a push's wait: those that did not answer count as failed, unless it was `cancelled`.
        func finish(_ nonce: UInt64, cancelled: Bool = false) {
            guard let push = pending.removeValue(forKey: nonce) else { return }
            for timer in push.timers { timer.cancel() }
            if !cancelled {
                for name in push.unanswered.values { push.answered(name, "failed", ContinuousClock.now - push.started) }
            }
            push.promise.succeed(push.held)
        }

        /// The socket closed (shutdown): nobody waits for an answer that cannot come.
        func channelInactive(context: ChannelHandlerContext) {
            for nonce in Array(pending.keys) { finish(nonce, cancelled: true) }
            context.fireChannelInactive()
        }
    }

    private let channel: any Channel
    private let handler: Handler
    /// The cluster's secret, as the event loop checks datagrams with it (nil: not known yet, every push is dropped).
    let secret: NIOLockedValueBox<[UInt8]?>

    /// Binds `host:port` (UDP). A push signed with `secret` (set once known) and sent within
    /// 30 s is handed to `take`, whose answer goes back signed; any other datagram is dropped
    /// unanswered, and counted by `dropped`.
    public static func bind(host: String, port: Int, dropped: @escaping @Sendable () -> Void,
                            take: @escaping @Sendable ([UInt8]) async -> [UInt8]) async throws -> PeerSocket {
        let secret = NIOLockedValueBox<[UInt8]?>(nil)
        let handler = Handler(secret: secret, dropped: dropped, take: take)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // A burst of pushes (10,000 endpoints from 4 droplets) must not overflow the queue;
            // forced past net.core.rmem_max (transitd runs as root).
            .channelOption(ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_RCVBUFFORCE)), value: 4 << 20)
            // Whole datagrams: NIO reads 2 KiB by default, and a push of 25 endpoints is ~20 KiB.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) } }
            .bind(host: host, port: port).get()
        return PeerSocket(channel: channel, handler: handler, secret: secret)
    }

    private init(channel: any Channel, handler: Handler, secret: NIOLockedValueBox<[UInt8]?>) {
        (self.channel, self.handler, self.secret) = (channel, handler, secret)
    }

    /// Sends one signed push to every target at once and returns the names that answered
    /// "held". Unanswered targets get the push again after 100 ms and 300 ms; after 1 s they
    /// count as not holding it (their caller waits for them through etcd).
    func push(_ body: Data, to targets: [(name: String, ip: String)], port: Int, secret: [UInt8],
              answered: @escaping @Sendable (String, String, Duration) -> Void) async -> Set<String> {
        let loop = channel.eventLoop, channel = channel, handler = handler
        var addresses: [SocketAddress: String] = [:]
        for target in targets {
            if let address = try? SocketAddress(ipAddress: target.ip, port: port) { addresses[address] = target.name }
        }
        guard !addresses.isEmpty, channel.isActive else { return [] }
        let nonce = UInt64.random(in: 1...UInt64.max)
        let datagram = PeerDatagram.seal(kind: PeerDatagram.push, nonce: nonce, body: body, secret: secret, allocator: channel.allocator)
        let promise = loop.makePromise(of: Set<String>.self)
        let targetsByAddress = addresses, gaveUp = NIOLockedValueBox(false)
        return await withTaskCancellationHandler {
            loop.execute {
                // Taken back before it went out, or the socket closed meanwhile: it never goes.
                if gaveUp.withLockedValue({ $0 }) || !channel.isActive { return promise.succeed([]) }
                let push = Pending(secret: secret, datagram: datagram, targets: targetsByAddress, promise: promise, answered: answered)
                handler.pending[nonce] = push
                func send() {
                    for address in push.unanswered.keys { channel.write(AddressedEnvelope(remoteAddress: address, data: push.datagram), promise: nil) }
                    channel.flush()
                }
                send()
                push.timers = [loop.scheduleTask(in: .milliseconds(100)) { send() }, loop.scheduleTask(in: .milliseconds(300)) { send() },
                               loop.scheduleTask(in: .seconds(1)) { handler.finish(nonce) }]
            }
            return (try? await promise.futureResult.get()) ?? []
        } onCancel: {
            // Taken back (the change was undone): stop waiting, and blame no bouncer.
            gaveUp.withLockedValue { $0 = true }
            loop.execute { handler.finish(nonce, cancelled: true) }
        }
    }

    public func close() async {
        try? await channel.close()
    }
}
