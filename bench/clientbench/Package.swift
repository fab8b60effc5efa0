// swift-tools-version:6.0
// The Swift side of bench/client_bench.py: CelerisClient sends/s and round trips.
// Depends on the Celeris library product by path, as an outside app would.
//   cd bench/clientbench && swift build -c release
import PackageDescription

let package = Package(
    name: "ClientBench",
    dependencies: [.package(name: "Celeris", path: "../..")],
    targets: [
        .executableTarget(name: "client-bench", dependencies: [.product(name: "Celeris", package: "Celeris")])
    ]
)
