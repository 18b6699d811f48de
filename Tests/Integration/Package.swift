// swift-tools-version: 6.0
//
// ECI's integration suites: real runc, real mounts, a real dockerd, the image built and booted
// under QEMU, ecid. They need root and minutes, so they live in a package of their own: `swift
// test` at the repository root runs only the unit tests; `make integration` (part of `make
// test`) runs these with `swift test --package-path Tests/Integration`.

import PackageDescription

let package = Package(
    name: "eci-integration",
    dependencies: [
        .package(name: "eci", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                .product(name: "ECIIntegrationSupport", package: "eci"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
