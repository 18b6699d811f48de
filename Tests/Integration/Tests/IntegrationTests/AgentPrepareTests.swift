import ECICore
import ECIOCI
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// `eci-agent prepare` for real: the kernel probes run in their own process on this kernel,
    /// and a data root whose file system can't be idmapped keeps the engine unconfigured.
    @Suite struct AgentPrepare {
        func prepare(_ dir: String, dataRoot: String) throws -> TestSupport.Output {
            try TestSupport.run([
                try TestSupport.binary("eci-agent"), "prepare", "--data-root", dataRoot, "--state-dir", dir + "/run", "--persistent-dir", dir + "/lib",
                "--base-config", dir + "/daemon.json", "--image-settings", dir + "/admin-settings.json", "--host-settings", dir + "/fw_cfg/raw",
            ])
        }

        @Test func probesPassHereAndTheEngineIsConfigured() throws {
            try TestSupport.requireRoot()
            let dir = try TestSupport.temporaryDirectory("agent-prepare")
            defer { try? FileSystem.removeTree(dir) }
            try FileSystem.write(dir + "/daemon.json", Array(#"{"log-level":"warn","hosts":["tcp://0.0.0.0:2375"]}"#.utf8), mode: 0o644)
            try FileSystem.write(dir + "/admin-settings.json", Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["docker:cli"]}}}}"#.utf8), mode: 0o644)
            let before = try TestSupport.mountPoints()
            let result = try prepare(dir, dataRoot: dir + "/data")
            #expect(result.status == 0, "prepare: \(result.stdout) \(result.stderr)")
            for probe in ["kernel-version", "user-namespaces", "idmapped-mount", "overlay-over-idmapped-layers", "seccomp-user-notification", "fuse"] {
                #expect(result.stdout.contains("probe \(probe): ok"), "\(probe): \(result.stdout)")
            }
            let config = try JSONValue.parse(try FileSystem.read(dir + "/run/engine/daemon.json"))
            #expect(config["hosts"] == .array([.string("unix:///run/eci/engine/docker.sock")]), "no TCP listener survives")
            #expect(config["log-level"]?.stringValue == "warn")
            let report = try JSONValue.parse(try FileSystem.read(dir + "/run/prepare.json"))
            #expect(report["ok"]?.boolValue == true && report["settingsOrigin"]?.stringValue == "image")
            #expect(FileSystem.exists(dir + "/run/socket-admission.key") && FileSystem.exists(dir + "/lib/socket-admission.master"), "prepare keys the socket admissions")
            // The probes' scratch mounts lived in the probe process's namespace only.
            #expect(try TestSupport.mountPoints() == before)
            #expect(try FileSystem.listDirectory(dir + "/data").isEmpty, "the probe's scratch directory is removed")
        }

        @Test func aDataRootThatCannotBeIdmappedKeepsTheEngineStopped() throws {
            try TestSupport.requireRoot()
            let dir = try TestSupport.temporaryDirectory("agent-prepare-ramfs")
            let ramfs = dir + "/ramfs"
            try FileSystem.makeDirectories(ramfs, mode: 0o755)
            // ramfs has no idmapped-mount support: exactly the VM a misconfigured disk would give.
            let mounted = try TestSupport.run(["/bin/mount", "-t", "ramfs", "none", ramfs])
            try #require(mounted.status == 0, "mount ramfs: \(mounted.stderr)")
            defer {
                _ = try? TestSupport.run(["/bin/umount", ramfs])
                try? FileSystem.removeTree(dir)
            }
            let result = try prepare(dir, dataRoot: ramfs + "/docker")
            #expect(result.status != 0)
            #expect(result.stdout.contains("probe idmapped-mount: FAILED"), "\(result.stdout)")
            #expect(result.stdout.contains("the engine stays stopped: kernel probe idmapped-mount failed"), "\(result.stdout)")
            #expect(!FileSystem.exists(dir + "/run/engine/daemon.json"))
            let report = try JSONValue.parse(try FileSystem.read(dir + "/run/prepare.json"))
            #expect(report["ok"]?.boolValue == false)
        }
    }
}
