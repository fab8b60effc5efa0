// swift-tools-version:6.1
// Micro-benchmarks (ordo-one/benchmark), kept out of the main build and CI:
//   cd bench && swift package benchmark
import PackageDescription

let package = Package(
    name: "CelerisBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "Celeris", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Codec",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FastCore", package: "Celeris"),
            ],
            path: "Benchmarks/Codec",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
