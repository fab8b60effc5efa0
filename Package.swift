// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Celeris",
    products: [
        .executable(name: "celeris-frontend", targets: ["Frontend"]),
        .executable(name: "celeris-worker", targets: ["Worker"]),
        .library(name: "FastCore", targets: ["FastCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        .target(
            name: "CEventShim",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [
                .linkedLibrary("event"), .linkedLibrary("hiredis"), .linkedLibrary("http_parser"),
                .linkedLibrary("uring"),
            ]
        ),
        .target(
            name: "FastCore",
            dependencies: [
                "CEventShim", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            // Release builds skip the run-time exclusivity checks (about 2.3k instructions per
            // task on the worker's path, each class property access on the consumer's hot loop);
            // debug builds, which the tests run, keep them.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
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
            dependencies: [
                "FastCore", "CEventShim", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "CelerisTests",
            dependencies: ["FastCore", "CEventShim"],
            exclude: ["Fixtures"]
        ),
    ]
)
