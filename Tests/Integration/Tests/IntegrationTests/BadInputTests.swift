import ECIOCI
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// Malformed input gets a one-line error, a non-zero exit, and leaves nothing behind.
    @Suite struct BadInput {
        func expectCleanRefusal(_ sandbox: RuntimeSandbox, _ result: TestSupport.Output, mentions: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(result.status != 0, sourceLocation: sourceLocation)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "expected one line on stderr, got: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(mentions), "stderr should mention \"\(mentions)\": \(result.stderr)", sourceLocation: sourceLocation)
            #expect(try sandbox.recordedContainers().isEmpty, sourceLocation: sourceLocation)
            #expect(sandbox.containerDirectories().isEmpty, sourceLocation: sourceLocation)
        }

        @Test func missingConfig() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let bundle = sandbox.directory + "/empty"
            try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
            try expectCleanRefusal(sandbox, try sandbox.runtime(["create", "--bundle", bundle, "x"]), mentions: "config.json")
        }

        @Test(arguments: ["{", "[]", #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"type":"bind"}]}"#, "\u{0}\u{1}"])
        func malformedConfig(_ text: String) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let bundle = sandbox.directory + "/bad"
            try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
            try text.write(toFile: bundle + "/config.json", atomically: true, encoding: .utf8)
            try expectCleanRefusal(sandbox, try sandbox.runtime(["create", "--bundle", bundle, "x"]), mentions: "config.json")
        }

        @Test func unknownCommandAndFlag() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try expectCleanRefusal(sandbox, try sandbox.runtime(["frobnicate", "x"]), mentions: "no such command: frobnicate")
            try expectCleanRefusal(sandbox, try sandbox.runtime(["--frob", "state", "x"]), mentions: "flag provided but not defined: -frob")
            try expectCleanRefusal(sandbox, try sandbox.runtime(["create", "--frob", "x"]), mentions: "flag provided but not defined: -frob")
        }

        @Test func hostileBundleAndID() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try expectCleanRefusal(sandbox, try sandbox.runtime(["create", "--bundle", "/nonexistent/../../etc/passwd", "x"]), mentions: "bundle")
            let bundle = try sandbox.makeBundle("ok", script: "true")
            try expectCleanRefusal(sandbox, try sandbox.runtime(["create", "--bundle", bundle, "../../escape"]), mentions: "invalid container id")
            let rootEscape = try sandbox.makeBundle("rootesc", script: "true") { config in
                config["root"] = ["path": "../../../../nonexistent-root"]
            }
            try expectCleanRefusal(sandbox, try sandbox.runtime(["create", "--bundle", rootEscape, "y"]), mentions: "root.path")
        }

        @Test func exhaustedPool() throws {
            let sandbox = try RuntimeSandbox(slots: 1)
            defer { sandbox.cleanup() }
            let first = try sandbox.makeBundle("one", script: "exec sleep 60")
            #expect(try sandbox.runtimeDetached(["create", "--bundle", first, "one"]).status == 0)
            let mountsBefore = try TestSupport.mountPoints()
            let second = try sandbox.makeBundle("two", script: "true")
            let result = try sandbox.runtime(["create", "--bundle", second, "two"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("no free ID range"), "\(result.stderr)")
            #expect(try sandbox.recordedContainers() == ["one"])
            #expect(try TestSupport.mountPoints() == mountsBefore)
            #expect(try sandbox.runtime(["delete", "--force", "one"]).status == 0)
            #expect(try sandbox.recordedContainers().isEmpty)
        }

        @Test func rootfsThatCannotBeIdmappedIsRefusedNotUnshifted() throws {
            // A rootfs directory on overlayfs stands in for a kernel/file system without idmapped
            // mounts: ECI must refuse, never run the container on unshifted files.
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let layers = try sandbox.mountEngineOverlay("nomap", rootfsPath: "rootfs")
            defer { _ = try? TestSupport.run(["/bin/umount", "\(layers)/merged"]) }
            let bundle = try sandbox.makeBundle("nomap", script: "true", rootPath: layers + "/merged/rootfs")
            let result = try sandbox.runtime(["run", "--bundle", bundle, "nomap"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("can't idmap the container's root filesystem"), "\(result.stderr)")
            #expect(try sandbox.recordedContainers().isEmpty)
            _ = try TestSupport.run(["/bin/umount", "\(layers)/merged"])
            #expect(try TestSupport.mountPoints() == mountsBefore)
        }

        @Test func jsonLogFormatCarriesTheError() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let log = sandbox.directory + "/log.json"
            let result = try sandbox.runtime(["create", "--bundle", "/nonexistent", "x"], globals: ["--log", log, "--log-format", "json"])
            #expect(result.status != 0)
            let line = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
            let entry = try JSONValue.parse(line)
            #expect(entry["level"]?.stringValue == "error")
            #expect(entry["msg"]?.stringValue?.contains("bundle /nonexistent is not a directory") == true)
            #expect(entry["time"]?.stringValue != nil)
        }
    }
}
