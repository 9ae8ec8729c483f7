// swift-tools-version: 6.0
// Mizar in Swift: an XDP/eBPF cloud-network data plane. Layers bottom up, as in docs/architecture.md.
import PackageDescription

/// A built-in plugin in plugins/<dir>/: its C tables (include/<dir>.h through a module map),
/// its Swift library `Mizar<name>` (Sources/) and its tests (Tests/).
func builtInPlugin(_ name: String, _ dir: String) -> [Target] {
    [
        .systemLibrary(name: "CMizar\(name)", path: "plugins/\(dir)/include"),
        .target(name: "Mizar\(name)", dependencies: ["MizarPlugins", "MizarBPF", "MizarNet", "CMizarABI", .target(name: "CMizar\(name)")],
                path: "plugins/\(dir)/Sources", swiftSettings: swiftSettings),
        .testTarget(name: "\(name)Tests", dependencies: [.target(name: "Mizar\(name)"), "MizarPluginSDK", "MizarDataplane", "MizarTopology",
                                                         .target(name: "CMizar\(name)")],
                    path: "plugins/\(dir)/Tests", swiftSettings: swiftSettings),
    ]
}

/// An example plugin in plugins/examples/<dir>/, built as a third party builds one: its
/// Swift library `<name>Plugin` (descriptor, typed configuration) on the SDK alone, and its
/// SDK tests. `mizarctl plugin new` adds one of these to the targets.
func examplePlugin(_ name: String, _ dir: String) -> [Target] {
    [
        .target(name: "\(name)Plugin", dependencies: ["MizarPluginSDK"], path: "plugins/examples/\(dir)",
                exclude: ["\(dir).bpf.c", "\(dir).plugin.yaml", "Tests"], swiftSettings: swiftSettings),
        .testTarget(name: "\(name)PluginTests", dependencies: [.target(name: "\(name)Plugin"), "MizarPluginSDK"],
                    path: "plugins/examples/\(dir)/Tests", swiftSettings: swiftSettings),
    ]
}

/// Applied to every Swift target.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// Links the Swift runtime and Foundation into an executable (the CNI plugin runs on hosts
/// without Swift). The modules are compiled as for every target, so Foundation's static
/// archives and the C libraries under them are named here.
let staticSwiftRuntime: [LinkerSetting] = [
    .unsafeFlags(["-static-stdlib", "-Xlinker", "--start-group", "-lFoundation", "-lFoundationEssentials", "-lFoundationInternationalization",
                  "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization",
                  "-Xlinker", "--end-group"], .when(platforms: [.linux])),
]

