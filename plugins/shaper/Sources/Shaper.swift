import CMizarABI
import CMizarShaper
import MizarBPF
import MizarNet
import MizarPlugins

/// The shaper built-in plugin: a token-bucket rate limit per endpoint and direction,
/// shared by every CPU without a lock (GCRA; docs/plugins.md#shaper).
public enum Shaper {
    public static let descriptor = PluginDescriptor(
        name: "shaper", version: "1.0.0", object: SHAPER_OBJECT, entry: "shaper", hooks: [.egress, .ingress], priority: 90,
        maps: [PluginMapDescriptor(name: SHAPER_BUCKETS_MAP, type: "hash", key: shaper_key.self, value: shaper_bucket.self,
                                   maxEntries: UInt32(SHAPER_MAX_BUCKETS) * UInt32(SHAPER_GENERATIONS)),
               PluginMapDescriptor(name: SHAPER_GENERATION_MAP, type: "array", key: UInt32.self, value: shaper_generation.self, maxEntries: 1)],
        reasons: [Reason.rateLimited.rawValue: "rate-limited"])

    public enum Reason: Int, Sendable { case rateLimited = 1 }

    public enum Direction: String, Codable, Sendable {
        /// What the endpoint sends (the egress hook).
        case egress
        /// What the endpoint receives from other droplets (the ingress hook).
        case ingress
    }

    /// The smallest burst: a TSO/GSO frame of 64 KiB must fit, or TCP stalls at the TC agent.
    public static let minimumBurst: UInt64 = 65536

    public struct Limit: Codable, Sendable, Hashable {
        public var vpc: UInt32
        public var endpoint: String
        public var direction: Direction
        /// Rate in bits per second of Ethernet frames.
        public var bitsPerSecond: UInt64
        /// Bytes that may go at once after a pause (at least `minimumBurst`).
        public var burstBytes: UInt64

        public init(vpc: UInt32, endpoint: String, direction: Direction = .egress, bitsPerSecond: UInt64, burstBytes: UInt64 = 262_144) {
            self.vpc = vpc
            self.endpoint = endpoint
            self.direction = direction
            self.bitsPerSecond = bitsPerSecond
            self.burstBytes = burstBytes
        }
    }

    /// The limits of a droplet's endpoints. Writing it switches every limit at once (a
    /// generation switch) and starts every bucket full.
    public struct Config: GenerationalConfiguration, Codable, Hashable {
        public var limits: [Limit]

        public init(limits: [Limit]) { self.limits = limits }

        public func validate() throws { _ = try mapEntries() }

        public var generationMap: String { SHAPER_GENERATION_MAP }

        public func generation(named value: [UInt8]) -> UInt32 { pluginField(value, at: MemoryLayout<shaper_generation>.offset(of: \.generation)!) }

        public func generation(ofKey key: [UInt8], in map: String) -> UInt32? {
            map == SHAPER_BUCKETS_MAP ? pluginField(key, at: MemoryLayout<shaper_key>.offset(of: \.generation)!) : nil
        }

        /// The buckets keyed by `generation`'s low bit, and the switch naming it.
        public func mapEntries(generation: UInt32) throws -> [String: [PluginMapEntry]] {
            let check = ConfigCheck("shaper")
            func fail(_ why: String) -> PluginError { check.fail(why) }
            var entries: [PluginMapEntry] = [], seen = Set<String>()
            for limit in limits {
                let ip = try check.address(limit.endpoint, "endpoint")
                _ = try check.vni(limit.vpc)
                guard limit.bitsPerSecond / 8 >= SHAPER_MIN_RATE, limit.bitsPerSecond / 8 <= SHAPER_MAX_RATE else {
                    throw fail("rate \(limit.bitsPerSecond) bit/s for \(ip): give 1 kbit/s to 100 Gbit/s")
                }
                guard limit.burstBytes >= Shaper.minimumBurst else {
                    throw fail("burst \(limit.burstBytes) B for \(ip): at least \(Shaper.minimumBurst) B, or 64 KiB GSO frames never pass")
                }
                guard seen.insert("\(limit.vpc)/\(ip)/\(limit.direction)").inserted else { throw fail("\(ip) \(limit.direction) is limited twice") }
                var key = shaper_key()
                key.vni = limit.vpc
                key.ip = ip.networkOrder
                key.direction = limit.direction == .egress ? SHAPER_EGRESS.rawValue : SHAPER_INGRESS.rawValue
                key.generation = generation & 1
                var bucket = shaper_bucket()
                let bytesPerSecond = Double(limit.bitsPerSecond) / 8
                bucket.rate = UInt64(bytesPerSecond)
                bucket.ns_per_byte_q20 = UInt64((1e9 / bytesPerSecond * Double(1 << 20)).rounded())
                // The bucket counts in 64-bit nanoseconds: a burst that lasts longer at this rate cannot be kept.
                let burstNs = (Double(limit.burstBytes) * 1e9 / bytesPerSecond).rounded()
                guard burstNs < Double(1 << 62) else { throw fail("burst \(limit.burstBytes) B for \(ip) lasts too long at \(limit.bitsPerSecond) bit/s") }
                bucket.burst_ns = UInt64(burstNs)
                bucket.tat = 0 // full
                entries.append(PluginMapEntry(key, bucket))
            }
            guard entries.count <= Int(SHAPER_MAX_BUCKETS) else { throw fail("\(entries.count) limits; at most \(SHAPER_MAX_BUCKETS)") }
            var live = shaper_generation()
            live.generation = generation
            return [SHAPER_BUCKETS_MAP: entries, SHAPER_GENERATION_MAP: [PluginMapEntry(UInt32(0), live)]]
        }
    }
}

// What a configuration document may leave out takes the same defaults as the Swift initialisers
// (docs/plugins.md), so YAML and the API need only what matters.

extension Shaper.Limit {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vpc: try c.decode(UInt32.self, forKey: .vpc), endpoint: try c.decode(String.self, forKey: .endpoint),
                  direction: try c.decodeIfPresent(Shaper.Direction.self, forKey: .direction) ?? .egress,
                  bitsPerSecond: try c.decode(UInt64.self, forKey: .bitsPerSecond),
                  burstBytes: try c.decodeIfPresent(UInt64.self, forKey: .burstBytes) ?? 262_144)
    }
}
