import Foundation
import MizarAPI
import MizarCluster

/// The controller's copy of the cluster: what it places roles from and collects blocks of.
/// Kept by the follower of the whole prefix; every replica keeps one (a standby takes over warm).
struct ClusterMirror {
    let keys: ClusterKeys
    var revision: Int64 = 0
    /// Last-change revision of every key (what a write compares against).
    var revisions: [String: Int64] = [:]
    var vpcs: [String: VPC] = [:]
    var networks: [String: Network] = [:]
    var droplets: Set<String> = []
    /// Endpoint addresses of each network, by endpoint name.
    var addresses: [String: [String: UInt32]] = [:]
    var live: Set<String> = []
    /// When each droplet was last seen leaving (for the blocks' grace time).
    var lostAt: [String: ContinuousClock.Instant] = [:]
    var progress: [String: Int64] = [:]
    var pending: [String: Set<String>] = [:]
    var blocks: [String: [UInt32: String]] = [:]
    /// The leader key's value, nil when no controller leads.
    var leader: String?

    init(keys: ClusterKeys) { self.keys = keys }

    /// Takes a snapshot in place of everything.
    mutating func reset(_ kvs: [EtcdKV], revision: Int64) {
        let wasLive = live
        self = ClusterMirror(keys: keys)
        for kv in kvs { note(kv.keyString, kv.value, revision: kv.modRevision) }
        for gone in wasLive.subtracting(live) { lostAt[gone] = .now }
        self.revision = revision
    }

    /// Takes in one key (nil `value`: deleted). Returns the droplet whose liveness changed, if any.
    @discardableResult
    mutating func note(_ key: String, _ value: [UInt8]?, revision: Int64) -> (droplet: String, live: Bool)? {
        revisions[key] = value == nil ? nil : revision
        switch keys.parse(key) {
        case .resource(let ref):
            let resource = value.flatMap { try? ClusterKeys.decode($0) }
            switch (ref.kind, resource) {
            case (.vpc, .vpc(let r)?): vpcs[ref.name] = r
            case (.vpc, _): vpcs[ref.name] = nil
            case (.network, .network(let r)?): networks[ref.name] = r
            case (.network, _): networks[ref.name] = nil
            case (.droplet, .droplet?): droplets.insert(ref.name)
            case (.droplet, _): droplets.remove(ref.name)
            case (.endpoint, let resource):
                for network in addresses.keys { addresses[network]?[ref.name] = nil }
                if case .endpoint(let e)? = resource, let ip = e.spec.ip { addresses[e.spec.network, default: [:]][ref.name] = ip.value }
            default: break
            }
        case .live(let droplet):
            if value == nil {
                guard live.remove(droplet) != nil else { return nil }
                lostAt[droplet] = .now
                return (droplet, false)
            }
            lostAt[droplet] = nil
            return live.insert(droplet).inserted ? (droplet, true) : nil
        case .progress(let droplet):
            progress[droplet] = value.flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        case .pending(let network):
            pending[network] = value.flatMap { try? JSONDecoder().decode([String].self, from: Data($0)) }.map(Set.init)
        case .block(let network, let base):
            blocks[network, default: [:]][base] = value.map { String(decoding: $0, as: UTF8.self) }
        case .leader:
            leader = value.map { String(decoding: $0, as: UTF8.self) }
        case .address, .secret, .unknown:
            break
        }
        return nil
    }

    /// Droplets whose resource exists and whose lease is alive.
    var liveDroplets: Set<String> { droplets.intersection(live) }
}
