// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Celeris",
    products: [
        .executable(name: "celeris-frontend", targets: ["Frontend"]),
        .executable(name: "celeris-worker", targets: ["Worker"]),
        .executable(name: "celeris-beat", targets: ["Beat"]),
        .library(name: "Celeris", targets: ["Celeris"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // Tests only: the client is shown not to block a SwiftNIO event loop it is used from.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "CEventShim",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [
                .linkedLibrary("event"), .linkedLibrary("hiredis"), .linkedLibrary("http_parser"),
                .linkedLibrary("uring"), .linkedLibrary("ssl"),
                .linkedLibrary("crypto"),
            ]
        ),
        .target(
            name: "FastCore",
            dependencies: [
                "CEventShim", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The library users depend on: FastCore re-exported, the worker's command line
        // (`CelerisWorker.main(tasks:)`) and the application client.
        .target(
            name: "Celeris",
            dependencies: [
                "FastCore", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "Frontend",
            dependencies: [
                "FastCore", "CEventShim", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "Worker",
            dependencies: ["Celeris"]
        ),
        .executableTarget(
            name: "Beat",
            dependencies: ["Celeris"]
        ),
        .testTarget(
            name: "CelerisTests",
            dependencies: [
                "Celeris", "FastCore", "CEventShim", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)
