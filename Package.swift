// swift-tools-version: 6.0
//
// ECI: an open implementation of Enhanced Container Isolation.
// One package; executables are thin mains over small libraries (see docs/architecture.md).

import PackageDescription

let package = Package(
    name: "eci",
    products: [
        .executable(name: "eci-runc", targets: ["eci-runc"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0")
    ],
    targets: [
        // The syscalls Glibc's module lacks (open_tree, move_mount, mount_setattr, unshare, ...),
        // and the few operations that must run as C between fork and _exit.
        .target(name: "CShim"),
        .target(
            name: "ECICore",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "ECIOCI", dependencies: ["ECICore"]),
        .target(name: "ECIPolicy", dependencies: ["ECICore", "ECIOCI"]),
        .target(
            name: "ECIRuntime",
            dependencies: ["CShim", "ECICore", "ECIOCI", "ECIPolicy", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(name: "eci-runc", dependencies: ["ECIRuntime"]),
        // Test-only: drives the ID-range store from many processes at once (allocator stress tests).
        .executableTarget(name: "eci-test-helper", dependencies: ["ECIRuntime"]),
        // Test-only helpers: running programs, finding the built binaries, busybox root filesystems.
        .target(name: "ECITestSupport"),
        .testTarget(name: "ECIOCITests", dependencies: ["ECIOCI"]),
        .testTarget(name: "ECIPolicyTests", dependencies: ["ECIPolicy"]),
        .testTarget(name: "ECIRuntimeTests", dependencies: ["ECIRuntime", "ECITestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["ECICore", "ECIOCI", "ECIPolicy", "ECITestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
