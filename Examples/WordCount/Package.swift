// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "WordCount",
    products: [
        .executable(name: "wordcount-worker", targets: ["WordCountWorker"]),
        .executable(name: "wordcount-app", targets: ["WordCountApp"]),
    ],
    dependencies: [
        // Your project depends on a release:  .package(url: "https://github.com/<org>/celeris", from: "0.2.0")
        // This example depends on the checkout it sits in:
        .package(name: "Celeris", path: "../..")
    ],
    targets: [
        // The tasks: argument and result types, and the bodies. The worker links them; an app that
        // only sends tasks needs the types and the names (`WordCountTasks.countByName`).
        .target(name: "WordCountTasks", dependencies: [.product(name: "Celeris", package: "Celeris")]),
        .executableTarget(name: "WordCountWorker", dependencies: ["WordCountTasks"]),
        .executableTarget(name: "WordCountApp", dependencies: ["WordCountTasks"]),
    ]
)
