import ECIOCI
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// Through a real dockerd with eci-runc as its default runtime, as users meet it.
    @Suite struct Docker {
        /// "0 BASE 65536" → BASE, from a container's /proc/self/uid_map.
        static func base(ofMap text: String) -> UInt64? {
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            guard fields.count == 3, fields[0] == "0", fields[2] == "65536" else { return nil }
            return UInt64(fields[1])
        }

        @Test func containersRunInTheirOwnUserNamespace() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let run = try d.docker(["run", "--rm", "--network", "none", d.image, "cat", "/proc/self/uid_map"])
            #expect(run.status == 0, "docker run: \(run.stderr)")
            let base = Self.base(ofMap: run.stdout)
            #expect(base != nil && base != 0, "uid_map must not be the identity: \(run.stdout)")
            let id = try d.docker(["run", "--rm", "--network", "none", d.image, "sh", "-c", "id -u; stat -c %u /bin/busybox; touch /etc/hosts && echo ok"])
            #expect(id.stdout.split(separator: "\n") == ["0", "0", "ok"], "container root sees its files as root's: \(id.stdout) \(id.stderr)")
            // While a container runs, none of ECI's staging mounts exist in the VM's namespace.
            let started = try d.docker(["run", "-d", "--name", "running", "--network", "none", d.image, "sleep", "30"])
            #expect(started.status == 0, "\(started.stderr)")
            let mounts = try TestSupport.mountPoints()
            #expect(!mounts.contains { $0.hasPrefix(d.sandbox.stateDirectory) }, "staging mounts leaked into the VM namespace")
            // `docker exec` joins the running container (runc chdirs to the recorded rootfs path
            // from the VM's namespace first), in the container's user namespace.
            let exec = try d.docker(["exec", "running", "cat", "/proc/self/uid_map"])
            #expect(exec.status == 0 && Self.base(ofMap: exec.stdout) != nil && Self.base(ofMap: exec.stdout) != 0, "docker exec: \(exec.stdout) \(exec.stderr)")
            #expect(try d.docker(["rm", "-f", "running"]).status == 0)
            #expect(try d.sandbox.recordedContainers().isEmpty, "the range must be released when the engine deletes the container")
        }

        @Test func volumesAreSharedAcrossRangesAndStayRootOwned() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            #expect(try d.docker(["volume", "create", "shared"]).status == 0)
            let writer = try d.docker([
                "run", "-d", "--name", "writer", "--network", "none", "-v", "shared:/v", d.image, "sh", "-c",
                "cat /proc/self/uid_map > /v/writer_map; echo one > /v/file; mkdir /v/dir; sleep 30",
            ])
            #expect(writer.status == 0, "\(writer.stderr)")
            usleep(500_000)
            let reader = try d.docker([
                "run", "--rm", "--network", "none", "-v", "shared:/v", d.image, "sh", "-c",
                "cat /proc/self/uid_map; cat /v/file; stat -c %u:%g /v/file /v/dir; echo two >> /v/file; echo new > /v/dir/other",
            ])
            #expect(reader.status == 0, "\(reader.stderr)")
            let lines = reader.stdout.split(separator: "\n").map(String.init)
            let writerMap = try String(contentsOfFile: d.root + "/data/volumes/shared/_data/writer_map", encoding: .utf8)
            #expect(Self.base(ofMap: writerMap) != nil && Self.base(ofMap: lines.first ?? "") != nil)
            #expect(Self.base(ofMap: writerMap) != Self.base(ofMap: lines.first ?? ""), "the two containers must have different ranges")
            #expect(Array(lines.dropFirst()) == ["one", "0:0", "0:0"], "the reader sees the writer's files as root's: \(lines)")
            let data = d.root + "/data/volumes/shared/_data"
            for path in ["file", "dir", "dir/other"] {
                var st = stat()
                #expect(stat(data + "/" + path, &st) == 0 && st.st_uid == 0 && st.st_gid == 0, "\(path) must be owned by 0 on the VM side")
            }
            #expect(try String(contentsOfFile: data + "/file", encoding: .utf8) == "one\ntwo\n")
            _ = try d.docker(["rm", "-f", "writer"])
        }

        @Test func exportAndCommitShowNewFilesOwnedByRoot() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let run = try d.docker(["run", "--name", "maker", "--network", "none", d.image, "sh", "-c", "echo x > /newfile; mkdir /newdir"])
            #expect(run.status == 0, "\(run.stderr)")
            let tarball = d.sandbox.directory + "/export.tar"
            #expect(try d.docker(["export", "-o", tarball, "maker"]).status == 0)
            let listing = try TestSupport.run(["/bin/tar", "--numeric-owner", "-tvf", tarball]).stdout
            let entries = listing.split(separator: "\n").filter { $0.hasSuffix(" newfile") || $0.hasSuffix(" newdir/") }
            #expect(entries.count == 2, "export lists: \(entries)")
            #expect(entries.allSatisfy { $0.contains(" 0/0 ") }, "exported files must be root's: \(entries)")
            #expect(try d.docker(["commit", "maker", "eci-committed:latest"]).status == 0)
            let check = try d.docker(["run", "--rm", "--network", "none", "eci-committed:latest", "stat", "-c", "%u:%g", "/newfile", "/newdir"])
            #expect(check.stdout.split(separator: "\n") == ["0:0", "0:0"], "\(check.stdout) \(check.stderr)")
            let saved = d.sandbox.directory + "/saved.tar"
            #expect(try d.docker(["save", "-o", saved, "eci-committed:latest"]).status == 0)
            // The committed layer itself (a tar inside the saved image) has root-owned entries.
            let layers = try TestSupport.sh("tar -tf '\(saved)' | grep 'layer.tar$'").stdout.split(separator: "\n")
            var found = false
            for layer in layers {
                let inner = try TestSupport.sh("tar -xOf '\(saved)' '\(layer)' | tar --numeric-owner -tvf -").stdout
                if let line = inner.split(separator: "\n").first(where: { $0.hasSuffix(" newfile") }) {
                    found = true
                    #expect(line.contains(" 0/0 "), "committed layer entry: \(line)")
                }
            }
            #expect(found, "the committed layer must contain newfile")
        }

        @Test func twentyParallelRunsGetExclusiveRanges() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let count = 20
            let processes = try (0..<count).map { i in
                try d.dockerProcess(
                    ["run", "--rm", "--network", "none", d.image, "sh", "-c", "cat /proc/self/uid_map; sleep 3"],
                    output: "\(d.sandbox.directory)/par\(i)")
            }
            processes.forEach { $0.waitUntilExit() }
            var bases: [UInt64] = []
            for i in 0..<count {
                let text = try String(contentsOfFile: "\(d.sandbox.directory)/par\(i)", encoding: .utf8)
                guard let base = Self.base(ofMap: text) else {
                    Issue.record("run \(i) failed: \(text)")
                    continue
                }
                bases.append(base)
            }
            #expect(bases.count == count)
            let sorted = bases.sorted()
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                #expect(a + 65536 <= b, "ranges overlap: \(sorted)")
            }
            #expect(try d.sandbox.recordedContainers().isEmpty)
        }
    }
}
