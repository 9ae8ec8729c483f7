/// Keeps a reader in step with every key under a prefix: a snapshot first, then the
/// changes, resumed from the last revision seen after a member goes away, and a new
/// snapshot when that revision has been compacted. It never gives up: an unreachable
/// cluster is retried (backing off to 2 s) until the task is cancelled.
public struct EtcdFollower: Sendable {
    public let client: EtcdClient
    public let prefix: String

    public init(client: EtcdClient, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    /// Runs until cancelled. `revision` is the last revision the reader already has (nil:
    /// start with a snapshot). `apply` sees every change once, in revision order.
    public func run(after revision: Int64?, onError: @Sendable (any Error) -> Void,
                    _ apply: (EtcdChange) async throws -> Void) async {
        var next = revision.map { $0 + 1 }
        var backoff: Duration = .milliseconds(100)
        while !Task.isCancelled {
            do {
                if next == nil {
                    let (kvs, at) = try await client.range(prefix: prefix)
                    try await apply(.snapshot(kvs, revision: at))
                    next = at + 1
                }
                try await client.watch(prefix: prefix, from: next!) { events, at in
                    try await apply(.events(events, revision: at))
                    next = at + 1
                    backoff = .milliseconds(100)
                }
            } catch EtcdError.compacted(let compacted) {
                onError(EtcdError.compacted(compacted))
                next = nil
                continue
            } catch EtcdError.protocolError(let why) {
                // An answer not understood (a watch line, a page): start again from a snapshot rather than retry it forever.
                if Task.isCancelled { return }
                onError(EtcdError.protocolError(why))
                next = nil
            } catch {
                if Task.isCancelled { return }
                onError(error)
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }
}
