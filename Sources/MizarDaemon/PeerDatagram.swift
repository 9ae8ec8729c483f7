import Crypto
import Foundation
import NIOCore

/// A push and its answer are one UDP datagram each:
///
///     kind (1 byte: 'P' push, 'R' reply) | nonce (8) | sent at (8, ms since 1970) | HMAC-SHA256 (32) | body
///
/// integers big endian. The HMAC, under the cluster's secret, covers everything but itself: a
/// reply cannot pass for a push, answers only the push of its nonce, and neither can be made
/// to look younger. A push's body is `PeerChanges` as JSON; a reply's is `PeerAnswer`.
/// Datagrams, not HTTP: on the 2-core bench an HTTP request cost a bouncer 0.4–0.6 ms of CPU
/// before any handler ran (TCP's socket lock, the parser, two thread hops), and the creator a
/// task per bouncer; a datagram is one read and one write each way.
enum PeerDatagram {
    static let push = UInt8(ascii: "P"), reply = UInt8(ascii: "R")
    static let signedSize = 1 + 8 + 8, headerSize = signedSize + 32
    /// What one datagram may carry (IPv4's UDP limit, less the header).
    static let maxBody = 65_507 - headerSize
    /// A push sent longer ago than this (or this far ahead, by the sender's clock) is dropped unanswered.
    static let maxAgeMilliseconds: Int64 = 30_000

    struct Opened {
        var kind: UInt8
        var nonce: UInt64
        var sentAt: Int64
        var body: [UInt8]
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func seal(kind: UInt8, nonce: UInt64, body: some DataProtocol, secret: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headerSize + body.count)
        buffer.writeInteger(kind)
        buffer.writeInteger(nonce)
        buffer.writeInteger(now())
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: buffer.readableBytesView)
        hmac.update(data: body)
        buffer.writeBytes(Array(hmac.finalize()))
        buffer.writeBytes(body)
        return buffer
    }

    /// What a datagram signed under `secret` says; nil for anything else. Checked in place:
    /// the body is copied out only once the signature holds.
    static func open(_ datagram: ByteBuffer, secret: [UInt8]) -> Opened? {
        guard datagram.readableBytes >= headerSize else { return nil }
        let signed = datagram.withUnsafeReadableBytes { raw in
            var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
            hmac.update(data: UnsafeRawBufferPointer(rebasing: raw[0..<signedSize]))
            hmac.update(data: UnsafeRawBufferPointer(rebasing: raw[headerSize...]))
            // Constant time: swift-crypto's comparison of authentication codes.
            return hmac.finalize() == UnsafeRawBufferPointer(rebasing: raw[signedSize..<headerSize])
        }
        guard signed, let kind = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self),
              let nonce = datagram.getInteger(at: datagram.readerIndex + 1, as: UInt64.self),
              let sentAt = datagram.getInteger(at: datagram.readerIndex + 9, as: Int64.self),
              let body = datagram.getBytes(at: datagram.readerIndex + headerSize, length: datagram.readableBytes - headerSize) else { return nil }
        return Opened(kind: kind, nonce: nonce, sentAt: sentAt, body: body)
    }

    /// The nonce of a datagram, before it is checked (to find the push it claims to answer).
    static func nonce(of datagram: ByteBuffer) -> UInt64? {
        guard datagram.readableBytes >= headerSize else { return nil }
        return datagram.getInteger(at: datagram.readerIndex + 1, as: UInt64.self)
    }
}

/// A bouncer's answer to a push: who answers (the reply must come from the droplet the push
/// went to, by name as well as by address), and how it took the push.
struct PeerAnswer: Equatable {
    enum Outcome: UInt8 {
        /// Its tables hold every endpoint of the push as the push says.
        case held = 0x48  // "H"
        /// Taken, but its tables are not there yet (it is behind): waited for through etcd.
        case notHeld = 0x4e  // "N"
        /// Not taken: not addressed to it, or not a push.
        case refused = 0x52  // "R"
    }

    var outcome: Outcome
    var from: String
    /// Why, for a refusal.
    var reason: String = ""

    /// `outcome | from | "\n" | reason`.
    var bytes: [UInt8] { [outcome.rawValue] + Array(from.utf8) + [0x0a] + Array(reason.utf8) }

    init(_ outcome: Outcome, from: String, reason: String = "") { (self.outcome, self.from, self.reason) = (outcome, from, reason) }

    init?(_ bytes: [UInt8]) {
        guard let first = bytes.first, let outcome = Outcome(rawValue: first), let newline = bytes.firstIndex(of: 0x0a) else { return nil }
        self.outcome = outcome
        from = String(decoding: bytes[1..<newline], as: UTF8.self)
        reason = String(decoding: bytes[(newline + 1)...], as: UTF8.self)
    }
}
