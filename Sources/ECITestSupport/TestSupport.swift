import ECICore
import Foundation

/// Helpers shared by the test targets: running programs, locating the built binaries and the
/// repository, and comparing mount tables. Linked only into tests.
public enum TestSupport {
    /// The repository root, found from this file's location.
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Where `make` puts the executables (`ECI_BIN_DIR` overrides).
    public static var binDirectory: String {
        ProcessInfo.processInfo.environment["ECI_BIN_DIR"] ?? repositoryRoot + "/bin"
    }

    /// The path of a built executable; a missing one is a loud failure, never a skip.
    public static func binary(_ name: String) throws -> String {
        let path = binDirectory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(path) is missing: run `make` (or `make test`, which builds first)")
        }
        return path
    }

    /// Integration tests need root (mounts, namespaces, dockerd). Not being root fails loudly.
    public static func requireRoot() throws {
        guard getuid() == 0 else {
            throw TestFailure("integration tests must run as root (they make real mounts, namespaces and start dockerd); run `sudo make test`")
        }
    }

    /// The result of a finished program.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `arguments[0]` with the rest as arguments and waits; `environment` adds to ours.
    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil, directory: String? = nil) throws -> Output {
        var attributes = attributes(arguments, environment: environment, directory: directory)
        attributes.stdin = .null
        let result = try ChildProcess.run(attributes, input: input.map { Array($0.utf8) })
        return Output(status: result.status, stdout: String(decoding: result.stdout, as: UTF8.self), stderr: String(decoding: result.stderr, as: UTF8.self))
    }

    /// Runs a program with stdin and stdout on /dev/null and stderr captured in a file, for
    /// commands that leave processes holding their stdio (runc create). Returns status and stderr.
    @discardableResult
    public static func runDetached(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws -> Output {
        let errPath = "/tmp/eci-test-stderr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let errFD = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard errFD >= 0 else { throw TestFailure("can't create \(errPath): errno \(errno)") }
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        var attributes = attributes(arguments, environment: environment, directory: directory)
        attributes.stdin = .null
        attributes.stdout = .null
        attributes.stderr = .fd(errFD)
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(attributes)
            close(errFD)
        } catch {
            close(errFD)
            throw error
        }
        let status = try child.wait()
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Output(status: status, stdout: "", stderr: err)
    }

    /// How the tests start a program: argv[0] is its path, our environment plus `environment`,
    /// signals at their defaults (as a shell would start it).
    private static func attributes(_ arguments: [String], environment: [String: String], directory: String?) -> SpawnAttributes {
        var attributes = SpawnAttributes(arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        attributes.directory = directory
        attributes.defaultSignalActions = true
        return attributes
    }

    /// Runs a shell command line with /bin/sh -c.
    @discardableResult
    public static func sh(_ command: String, environment: [String: String] = [:]) throws -> Output {
        try run(["/bin/sh", "-c", command], environment: environment)
    }

    /// Mount points of this process (for before/after comparisons). Read to the end with
    /// `FileSystem.readText`: Foundation's `String(contentsOfFile:)` reads one page of a procfs
    /// file, so a table longer than 4 KiB lost its last mounts, leftovers included.
    public static func mountPoints() throws -> [String] {
        try FileSystem.readText("/proc/self/mountinfo").split(separator: "\n").map { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 ? String(fields[4]) : ""
        }
    }

    /// A fresh directory under /tmp whose name contains "eci" (so leftovers are easy to spot).
    public static func temporaryDirectory(_ label: String) throws -> String {
        let path = "/tmp/eci-test-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Builds a busybox root filesystem (Debian's busybox-static) with every applet linked.
    public static func makeBusyboxRootfs(at path: String) throws {
        let busybox = "/bin/busybox"
        guard FileManager.default.isExecutableFile(atPath: busybox) else {
            throw TestFailure("\(busybox) is missing: run `make deps` (busybox-static)")
        }
        for dir in ["bin", "proc", "sys", "dev", "etc", "tmp", "root", "data"] {
            try FileManager.default.createDirectory(atPath: path + "/" + dir, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: busybox, toPath: path + "/bin/busybox")
        let applets = try run([busybox, "--list"]).stdout.split(separator: "\n")
        for applet in applets where applet != "busybox" {
            try? FileManager.default.createSymbolicLink(atPath: path + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".write(toFile: path + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nnogroup:x:65534:\n".write(toFile: path + "/etc/group", atomically: true, encoding: .utf8)
    }
}

/// A test failure with a message (thrown so the test fails and says why).
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
