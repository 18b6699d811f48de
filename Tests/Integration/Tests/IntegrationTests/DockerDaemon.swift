import ECIPolicy
import ECITestSupport
import Foundation

/// A real dockerd started by the test with private roots, ECI as its default runtime, no
/// iptables and no bridge (as on the development machine), and a busybox image imported from
/// a local tarball (no registry). Always stopped and removed by `stop()`. With `ecid`, ecid
/// runs on the sandbox's state directory first and eci-runc requires it (ECI_ECID=required in
/// dockerd's environment, which reaches eci-runc through containerd and the shim).
final class DockerDaemon {
    let sandbox: RuntimeSandbox
    let root: String
    let socket: String
    let image = "eci-busybox:latest"
    private let process: Process
    private var ecid: Integration.Ecid.Daemon?

    /// The engine's data root (dockerd's --data-root).
    var dataRoot: String { root + "/data" }

    init(ecid withEcid: Bool = false) throws {
        sandbox = try RuntimeSandbox()
        root = sandbox.directory + "/docker"
        // The API socket in a directory of its own that no policy path names: eci-runc refuses
        // binding it (or the directory) by identity, as it would anywhere an engine listens.
        socket = root + "/api/docker.sock"
        for dir in ["data", "exec", "api"] { try FileManager.default.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true) }
        try "{}".write(toFile: root + "/daemon.json", atomically: true, encoding: .utf8)
        // The default policy, with this engine's private roots and ECI's sandbox state in place
        // of the VM's paths. Not the API socket: the runtime finds it by what listens on it.
        let restricted = RestrictedMountPolicy.defaults.restrictedPaths + [root + "/exec", root + "/daemon.json", sandbox.stateDirectory]
        let policy = "{\"restrictedPaths\":[" + restricted.map { "\"\($0)\"" }.joined(separator: ",") + "],\"engineDataRoot\":\"\(root)/data\"}"
        try policy.write(toFile: sandbox.policyPath, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/dockerd")
        process.arguments = [
            "--config-file", root + "/daemon.json", "--iptables=false", "--bridge=none", "--data-root", root + "/data",
            "--exec-root", root + "/exec", "--pidfile", root + "/dockerd.pid", "-H", "unix://" + socket,
            "--add-runtime", "eci=" + sandbox.eciRunc, "--default-runtime", "eci",
        ]
        // dockerd passes its environment down to containerd, the shim and so to eci-runc.
        var environment = ProcessInfo.processInfo.environment.merging(sandbox.environment) { $1 }
        if withEcid {
            ecid = try Integration.Ecid.Daemon(sandbox: sandbox)
            environment["ECI_ECID"] = "required"
        }
        process.environment = environment
        FileManager.default.createFile(atPath: root + "/dockerd.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/dockerd.log"))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            ecid?.kill()
            throw error
        }
        try log.close()
        do {
            try waitUntilReady()
            try importImage()
        } catch {
            stop()
            throw error
        }
    }

    private func waitUntilReady() throws {
        for _ in 0..<120 {
            if process.isRunning, (try? docker(["version", "--format", "{{.Server.Version}}"]))?.status == 0 { return }
            guard process.isRunning else { break }
            usleep(250_000)
        }
        let log = (try? String(contentsOfFile: root + "/dockerd.log", encoding: .utf8)) ?? ""
        throw TestFailure("dockerd did not come up; its log ends with:\n\(log.suffix(2000))")
    }

    private func importImage() throws {
        let rootfs = sandbox.directory + "/image-rootfs"
        try TestSupport.makeBusyboxRootfs(at: rootfs)
        // The escape-attempt program, built static so it runs in the busybox image.
        let built = try TestSupport.run([
            "/usr/bin/cc", "-static", "-O2", "-o", rootfs + "/bin/escape-attempts", TestSupport.repositoryRoot + "/Tests/Fixtures/escape-attempts.c",
        ])
        guard built.status == 0 else { throw TestFailure("building escape-attempts failed: \(built.stderr)") }
        let tarball = sandbox.directory + "/image.tar"
        try TestSupport.run(["/bin/tar", "-C", rootfs, "-cf", tarball, "."])
        let imported = try docker(["import", tarball, image])
        guard imported.status == 0 else { throw TestFailure("docker import failed: \(imported.stderr)") }
    }

    /// Runs the docker CLI against this daemon.
    @discardableResult
    func docker(_ args: [String]) throws -> TestSupport.Output {
        try TestSupport.run(["/usr/bin/docker"] + args, environment: ["DOCKER_HOST": "unix://" + socket])
    }

    /// Starts the docker CLI without waiting (for parallel runs).
    /// `via` names another socket to talk to (a proxy in front of this daemon).
    func dockerProcess(_ args: [String], output: String, via other: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/docker")
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(["DOCKER_HOST": "unix://" + (other ?? socket)]) { $1 }
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        try handle.close()
        return p
    }

    /// Stops dockerd (and its containerd), then removes every mount and file it made.
    func stop() {
        if process.isRunning {
            _ = try? docker(["rm", "-f"] + ((try? docker(["ps", "-aq"]))?.stdout.split(separator: "\n").map(String.init) ?? []))
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<80 where process.isRunning { usleep(250_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        // containerd and shims started by this dockerd, if any outlived it.
        _ = try? TestSupport.sh("pkill -9 -f '\(root)/exec' || true")
        // ecid last: its holder exits once ecid is gone and the containers' fds with them.
        ecid?.kill()
        ecid = nil
        sandbox.cleanup()
    }
}
