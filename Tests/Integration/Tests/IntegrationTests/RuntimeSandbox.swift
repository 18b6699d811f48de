import ECICore
import ECIOCI
import ECITestSupport
import Foundation

/// A private world for eci-runc: its own state directory, subordinate-ID files and runc root
/// under one temporary directory, removed (with everything mounted below it) at the end.
struct RuntimeSandbox {
    let directory: String
    let runcRoot: String
    let stateDirectory: String
    let eciRunc: String

    init(slots: Int = 64) throws {
        try TestSupport.requireRoot()
        directory = try TestSupport.temporaryDirectory("runtime")
        runcRoot = directory + "/runc-root"
        stateDirectory = directory + "/state"
        eciRunc = try TestSupport.binary("eci-runc")
        let line = "eci:1048576:\(slots * 65536)\n"
        try line.write(toFile: directory + "/subuid", atomically: true, encoding: .utf8)
        try line.write(toFile: directory + "/subgid", atomically: true, encoding: .utf8)
    }

    /// Where a test may write a restricted-mount policy; used when the file exists.
    var policyPath: String { directory + "/policy.json" }

    var environment: [String: String] {
        var env = ["ECI_STATE_DIR": stateDirectory, "ECI_SUBUID_FILE": directory + "/subuid", "ECI_SUBGID_FILE": directory + "/subgid", "ECI_RUNC": "/usr/sbin/runc"]
        if FileManager.default.fileExists(atPath: policyPath) { env["ECI_POLICY_FILE"] = policyPath }
        return env
    }

    /// eci-runc with the sandbox's root and the given arguments, output captured.
    @discardableResult
    func runtime(_ args: [String], globals: [String] = [], directory: String? = nil) throws -> TestSupport.Output {
        try TestSupport.run([eciRunc, "--root", runcRoot] + globals + args, environment: environment, directory: directory)
    }

    /// eci-runc for commands that leave a container holding stdio (create).
    @discardableResult
    func runtimeDetached(_ args: [String], globals: [String] = []) throws -> TestSupport.Output {
        try TestSupport.runDetached([eciRunc, "--root", runcRoot] + globals + args, environment: environment)
    }

    /// A bundle with a busybox rootfs directory and a config running `script` with /out bound
    /// to `bundle/out` (the test reads results there).
    func makeBundle(_ name: String, script: String, rootPath: String? = nil, edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let bundle = directory + "/" + name
        try FileManager.default.createDirectory(atPath: bundle + "/out", withIntermediateDirectories: true)
        if rootPath == nil { try TestSupport.makeBusyboxRootfs(at: bundle + "/rootfs") }
        try TestSupport.run(["/usr/sbin/runc", "spec", "--bundle", bundle])
        let data = try Data(contentsOf: URL(fileURLWithPath: bundle + "/config.json"))
        guard var config = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            var process = config["process"] as? [String: Any], var root = config["root"] as? [String: Any],
            var mounts = config["mounts"] as? [[String: Any]]
        else { throw TestFailure("runc spec wrote an unexpected config.json") }
        process["terminal"] = false
        process["args"] = ["/bin/sh", "-c", script]
        root["path"] = rootPath ?? "rootfs"
        root["readonly"] = false
        mounts.append(["destination": "/out", "type": "bind", "source": bundle + "/out", "options": ["rbind", "rw"]])
        config["process"] = process
        config["root"] = root
        config["mounts"] = mounts
        edit(&config)
        let out = try JSONSerialization.data(withJSONObject: config)
        try out.write(to: URL(fileURLWithPath: bundle + "/config.json"))
        return bundle
    }

    /// Mounts an overlay at `name/merged` (lower, upper, work beside it) as an engine would,
    /// with a busybox root filesystem at `rootfsPath` inside the lower layer. Returns the layer
    /// directory; the test unmounts `merged` (cleanup does it too).
    func mountEngineOverlay(_ name: String, rootfsPath: String = "") throws -> String {
        let layers = directory + "/" + name
        for dir in ["lower/" + rootfsPath, "upper", "work", "merged"] {
            try FileManager.default.createDirectory(atPath: "\(layers)/\(dir)", withIntermediateDirectories: true)
        }
        try TestSupport.makeBusyboxRootfs(at: join(layers + "/lower", rootfsPath))
        let mounted = try TestSupport.run([
            "/bin/mount", "-t", "overlay", "overlay", "-o", "lowerdir=\(layers)/lower,upperdir=\(layers)/upper,workdir=\(layers)/work",
            "\(layers)/merged",
        ])
        guard mounted.status == 0 else { throw TestFailure("mount overlay: \(mounted.stderr)") }
        return layers
    }

    /// Reads a result file the container wrote to /out.
    func output(_ bundle: String, _ name: String) throws -> String {
        try String(contentsOfFile: bundle + "/out/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// ECI's recorded ranges (the state file), as container IDs.
    func recordedContainers() throws -> [String] {
        guard let data = FileManager.default.contents(atPath: stateDirectory + "/ranges.json") else { return [] }
        let table = try JSONValue.parse(Array(data))
        return (table["records"]?.arrayValue ?? []).compactMap { $0["key"]?["id"]?.stringValue }
    }

    /// ECI's per-container directories left in the state directory.
    func containerDirectories() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory + "/containers")) ?? []
    }

    /// Unmounts anything left below the sandbox and removes it.
    func cleanup() {
        if let mounts = try? TestSupport.mountPoints() {
            for mount in mounts.reversed() where mount.hasPrefix(directory + "/") {
                _ = try? TestSupport.run(["/bin/umount", "-l", mount])
            }
        }
        _ = try? TestSupport.run(["/bin/rm", "-rf", directory])
    }
}
