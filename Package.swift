// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "bpftree",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bpftree", targets: ["bpftree"]),
        .executable(name: "bpftree-plan-bench", targets: ["bpftree-plan-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libbpf-dev, libyaml-dev).
        .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),

        // Raw syscalls the Swift side cannot reach (variadic syscall(), renameat2, openat2, bpf(2) with
        // path_fd) and the batch-program runner on top of libbpf.
        .target(
            name: "CBPFTreeShim",
            dependencies: ["CLibBPF"],
            cSettings: [.headerSearchPath("../../bpf")],
            // libelf (libbpf's own dependency) reads a uprobe's symbols.
            linkerSettings: [.linkedLibrary("elf")]
        ),

        // libyaml -> position-annotated node tree. Pure.
        .target(name: "BPFTreeYAML", dependencies: ["CYAML"]),

        // Manifests, validation, desired/live snapshots, the planner. Pure: no kernel access.
        .target(
            name: "BPFTreeCore",
            dependencies: ["BPFTreeYAML", .product(name: "Crypto", package: "swift-crypto")]
        ),

        // Anchor fd, *at operations, tree walk, object info, batch-program runner, executor.
        .target(
            name: "BPFTreeKernel",
            dependencies: [
                "BPFTreeCore", "CBPFTreeShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            plugins: ["BPFObjectPlugin"]
        ),

        // diff / apply / reconcile commands, plan rendering, the reconcile service and its metrics endpoint.
        .target(
            name: "BPFTreeCommands",
            dependencies: [
                "BPFTreeCore", "BPFTreeKernel", "BPFTreeYAML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        .executableTarget(
            name: "bpftree",
            dependencies: ["BPFTreeCommands", "BPFTreeKernel", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // S5 of bench/run: the planner alone on 100,000 entries, in process.
        .executableTarget(name: "bpftree-plan-bench", dependencies: ["BPFTreeCore", "BPFTreeYAML"]),

        // Compiles bpf/*.bpf.c with the toolchain's clang and embeds each object in the target.
        .plugin(name: "BPFObjectPlugin", capability: .buildTool()),

        .target(name: "BPFTreeTestSupport", path: "Tests/Support"),
        .testTarget(name: "BPFTreeCoreTests", dependencies: ["BPFTreeCore", "BPFTreeYAML", "BPFTreeTestSupport"]),
        .testTarget(
            name: "BPFTreeKernelTests",
            dependencies: ["BPFTreeKernel", "BPFTreeCore", "BPFTreeCommands", "CBPFTreeShim", "BPFTreeTestSupport", "bpftree"]
        ),
    ]
)
