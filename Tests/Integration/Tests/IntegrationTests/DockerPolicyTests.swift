import ECIOCI
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// ECI's isolation policy through a real dockerd: every refusal next to the allowed neighbour.
    @Suite struct DockerPolicy {
        static let restricted = "because it's configured as a restricted host mount"

        /// Runs `docker run --rm --network none ARGS IMAGE COMMAND` and returns the output.
        func run(_ d: DockerDaemon, _ args: [String], _ command: [String] = ["true"]) throws -> TestSupport.Output {
            try d.docker(["run", "--rm", "--network", "none"] + args + [d.image] + command)
        }

        func expectRefused(_ result: TestSupport.Output, _ message: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status != 0, "\(what) was not refused", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(message), "\(what): expected \"\(message)\" in: \(result.stderr)", sourceLocation: sourceLocation)
        }

        @Test func hostNamespacesAreRefusedAndOwnOnesWork() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            // dockerd makes its own host-network sandbox mount lazily; only ECI's matter here.
            func mounts() throws -> [String] { try TestSupport.mountPoints().filter { !$0.hasPrefix(d.root + "/exec/") } }
            let mountsBefore = try mounts()
            expectRefused(try d.docker(["run", "--rm", "--pid=host", d.image, "true"]), "containers can't share namespaces [pid] with the host", "--pid=host")
            expectRefused(try d.docker(["run", "--rm", "--network=host", d.image, "true"]), "containers can't share a network namespace with the host", "--network=host")
            expectRefused(try d.docker(["run", "--rm", "--network", "none", "--ipc=host", d.image, "true"]), "containers can't share namespaces [ipc]", "--ipc=host")
            expectRefused(try d.docker(["run", "--rm", "--network", "none", "--uts=host", d.image, "true"]), "containers can't share namespaces [uts]", "--uts=host")
            #expect(try d.sandbox.recordedContainers().isEmpty, "a refusal must not leave a range behind")
            #expect(try mounts() == mountsBefore)

            // The neighbours: own namespaces work; --userns=host and --cgroupns=host are overridden.
            let own = try run(d, ["--userns=host", "--cgroupns=host"], ["sh", "-c", "cat /proc/self/uid_map; readlink /proc/self/ns/cgroup"])
            #expect(own.status == 0, "\(own.stderr)")
            let lines = own.stdout.split(separator: "\n").map(String.init)
            #expect(Docker.base(ofMap: lines.first ?? "") != nil, "--userns=host must still get its own user namespace: \(own.stdout)")
            let hostCgroup = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/cgroup")
            #expect(lines.count == 2 && lines[1] != hostCgroup, "the cgroup namespace is always the container's own")
        }

        @Test func restrictedMountsAreRefusedThroughEveryPath() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let shared = d.sandbox.directory + "/shared"
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: d.sandbox.directory + "/link-to-engine", withDestinationPath: d.dataRoot)
            let mountsBefore = try TestSupport.mountPoints()
            let refused: [(String, [String])] = [
                ("the engine socket", ["-v", "\(d.socket):/docker.sock"]),
                ("the engine's data root", ["-v", "\(d.dataRoot):/x"]),
                ("another container's directory", ["-v", "\(d.dataRoot)/containers:/x"]),
                ("the VM's root", ["-v", "/:/host"]),
                ("a parent of the engine's root", ["-v", "\(d.sandbox.directory):/x"]),
                ("a symlink to the engine", ["-v", "\(d.sandbox.directory)/link-to-engine:/x"]),
                ("a .. path", ["-v", "\(shared)/../docker/data:/x"]),
                ("a /proc/self/root path", ["-v", "/proc/self/root\(d.dataRoot):/x"]),
                ("--mount", ["--mount", "type=bind,source=\(d.dataRoot),target=/x"]),
                ("ECI's own state", ["-v", "\(d.sandbox.stateDirectory):/x"]),
                ("a VM disk node", ["-v", "/dev/vda:/disk"]),
                ("the kernel's modules", ["-v", "/lib/modules:/x"]),
            ]
            for (what, args) in refused {
                expectRefused(try run(d, args), Self.restricted, what)
            }
            // A volume whose local driver binds a restricted path (the 4.31 volume bypass).
            #expect(try d.docker(["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=\(d.root)/exec", "evil"]).status == 0)
            expectRefused(try run(d, ["-v", "evil:/x"]), Self.restricted, "a bind volume of the engine's exec root")
            #expect(try d.sandbox.recordedContainers().isEmpty, "a refusal must not leave a range behind")
            #expect(try TestSupport.mountPoints() == mountsBefore, "a refusal must not leave a mount behind")

            // The neighbours stay mountable, idmapped.
            let bind = try run(d, ["-v", "\(shared):/x"], ["sh", "-c", "echo a > /x/from-bind && stat -c %u /x/from-bind"])
            #expect(bind.status == 0 && bind.stdout == "0\n", "a normal bind mount: \(bind.stdout) \(bind.stderr)")
            let viaMount = try run(d, ["--mount", "type=bind,source=\(shared),target=/x"], ["cat", "/x/from-bind"])
            #expect(viaMount.stdout == "a\n", "\(viaMount.stderr)")
            #expect(try d.docker(["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=\(shared)", "fine"]).status == 0)
            let volume = try run(d, ["-v", "fine:/x"], ["cat", "/x/from-bind"])
            #expect(volume.stdout == "a\n", "a bind volume of an allowed path: \(volume.stderr)")
            var st = stat()
            #expect(stat(shared + "/from-bind", &st) == 0 && st.st_uid == 0)
        }

        @Test func vmDevicesAreRefusedFuseIsNot() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            expectRefused(try run(d, ["--device", "/dev/vda"]), "can't give the container the device /dev/vda", "--device /dev/vda")
            #expect(try d.sandbox.recordedContainers().isEmpty)
            let fuse = try run(d, ["--device", "/dev/fuse"], ["ls", "/dev/fuse"])
            #expect(fuse.status == 0, "--device /dev/fuse: \(fuse.stderr)")
        }

        @Test func privilegedContainersWorkButCannotEscape() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let readonly = d.sandbox.directory + "/readonly"
            try FileManager.default.createDirectory(atPath: readonly, withIntermediateDirectories: true)

            // Legitimate privileged work succeeds.
            let work = try run(d, ["--privileged"], [
                "sh", "-c",
                "mkdir -p /mnt/t && mount -t tmpfs tmpfs /mnt/t && touch /mnt/t/a && mount -o remount,ro,bind /mnt/t && ! touch /mnt/t/b 2>/dev/null"
                    + " && mount -o remount,rw,bind /mnt/t && touch /mnt/t/c && echo mounts-ok"
                    + " && unshare -U -r id -u"
                    + " && echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward"
                    + " && ls /dev",
            ])
            #expect(work.status == 0, "privileged work failed: \(work.stdout) \(work.stderr)")
            let lines = work.stdout.split(separator: "\n").map(String.init)
            #expect(lines.prefix(3) == ["mounts-ok", "0", "1"], "mount/remount, nested user namespace, own sysctl: \(lines)")
            #expect(!lines.contains("vda"), "a VM disk must not appear in a privileged container's /dev: \(lines)")

            // Every known escape is blocked.
            let attempts = try run(d, ["--privileged", "-v", "\(readonly):/ro:ro"], ["/bin/escape-attempts", "/ro"])
            print("escape attempts under ECI (--privileged):\n\(attempts.stdout)\(attempts.stderr)")
            #expect(attempts.stdout.contains("summary:"), "the escape program did not run: \(attempts.stderr)")
            #expect(!attempts.stdout.contains("ESCAPED"), "an escape got through under ECI")
            #expect(attempts.status == 0)

            // The same attempts under plain runc, to show the test bites.
            let plain = try d.docker(["run", "--rm", "--network", "none", "--runtime", "runc", "--privileged", "-v", "\(readonly):/ro:ro", d.image, "/bin/escape-attempts", "/ro"])
            if plain.stdout.contains("summary:") {
                print("the same attempts under plain runc (--privileged):\n\(plain.stdout)")
                #expect(plain.stdout.contains("ESCAPED"), "plain runc --privileged should let some attempts through; the test would not bite")
            } else {
                print("NOTE: plain runc --privileged cannot start a container on this machine, so the comparison is not shown: \(plain.stderr)")
                // Some hosts (the development machine among them) lack CAP_SYS_RESOURCE in
                // their bounding set, and plain runc --privileged asks for it.
                let caps = try d.docker(["run", "--rm", "--network", "none", "--runtime", "runc", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                                         "--security-opt", "apparmor=unconfined", "-v", "\(readonly):/ro:ro", d.image, "/bin/escape-attempts", "/ro"])
                print("the same attempts under plain runc with all capabilities, unconfined:\n\(caps.stdout)\(caps.stderr)")
                #expect(caps.stdout.contains("ESCAPED"), "plain runc with all capabilities should let some attempts through")
            }
        }
    }
}
