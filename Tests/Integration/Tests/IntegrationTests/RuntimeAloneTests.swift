import ECIIO
import ECIPolicy
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// eci-runc holds alone (issue 10, classes 4 and 7): through the engine's raw socket, with no
    /// API filter in front, whatever the engine sends is judged by what the kernel says it is.
    /// Every attack next to the legitimate neighbour that keeps working.
    @Suite struct RuntimeAlone {
        static let pseudo = "kernel pseudo file system"
        static let restricted = "because it's configured as a restricted host mount"

        func run(_ d: DockerDaemon, _ args: [String], _ command: [String] = ["true"]) throws -> TestSupport.Output {
            try d.docker(["run", "--rm", "--network", "none"] + args + [d.image] + command)
        }

        func expectRefused(_ result: TestSupport.Output, _ messages: [String], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status != 0, "\(what) was not refused", sourceLocation: sourceLocation)
            for message in messages {
                #expect(result.stderr.contains(message), "\(what): expected \"\(message)\" in: \(result.stderr)", sourceLocation: sourceLocation)
            }
        }

        func volume(_ d: DockerDaemon, _ name: String, _ options: [String]) throws {
            let created = try d.docker(["volume", "create"] + options.flatMap { ["-o", $0] } + [name])
            #expect(created.status == 0, "volume \(name): \(created.stderr)")
        }

        func directory(_ path: String) throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        @Test func pseudoFileSystemVolumesAreRefusedTmpfsWorks() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            // Judged by what the kernel says, not by path: without /proc, /sys and /dev in the
            // policy (a sysfs, devtmpfs or cgroup2 volume is the VM's own instance, an alias of
            // those paths) every one is still refused.
            var policy = try RestrictedMountPolicy.parse(Array(try Data(contentsOf: URL(fileURLWithPath: d.sandbox.policyPath))), source: d.sandbox.policyPath)
            policy.restrictedPaths.removeAll { ["/proc", "/sys", "/dev"].contains($0) }
            try Self.write(policy, to: d.sandbox.policyPath)
            let mountsBefore = try TestSupport.mountPoints().filter { !$0.hasPrefix(d.root + "/") }
            for type in ["proc", "sysfs", "mqueue", "devtmpfs", "cgroup2"] {
                try volume(d, "v-\(type)", ["type=\(type)", "device=\(type)"])
                expectRefused(try run(d, ["-v", "v-\(type):/x"]), [Self.pseudo, "(\(type))"], "a \(type) volume")
                expectRefused(try run(d, ["--mount", "type=volume,source=v-\(type),target=/x,readonly"]), [Self.pseudo], "a \(type) volume with --mount, read-only")
            }
            #expect(try d.sandbox.recordedContainers().isEmpty, "a refusal must not leave a range behind")
            #expect(try TestSupport.mountPoints().filter { !$0.hasPrefix(d.root + "/") } == mountsBefore, "a refusal must not leave a mount behind")

            // The neighbours: a tmpfs volume works, idmapped; the engine's own typed mounts of
            // proc, sysfs, mqueue and devpts are not binds and keep working.
            try volume(d, "v-tmpfs", ["type=tmpfs", "device=tmpfs", "o=size=1m"])
            let tmpfs = try run(d, ["-v", "v-tmpfs:/x"], ["sh", "-c", "echo a > /x/f && stat -c %u /x/f"])
            #expect(tmpfs.status == 0 && tmpfs.stdout == "0\n", "a tmpfs volume: \(tmpfs.stdout) \(tmpfs.stderr)")
            let own = try run(d, ["-t"], ["sh", "-c", "cat /proc/self/uid_map >/dev/null && ls /sys/kernel >/dev/null && ls -d /dev/mqueue /dev/pts && tty"])
            #expect(own.status == 0 && own.stdout.contains("/dev/mqueue") && own.stdout.contains("/dev/pts/"), "the engine's own mounts: \(own.stdout) \(own.stderr)")
        }

        @Test func overlaySourcesAreJudgedByTheirLayers() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let scratch = d.sandbox.directory + "/scratch"
            for dir in ["lower", "up1", "work1", "up2", "work2", "up3", "work3", "up4", "work4"] { try directory(scratch + "/" + dir) }
            try "from the lower layer\n".write(toFile: scratch + "/lower/hello", atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: scratch + "/link-to-etc-docker", withDestinationPath: "/etc/docker")
            func overlay(_ name: String, lower: String, _ n: Int) throws {
                try volume(d, name, ["type=overlay", "device=overlay", "o=lowerdir=\(lower),upperdir=\(scratch)/up\(n),workdir=\(scratch)/work\(n)"])
            }
            // A restricted lower layer, by name and through a symlink; the engine's socket directory.
            try overlay("ov-etc", lower: "/etc/docker", 1)
            expectRefused(try run(d, ["-v", "ov-etc:/x"]), ["overlay layer /etc/docker", Self.restricted], "an overlay over /etc/docker")
            try overlay("ov-link", lower: scratch + "/link-to-etc-docker", 2)
            expectRefused(try run(d, ["-v", "ov-link:/x"]), ["overlay layer \(scratch)/link-to-etc-docker", Self.restricted], "an overlay over a symlink to /etc/docker")
            try overlay("ov-api", lower: d.root + "/api", 3)
            expectRefused(try run(d, ["-v", "ov-api:/x"]), ["overlay layer", "engine's socket"], "an overlay over the engine's socket directory")
            #expect(try d.sandbox.recordedContainers().isEmpty)

            // The neighbour: an overlay whose layers are all in a scratch directory.
            try overlay("ov-fine", lower: scratch + "/lower", 4)
            let fine = try run(d, ["-v", "ov-fine:/x"], ["cat", "/x/hello"])
            #expect(fine.status == 0 && fine.stdout == "from the lower layer\n", "an overlay of scratch layers: \(fine.stdout) \(fine.stderr)")
        }

        @Test func recursiveBindsCarryNoPseudoFileSystem() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let withProc = d.sandbox.directory + "/with-proc"
            let withTmpfs = d.sandbox.directory + "/with-tmpfs"
            try directory(withProc + "/deep/p")
            try directory(withTmpfs + "/t")
            #expect(try TestSupport.run(["/bin/mount", "-t", "proc", "proc", withProc + "/deep/p"]).status == 0)
            defer { _ = try? TestSupport.run(["/bin/umount", "-l", withProc + "/deep/p"]) }
            #expect(try TestSupport.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", withTmpfs + "/t"]).status == 0)
            defer { _ = try? TestSupport.run(["/bin/umount", "-l", withTmpfs + "/t"]) }
            try "below\n".write(toFile: withTmpfs + "/t/f", atomically: true, encoding: .utf8)

            expectRefused(try run(d, ["-v", "\(withProc):/x"]), ["mounted below it at \(withProc)/deep/p", "(proc)"], "a directory with a procfs below it")
            expectRefused(try run(d, ["--mount", "type=bind,source=\(withProc)/deep,target=/x"]), [Self.pseudo], "its subdirectory, with --mount")
            expectRefused(try run(d, ["-v", "\(withProc)/deep/p:/x"]), [Self.pseudo], "the procfs itself")
            // The neighbour: a directory with a tmpfs below it; the submount comes along.
            let fine = try run(d, ["-v", "\(withTmpfs):/x"], ["cat", "/x/t/f"])
            #expect(fine.status == 0 && fine.stdout == "below\n", "a directory with a tmpfs below it: \(fine.stdout) \(fine.stderr)")
        }

        @Test func theEnginesSocketsAreRefusedByIdentity() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let apiDirectory = (d.socket as NSString).deletingLastPathComponent
            // Not named by the policy: only what listens on it tells.
            let policy = try String(contentsOfFile: d.sandbox.policyPath, encoding: .utf8)
            #expect(!policy.contains(d.socket) && !policy.contains("\"\(apiDirectory)\""))
            expectRefused(try run(d, ["-v", "\(d.socket):/s"]), ["engine's socket \(d.socket)", "dockerd"], "the engine's socket")
            expectRefused(try run(d, ["-v", "\(apiDirectory):/d"]), ["holds the engine's socket \(d.socket)"], "the engine socket's directory")
            expectRefused(try run(d, ["--mount", "type=bind,source=\(d.socket),target=/s"]), ["engine's socket"], "the engine's socket with --mount")
            try volume(d, "v-api", ["type=none", "o=bind", "device=\(apiDirectory)"])
            expectRefused(try run(d, ["-v", "v-api:/d"]), ["holds the engine's socket"], "a bind volume of the socket's directory")
            // containerd's socket under another name (a hard link): identity, not names.
            let scratch = d.sandbox.directory + "/scratch"
            try directory(scratch)
            let containerd = d.root + "/exec/containerd/containerd.sock"
            #expect(link(containerd, scratch + "/renamed.sock") == 0, "link \(containerd): errno \(errno)")
            expectRefused(try run(d, ["-v", "\(scratch)/renamed.sock:/s"]), ["engine's socket", "containerd"], "containerd's socket, hard-linked elsewhere")
            #expect(unlink(scratch + "/renamed.sock") == 0)
            #expect(try d.sandbox.recordedContainers().isEmpty)

            // The neighbour: a socket this test process listens on, and its directory, bind fine.
            try directory(scratch + "/app")
            let listener = try UnixSocket.listen(at: scratch + "/app/app.sock", mode: 0o666, group: nil)
            defer { listener.close() }
            let socket = try run(d, ["-v", "\(scratch)/app/app.sock:/s"], ["test", "-S", "/s"])
            #expect(socket.status == 0, "an ordinary socket: \(socket.stderr)")
            let dir = try run(d, ["-v", "\(scratch)/app:/d"], ["test", "-S", "/d/app.sock"])
            #expect(dir.status == 0, "an ordinary socket's directory: \(dir.stderr)")

            // The agent's container-facing socket is admitted by its literal name (exactSources)
            // though eci-agent listens on it; its directory, or a hard link to it, is not.
            let agentDirectory = scratch + "/eci-api"
            try directory(agentDirectory)
            let agent = try FakeListener.start(as: "eci-agent", on: agentDirectory + "/docker.sock", in: scratch)
            defer {
                kill(agent.processIdentifier, SIGKILL)
                agent.waitUntilExit()
            }
            var withExact = try RestrictedMountPolicy.parse(Array(try Data(contentsOf: URL(fileURLWithPath: d.sandbox.policyPath))), source: d.sandbox.policyPath)
            withExact.exactSources = [agentDirectory + "/docker.sock"]
            try Self.write(withExact, to: d.sandbox.policyPath)
            // By its literal name the identity check lets it through; what stops this raw-socket
            // create is the admission stamp only the filter writes (engine 20.10 can't carry one).
            let admitted = try run(d, ["-v", "\(agentDirectory)/docker.sock:/var/run/docker.sock"], ["test", "-S", "/var/run/docker.sock"])
            #expect(admitted.status != 0 && admitted.stderr.contains("socket admission") && !admitted.stderr.contains(Self.restricted),
                "the container-facing socket by its literal name passes the identity check and meets the stamp check: \(admitted.stderr)")
            #expect(link(agentDirectory + "/docker.sock", scratch + "/agent-link.sock") == 0)
            expectRefused(try run(d, ["-v", "\(scratch)/agent-link.sock:/s"]), [Self.restricted], "the container-facing socket under another name")
        }

        /// Writes a policy file eci-runc reads at its next call.
        static func write(_ policy: RestrictedMountPolicy, to path: String) throws {
            func list(_ paths: [String]) -> String { "[" + paths.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
            var document = "{\"restrictedPaths\":\(list(policy.restrictedPaths)),\"engineDataRoot\":\"\(policy.engineDataRoot)\""
            if !policy.exactSources.isEmpty { document += ",\"exactSources\":\(list(policy.exactSources))" }
            if let roots = policy.allowedBindRoots { document += ",\"allowedBindRoots\":\(list(roots))" }
            try (document + "}").write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
