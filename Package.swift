// swift-tools-version: 6.0
//
// ECI: an open implementation of Enhanced Container Isolation.
// One package; executables are thin mains over small libraries (see docs/architecture.md).

import PackageDescription

let package = Package(
    name: "eci",
    products: [
        .executable(name: "eci-runc", targets: ["eci-runc"]),
        .executable(name: "ecibuild", targets: ["ecibuild"]),
        .executable(name: "eci-agent", targets: ["eci-agent"]),
        .executable(name: "ecid", targets: ["ecid"]),
        // For the root-only integration suites, a package of their own (Tests/Integration), so
        // that `swift test` here runs only the fast unit tests, without root.
        .library(
            name: "ECIIntegrationSupport",
            targets: ["ECICore", "ECIOCI", "ECIPolicy", "ECIRuntime", "ECIAgent", "ECIHost", "ECIIO", "ECIChannel", "ECIContract", "ECITestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // The syscalls Glibc's module lacks (open_tree, move_mount, mount_setattr, unshare, ...),
        // and the few operations that must run as C between fork and _exit.
        .target(name: "CShim"),
        // Seccomp user notification for ecid: the notify-fd ioctls, fd passing, bounded reads
        // of a target's memory, and the calls its helper makes to act as the caller.
        .target(name: "CSeccomp"),
        .target(
            name: "ECICore",
            dependencies: ["CShim", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "ECIOCI", dependencies: ["ECICore"]),
        // The host<->guest contract: control and admin requests and replies (Codable, versioned),
        // the port names and the fw_cfg key. Imported by both halves, so both see every change.
        .target(name: "ECIContract", dependencies: ["ECICore"]),
        .target(name: "ECIPolicy", dependencies: ["ECICore", "ECIOCI"]),
        .target(
            name: "ECIRuntime",
            dependencies: ["CShim", "ECICore", "ECIContract", "ECIOCI", "ECIPolicy", "ECIProcFS", .product(name: "Logging", package: "swift-log")]
        ),
        // Blocking I/O: unix stream sockets with one owner, detached POSIX threads, host tools.
        .target(name: "ECIIO", dependencies: ["CShim", "ECICore"]),
        // Host<->guest channel over virtio-serial ports: frames, resync after garbage, streams
        // with flow control and half-close (pure), and the endpoints that move them over a port
        // (control requests, the engine API tunnel). Used by the agent and by ecibuild run.
        .target(name: "ECIChannel", dependencies: ["ECICore", "ECIIO", .product(name: "Logging", package: "swift-log")]),
        // The guest agent: kernel probes, engine configuration, settings, the engine API filter
        // and its proxy, the guest ends of the control port and the tunnel.
        .target(
            name: "ECIAgent",
            dependencies: ["CShim", "ECICore", "ECIContract", "ECIIO", "ECIOCI", "ECIPolicy", "ECIRuntime", "ECIChannel", .product(name: "Logging", package: "swift-log")]
        ),
        // The host side of `ecibuild run`: QEMU, the VM's state directory, the host docker socket.
        .target(name: "ECIHost", dependencies: ["CShim", "ECICore", "ECIContract", "ECIIO", "ECIOCI", "ECIChannel", .product(name: "Logging", package: "swift-log")]),
        // The image builder: spec, kernel-config check, rootfs, disk writer, manifest.
        .target(name: "ECIImage", dependencies: ["ECICore", "ECIIO", .product(name: "Yams", package: "Yams")]),
        // ecid, the syscall supervisor: notify fds from runc, the container registry, the
        // per-call helper that performs vetted mounts as the caller.
        .target(
            name: "ECISupervisor",
            dependencies: ["CSeccomp", "CShim", "ECICore", "ECIIO", "ECIOCI", "ECIPolicy", "ECIProcFS", "ECIRuntime", .product(name: "Logging", package: "swift-log")]
        ),
        // procfs emulation: ecid's FUSE file system (the kernel protocol spoken directly, so a
        // restarted ecid adopts the connection) and the per-container views it serves.
        .target(name: "ECIProcFS", dependencies: ["ECICore", "ECIIO", "ECIPolicy", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "eci-runc", dependencies: ["ECIRuntime"]),
        .executableTarget(name: "ecid", dependencies: ["ECISupervisor", "ECICore", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "ecibuild",
            dependencies: ["ECIImage", "ECIHost", "ECIContract", "ECIIO", "ECICore", "ECIOCI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "eci-agent", dependencies: ["ECIAgent", "ECICore", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // Test-only: drives the ID-range store from many processes at once (allocator stress tests).
        .executableTarget(name: "eci-test-helper", dependencies: ["ECIRuntime"]),
        // Test-only: the VM end-to-end tests (make e2e), driving `ecibuild run` with the docker CLI.
        .executableTarget(name: "eci-e2e", dependencies: ["ECITestSupport"]),
        // Test-only helpers: running programs, finding the built binaries, busybox root filesystems.
        .target(name: "ECITestSupport", dependencies: ["ECICore"]),
        .testTarget(name: "ECIOCITests", dependencies: ["ECIOCI"]),
        .testTarget(name: "ECISupervisorTests", dependencies: ["ECISupervisor", "CSeccomp", "ECIPolicy"]),
        .testTarget(name: "ECIPolicyTests", dependencies: ["ECIPolicy"]),
        .testTarget(name: "ECIProcFSTests", dependencies: ["ECIProcFS", "ECIPolicy"]),
        .testTarget(name: "ECIRuntimeTests", dependencies: ["ECIRuntime", "ECITestSupport"]),
        .testTarget(name: "ECIImageTests", dependencies: ["ECIImage", "ECIIO", "ECICore", "ECITestSupport"]),
        .testTarget(name: "ECIChannelTests", dependencies: ["ECIChannel"]),
        .testTarget(name: "ECIContractTests", dependencies: ["ECIContract", "ECICore"]),
        .testTarget(name: "ECIHostTests", dependencies: ["ECIHost", "ECIContract", "ECICore", "ECIOCI"]),
        .testTarget(name: "ECIAgentTests", dependencies: ["ECIAgent", "ECIContract", "ECIIO", "ECIPolicy", "ECIOCI"]),
    ],
    swiftLanguageModes: [.v6]
)
