import ECIOCI
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// eci-runc driving the distribution's runc on busybox bundles: user namespaces, idmapped
    /// root filesystems (directory and overlay), rollback, and bad input.
    @Suite struct RuncBundles {
        static let probe = """
            cat /proc/self/uid_map > /out/uid_map; stat -c '%u:%g' /bin/busybox > /out/busybox_owner; \
            id -u > /out/id; echo data > /written; mkdir /madedir; stat -c '%u:%g' /written > /out/written_owner
            """

        @Test func directoryRootfsIsIdmappedAndWritesLandUnshifted() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let bundle = try sandbox.makeBundle("dir", script: Self.probe)
            let result = try sandbox.runtime(["run", "--bundle", bundle, "dir1"])
            #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
            let map = try sandbox.output(bundle, "uid_map").split(whereSeparator: { $0 == " " || $0 == "\t" })
            #expect(map.count == 3 && map[0] == "0" && map[1] != "0" && map[2] == "65536", "uid_map: \(map)")
            #expect(try sandbox.output(bundle, "id") == "0")
            #expect(try sandbox.output(bundle, "busybox_owner") == "0:0", "container root must see its rootfs as root-owned")
            #expect(try sandbox.output(bundle, "written_owner") == "0:0")
            var st = stat()
            #expect(stat(bundle + "/rootfs/written", &st) == 0 && st.st_uid == 0 && st.st_gid == 0, "the write must land as uid 0 on disk")
            #expect(stat(bundle + "/rootfs/madedir", &st) == 0 && st.st_uid == 0)
            // /out was an idmapped bind: the container's files there are root's on disk too.
            #expect(stat(bundle + "/out/uid_map", &st) == 0 && st.st_uid == 0)
            #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
            #expect(try sandbox.recordedContainers().isEmpty)
            #expect(sandbox.containerDirectories().isEmpty)
        }

        @Test func overlayRootfsIsRebuiltOnIdmappedLayers() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let layers = try sandbox.mountEngineOverlay("layers")
            let bundle = try sandbox.makeBundle("ovl", script: Self.probe, rootPath: layers + "/merged")
            let result = try sandbox.runtime(["run", "--bundle", bundle, "ovl1"])
            #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
            #expect(try sandbox.output(bundle, "busybox_owner") == "0:0")
            #expect(try sandbox.output(bundle, "written_owner") == "0:0")
            var st = stat()
            #expect(stat(layers + "/upper/written", &st) == 0 && st.st_uid == 0 && st.st_gid == 0, "the write must land unshifted in the upper dir")
            #expect(stat(layers + "/upper/madedir", &st) == 0 && st.st_uid == 0)
            #expect(stat(layers + "/lower/written", &st) != 0, "the lower layer must not change")
            #expect(stat(layers + "/lower/bin/busybox", &st) == 0 && st.st_uid == 0, "image layers are never chowned")
            #expect(!FileManager.default.fileExists(atPath: layers + "/eci-work"), "ECI's work dir is removed with the container")
            _ = try TestSupport.run(["/bin/umount", layers + "/merged"])
            #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
        }

        @Test func twoContainersAtOnceHaveDisjointRanges() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            var bases: [UInt64] = []
            for name in ["a", "b"] {
                let bundle = try sandbox.makeBundle(name, script: "cat /proc/self/uid_map > /out/uid_map; exec sleep 60")
                let created = try sandbox.runtimeDetached(["create", "--bundle", bundle, name])
                #expect(created.status == 0, "create \(name): \(created.stderr)")
                let state = try sandbox.runtime(["state", name])
                let pid = try JSONValue.parse(state.stdout)["pid"]?.int64Value ?? 0
                let map = try String(contentsOfFile: "/proc/\(pid)/uid_map", encoding: .utf8).split(whereSeparator: { $0 == " " || $0 == "\n" })
                bases.append(UInt64(map[1]) ?? 0)
            }
            #expect(bases.allSatisfy { $0 >= 1_048_576 })
            #expect(bases[0] + 65536 <= bases[1] || bases[1] + 65536 <= bases[0], "ranges overlap: \(bases)")
            #expect(try sandbox.recordedContainers().sorted() == ["a", "b"])
            for name in ["a", "b"] {
                #expect(try sandbox.runtime(["start", name]).status == 0)
                _ = try sandbox.runtime(["kill", name, "KILL"])
            }
            for name in ["a", "b"] {
                var deleted = try sandbox.runtime(["delete", "--force", name])
                for _ in 0..<50 where deleted.status != 0 {
                    usleep(100_000)
                    deleted = try sandbox.runtime(["delete", "--force", name])
                }
                #expect(deleted.status == 0, "delete \(name): \(deleted.stderr)")
            }
            #expect(try sandbox.recordedContainers().isEmpty)
            #expect(sandbox.containerDirectories().isEmpty)
            #expect(try TestSupport.mountPoints() == mountsBefore)
        }

        @Test func runcFailureRollsEverythingBack() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let bundle = try sandbox.makeBundle("bad", script: "true") { config in
                var process = config["process"] as? [String: Any] ?? [:]
                process["args"] = ["/does/not/exist"]
                config["process"] = process
            }
            let mountsBefore = try TestSupport.mountPoints()
            let result = try sandbox.runtimeDetached(["create", "--bundle", bundle, "bad1"])
            #expect(result.status != 0)
            #expect(try sandbox.recordedContainers().isEmpty, "the range must be released")
            #expect(sandbox.containerDirectories().isEmpty)
            #expect(try TestSupport.mountPoints() == mountsBefore)
            // The ID is free again: the same container can be created once fixed.
            let fixed = try sandbox.makeBundle("fixed", script: "true")
            #expect(try sandbox.runtime(["run", "--bundle", fixed, "bad1"]).status == 0)
        }

        @Test func killNineDuringCreateIsRepairedByTheNextInvocation() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            // A createRuntime hook holds runc inside create long enough to kill eci-runc there.
            let bundle = try sandbox.makeBundle("slow", script: "true") { config in
                config["hooks"] = ["createRuntime": [["path": "/bin/sleep", "args": ["sleep", "5"]]]]
            }
            let mountsBefore = try TestSupport.mountPoints()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: sandbox.eciRunc)
            process.arguments = ["--root", sandbox.runcRoot, "create", "--bundle", bundle, "slow1"]
            process.environment = ProcessInfo.processInfo.environment.merging(sandbox.environment) { $1 }
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(1_500_000)
            #expect(try sandbox.recordedContainers() == ["slow1"])
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            usleep(300_000)
            // The engine's next call (delete --force) finds the half-created container and cleans up.
            let deleted = try sandbox.runtime(["delete", "--force", "slow1"])
            #expect(deleted.status == 0, "delete --force: \(deleted.stderr)")
            #expect(try sandbox.recordedContainers().isEmpty)
            #expect(sandbox.containerDirectories().isEmpty)
            #expect(try TestSupport.mountPoints() == mountsBefore)
            let leftovers = try TestSupport.sh("ps -eo args= | grep -F '\(bundle)' | grep -v grep || true").stdout
            #expect(leftovers.isEmpty, "processes of the killed create survived: \(leftovers)")
        }
    }
}