let package = Package(
    name: "mizar",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mizarctl", targets: ["mizarctl"]),
        .executable(name: "transitd", targets: ["transitd"]),
        .executable(name: "mizar-controller", targets: ["mizar-controller"]),
        .executable(name: "mizar", targets: ["mizar"]),
        .executable(name: "mizar-demo", targets: ["MizarDemo"]),
        .executable(name: "mizar-bench", targets: ["MizarBench"]),
        .executable(name: "mizar-fuzz", targets: ["MizarFuzz"]),
        .library(name: "MizarBPF", targets: ["MizarBPF"]),
        .library(name: "MizarNet", targets: ["MizarNet"]),
        .library(name: "MizarPluginSDK", targets: ["MizarPluginSDK"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // Layer 1: the only targets that touch C.
        .target(name: "CLibBPF", linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]),
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0", providers: [.apt(["libnl-route-3-dev"])]),
        .systemLibrary(name: "CMizarABI"),
        // Addresses, CIDRs, VNIs: value types with no C under them (the CNI plugin and the controller use them).
        .target(name: "MizarAddresses", swiftSettings: swiftSettings),
        // Layer 2: libbpf.
        .target(name: "MizarBPF", dependencies: ["CLibBPF"], swiftSettings: swiftSettings),
        // Layer 3: netlink and namespaces.
        .target(name: "MizarNet", dependencies: ["CNetlink", "MizarAddresses"], swiftSettings: swiftSettings),
        // The wire format as bytes: builders for tests, benchmarks and the plugin SDK.
        .target(name: "MizarPacket", dependencies: ["CMizarABI", "MizarNet"], swiftSettings: swiftSettings),
        // Namespaces joined by veths, and tools run inside them: for tests, benchmarks and demos.
        .target(name: "MizarTopology", dependencies: ["MizarNet", "MizarBPF", "MizarDataplane", "MizarClient", "CMizarABI"], swiftSettings: swiftSettings),
        // Layer 4: map layouts and programming of the data plane: droplets, VPCs, networks, endpoints.
        .target(
            name: "MizarDataplane",
            dependencies: ["MizarBPF", "MizarNet", "MizarPlugins", "CMizarABI", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        // Plugin chains: descriptors, validation, building and switching chains, counters.
        .target(
            name: "MizarPlugins",
            dependencies: ["MizarBPF", "MizarNet", "CMizarABI", .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings),
        // The plugin author's SDK: descriptors, packet builders and the test-run harness, one import.
        .target(name: "MizarPluginSDK", dependencies: ["MizarPlugins", "MizarBPF", "MizarNet", "MizarPacket", "CMizarABI"], swiftSettings: swiftSettings),
        // Plugins: examples (plugins/examples/<dir>/; `mizarctl plugin new` adds its own after the last) and built-ins (plugins/<dir>/).
    ] + examplePlugin("PortGuard", "port_guard") + builtInPlugin("ACL", "acl") + builtInPlugin("NAT", "nat") + builtInPlugin("LB", "lb") + builtInPlugin("Shaper", "shaper") + [
        // Layer 6: the API's resource types, shared by transitd, mizarctl, the CNI plugin and the controller. No C.
        .target(name: "MizarAPI", dependencies: ["MizarAddresses"], swiftSettings: swiftSettings),
        // The API's client over the Unix socket (or TLS): mizarctl, the demo and tests.
        .target(
            name: "MizarClient",
            dependencies: ["MizarAPI", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Yams", package: "Yams"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOFoundationCompat", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: swiftSettings),
        // The cluster store: etcd's v3 API through its JSON gateway, and where the cluster keeps what.
        .target(
            name: "MizarCluster",
            dependencies: ["MizarAPI", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: swiftSettings),
        // mizar-controller's parts: placement of roles, handovers, block collection, leader election.
        .target(name: "MizarController", dependencies: ["MizarCluster", "MizarAPI", .product(name: "Logging", package: "swift-log")], swiftSettings: swiftSettings),
        // transitd's parts: the desired-state store, the reconciler that drives a Droplet, the HTTP API.
        .target(
            name: "MizarDaemon",
            dependencies: [
                "MizarAPI", "MizarCluster", "MizarDataplane", "MizarPlugins", "MizarBPF", "MizarNet", "MizarACL", "MizarNAT", "MizarLB", "MizarShaper",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        // The CNI plugin (cni/): the spec's commands over transitd's API, and the `mizar` binary,
        // linked with the Swift runtime inside so that it runs on hosts without Swift.
        .target(name: "MizarCNI", dependencies: ["MizarAPI", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")], path: "cni/Sources/MizarCNI", swiftSettings: swiftSettings),
        .executableTarget(name: "mizar", dependencies: ["MizarCNI", "MizarAPI"], path: "cni/Sources/mizar", swiftSettings: swiftSettings,
                          linkerSettings: staticSwiftRuntime),
        // Executables.
        .executableTarget(
            name: "transitd",
            dependencies: [
                "MizarDaemon", "MizarClient", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "mizar-controller",
            dependencies: ["MizarController", "MizarCluster", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "mizarctl",
            dependencies: [
                "MizarBPF", "MizarNet", "CMizarABI", "MizarPluginSDK", "MizarAPI", "MizarClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "MizarDemo",
            dependencies: ["MizarNet", "MizarTopology", "MizarAPI", "MizarClient", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "MizarBench",
            dependencies: [
                "MizarBPF", "MizarNet", "MizarDataplane", "MizarPacket", "MizarTopology", "CMizarABI", "MizarPluginSDK", "MizarACL", "MizarNAT", "MizarLB", "MizarShaper",
                "MizarAPI", "MizarClient", "MizarCNI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "MizarFuzz",
            dependencies: ["MizarBPF", "MizarNet", "MizarDataplane", "MizarPacket", "MizarTopology", "CMizarABI",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings),
        // Tests: kernel-backed, they need root and the objects of `make bpf`.
        .target(name: "MizarTestSupport", dependencies: ["MizarBPF", "MizarNet", "MizarTopology"], path: "Tests/MizarTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "MizarBPFTests", dependencies: ["MizarBPF", "MizarNet", "MizarPacket", "MizarTestSupport", "CMizarABI"], swiftSettings: swiftSettings),
        .testTarget(name: "MizarNetTests", dependencies: ["MizarNet", "MizarTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "DataplaneTests", dependencies: ["MizarDataplane", "MizarBPF", "MizarNet", "MizarPacket", "MizarTestSupport", "CMizarABI"], swiftSettings: swiftSettings),
        .testTarget(name: "MizarPacketTests", dependencies: ["MizarPacket", "MizarTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "PluginChainTests", dependencies: ["MizarPluginSDK", "MizarPlugins", "MizarAPI", "MizarDataplane", "MizarTopology", "MizarTestSupport", "CMizarABI"], swiftSettings: swiftSettings),
        .testTarget(name: "MizarctlTests", dependencies: ["MizarTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "CNITests", dependencies: ["MizarCNI", "MizarAPI", "MizarClient", "MizarTestSupport"], path: "cni/Tests/CNITests",
                    swiftSettings: swiftSettings),
        .testTarget(name: "ClusterTests", dependencies: ["MizarCluster", "MizarController", "MizarAPI", "MizarClient", "MizarTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TransitdTests", dependencies: ["MizarAPI", "MizarClient", "MizarTestSupport", "CMizarABI", .product(name: "Yams", package: "Yams")],
                    swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v5]
)
