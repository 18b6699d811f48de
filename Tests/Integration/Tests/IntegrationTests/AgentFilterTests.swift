import ECIAgent
import ECICore
import ECIPolicy
import ECITestSupport
import Foundation
import Logging
import Testing

extension Integration {
    /// The agent's engine API filter (`AgentFilters`, wired as `eci-agent serve` wires it) in
    /// front of a real dockerd, driven by the real docker CLI: every rule shown both ways, and
    /// refusals shown to happen before the engine created anything.
    @Suite(.serialized) struct AgentFilter {
        static let restricted = "because it's configured as a restricted host mount"
        static let commandBlocked = "is blocked; if you wish to allow it, configure the docker socket command list in the admin settings"

        /// The two filtered sockets in the daemon's sandbox, with the daemon's restricted-mount
        /// policy (which also restricts the user socket for the runtime, as the VM's does).
        final class Filter {
            let daemon: DockerDaemon
            let userSocket: String
            let containerSocket: String
            let restricted: RestrictedMountPolicy
            private(set) var proxies: [ECIAgent.APIProxy] = []

            init(_ d: DockerDaemon, settings: AdminSettings = .defaults) throws {
                daemon = d
                userSocket = d.sandbox.directory + "/run/docker.sock"
                containerSocket = d.sandbox.directory + "/eci-api/docker.sock"
                try FileManager.default.createDirectory(atPath: d.sandbox.directory + "/run", withIntermediateDirectories: true)
                var policy = try RestrictedMountPolicy.parse(Array(try Data(contentsOf: URL(fileURLWithPath: d.sandbox.policyPath))), source: d.sandbox.policyPath)
                policy.restrictedPaths.append(userSocket)
                // eci-runc reads its policy file on every call: the runtime now refuses the user
                // socket too (as it refuses /run/docker.sock in the VM).
                let document = "{\"restrictedPaths\":[" + policy.restrictedPaths.map { "\"\($0)\"" }.joined(separator: ",") + "],\"engineDataRoot\":\"\(policy.engineDataRoot)\"}"
                try document.write(toFile: d.sandbox.policyPath, atomically: true, encoding: .utf8)
                restricted = policy
                try start(settings)
            }

            var sockets: EngineAPIPolicy.Sockets {
                EngineAPIPolicy.Sockets(filtered: [userSocket], forContainers: containerSocket, raw: daemon.socket)
            }

            /// (Re)starts both filters with `settings`.
            func start(_ settings: AdminSettings) throws {
                stop()
                var logger = Logger(label: "eci.test.agent-filter")
                logger.logLevel = .warning
                proxies = try AgentFilters.start(sockets: sockets, settings: settings, restricted: restricted, logger: logger)
            }

            func stop() {
                proxies.forEach { $0.stop() }
                proxies = []
            }

            /// The docker CLI through the user socket (or `socket`), legacy builder.
            @discardableResult
            func docker(_ args: [String], socket: String? = nil) throws -> TestSupport.Output {
                try TestSupport.run(
                    ["/usr/bin/timeout", "120", "/usr/bin/docker"] + args,
                    environment: ["DOCKER_HOST": "unix://" + (socket ?? userSocket), "DOCKER_BUILDKIT": "0"])
            }

            /// Stops the filters; checks their sockets are gone.
            func stopAndCheck() {
                let paths = proxies.map(\.configuration.listenPath)
                stop()
                for path in paths { #expect(!FileManager.default.fileExists(atPath: path), "stop() removes \(path)") }
            }
        }

        /// A refusal by the filter: the CLI shows ECI's message and the engine created nothing.
        static func expectRefused(_ result: TestSupport.Output, _ message: String, _ what: String, _ d: DockerDaemon, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(result.status != 0, "\(what) was not refused", sourceLocation: sourceLocation)
            #expect(result.stderr.contains("Error response from daemon: ") && result.stderr.contains(message),
                    "\(what): expected \"\(message)\" in: \(result.stderr)", sourceLocation: sourceLocation)
            let created = try d.docker(["ps", "-aq"]).stdout
            #expect(created.isEmpty, "\(what): refused by the filter, so the engine must have created nothing: \(created)", sourceLocation: sourceLocation)
        }

        /// A refusal by the filter while `left` containers exist.
        static func expectRefusedWith(_ result: TestSupport.Output, _ message: String, _ what: String, _ d: DockerDaemon, left: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(result.status != 0, "\(what) was not refused", sourceLocation: sourceLocation)
            #expect(result.stderr.contains("Error response from daemon: ") && result.stderr.contains(message),
                    "\(what): expected \"\(message)\" in: \(result.stderr)", sourceLocation: sourceLocation)
            let created = try d.docker(["ps", "-aq"]).stdout.split(separator: "\n")
            #expect(created.count == left, "\(what): refused by the filter, so the engine must have created nothing: \(created)", sourceLocation: sourceLocation)
        }

        /// Mounts of this process, less the host-network sandbox dockerd makes lazily.
        static func mounts(_ d: DockerDaemon) throws -> [String] {
            try TestSupport.mountPoints().filter { !$0.hasPrefix(d.root + "/exec/") }
        }

        /// Stops the daemon and checks it went: its process gone, nothing of it mounted.
        static func stopAndCheck(_ d: DockerDaemon) {
            let pid = (try? String(contentsOfFile: d.root + "/dockerd.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            d.stop()
            #expect(pid != nil, "dockerd wrote no pid file")
            if let pid { #expect(kill(pid, 0) != 0 && errno == ESRCH, "dockerd (\(pid)) still runs after stop()") }
            #expect(((try? TestSupport.mountPoints()) ?? []).allSatisfy { !$0.hasPrefix(d.sandbox.directory + "/") }, "a mount below the sandbox outlived the daemon")
            #expect(!FileManager.default.fileExists(atPath: d.sandbox.directory))
        }

        @Test func runtimeAndNamespacesAreForced() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let mountsBefore = try Self.mounts(d)
            let f = try Filter(d)

            // --runtime=runc: through the filter, still ECI's user namespace; straight to the
            // engine, plain runc's identity map (the contrast shows the filter forced it).
            let filtered = try f.docker(["run", "--rm", "--runtime=runc", "--network", "none", d.image, "cat", "/proc/self/uid_map"])
            #expect(filtered.status == 0, "\(filtered.stderr)")
            let base = Docker.base(ofMap: filtered.stdout)
            #expect(base != nil && base != 0, "--runtime=runc through the filter must run isolated: \(filtered.stdout)")
            let raw = try d.docker(["run", "--rm", "--runtime=runc", "--network", "none", d.image, "cat", "/proc/self/uid_map"])
            #expect(raw.status == 0, "\(raw.stderr)")
            #expect(raw.stdout.split(whereSeparator: \.isWhitespace) == ["0", "0", "4294967295"], "plain runc, unfiltered: \(raw.stdout)")
            // The stored configuration says so too.
            #expect(try f.docker(["create", "--name", "forced", "--runtime=runc", "--network", "none", d.image, "true"]).status == 0)
            #expect(try f.docker(["inspect", "-f", "{{.HostConfig.Runtime}}", "forced"]).stdout == "eci\n")
            #expect(try f.docker(["rm", "forced"]).status == 0)

            // Host namespaces: refused at create, in the runtime's words.
            try Self.expectRefused(try f.docker(["run", "--pid=host", "--network", "none", d.image, "true"]), "containers can't share namespaces [pid] with the host", "--pid=host", d)
            try Self.expectRefused(try f.docker(["run", "--network=host", d.image, "true"]), "containers can't share a network namespace with the host", "--network=host", d)
            try Self.expectRefused(try f.docker(["run", "--network", "none", "--ipc=host", d.image, "true"]), "containers can't share namespaces [ipc] with the host", "--ipc=host", d)
            try Self.expectRefused(try f.docker(["run", "--network", "none", "--uts=host", d.image, "true"]), "containers can't share namespaces [uts] with the host", "--uts=host", d)
            let none = try f.docker(["run", "--rm", "--network", "none", d.image, "sh", "-c", "ls /sys/class/net"])
            #expect(none.status == 0 && none.stdout == "lo\n", "--network none: \(none.stdout) \(none.stderr)")
            #expect(try d.sandbox.recordedContainers().isEmpty, "no container's range outlives it")

            f.stopAndCheck()
            #expect(try Self.mounts(d) == mountsBefore, "a mount was left behind")
            Self.stopAndCheck(d)
        }

        @Test func restrictedMountsBuildsAndPluginsAreRefused() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let mountsBefore = try Self.mounts(d)
            let f = try Filter(d)
            let shared = d.sandbox.directory + "/shared"
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
            func run(_ args: [String], _ command: [String] = ["true"]) throws -> TestSupport.Output {
                try f.docker(["run", "--network", "none"] + args + [d.image] + command)
            }

            let refused: [(String, [String])] = [
                ("-v of the engine's data root", ["-v", "\(d.dataRoot):/x"]),
                ("-v of the engine's raw socket", ["-v", "\(d.socket):/docker.sock"]),
                ("-v of a directory holding the filtered sockets", ["-v", "\(d.sandbox.directory)/eci-api:/x"]),
                ("-v of ECI's state", ["-v", "\(d.sandbox.stateDirectory):/x"]),
                ("-v of a .. path", ["-v", "\(shared)/../docker/data:/x"]),
                ("-v of /", ["-v", "/:/host"]),
                ("--mount type=bind", ["--mount", "type=bind,source=\(d.dataRoot),target=/x"]),
                ("--mount type=bind of /proc", ["--mount", "type=bind,source=/proc,target=/x"]),
                ("--mount type=volume with a bind volume-opt", [
                    "--mount", "type=volume,source=inline,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=\(d.root)/exec",
                ]),
            ]
            for (what, args) in refused {
                try Self.expectRefused(try run(args), Self.restricted, what, d)
            }
            // docker volume create with the local driver binding a restricted path.
            let volume = try f.docker(["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=\(d.dataRoot)", "evil"])
            #expect(volume.status != 0 && volume.stderr.contains(Self.restricted), "volume create of a restricted bind: \(volume.stderr)")
            #expect(try d.docker(["volume", "ls", "-q"]).stdout.isEmpty, "the refused volume must not exist")
            #expect(try d.sandbox.recordedContainers().isEmpty)

            // The neighbours work: an ordinary host directory by -v, --mount and a bind volume.
            let bind = try run(["--rm", "-v", "\(shared):/x"], ["sh", "-c", "echo a > /x/from-bind && cat /x/from-bind"])
            #expect(bind.status == 0 && bind.stdout == "a\n", "-v of an ordinary directory: \(bind.stdout) \(bind.stderr)")
            let viaMount = try run(["--rm", "--mount", "type=bind,source=\(shared),target=/x"], ["cat", "/x/from-bind"])
            #expect(viaMount.stdout == "a\n", "--mount type=bind: \(viaMount.stderr)")
            #expect(try f.docker(["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=\(shared)", "fine"]).status == 0)
            let fine = try run(["--rm", "-v", "fine:/x"], ["cat", "/x/from-bind"])
            #expect(fine.stdout == "a\n", "a bind volume of an ordinary directory: \(fine.stderr)")
            let inline = try run(["--rm", "--mount", "type=volume,source=inline-fine,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=\(shared)"], ["cat", "/x/from-bind"])
            #expect(inline.stdout == "a\n", "--mount type=volume with a bind volume-opt of an ordinary directory: \(inline.stderr)")
            #expect(try f.docker(["volume", "rm", "fine", "inline-fine"]).status == 0)

            // Builds (legacy builder): --network=host refused before the context is read; a normal build works.
            let context = d.sandbox.directory + "/build"
            try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
            try "FROM \(d.image)\nRUN echo built > /built.txt\n".write(toFile: context + "/Dockerfile", atomically: true, encoding: .utf8)
            let hostBuild = try f.docker(["build", "--network=host", "-t", "eci-host-built", context])
            #expect(hostBuild.status != 0 && hostBuild.stderr.contains("enhanced container isolation: docker build with --network=host is not allowed"), "build --network=host: \(hostBuild.stdout) \(hostBuild.stderr)")
            #expect(try d.docker(["image", "inspect", "eci-host-built"]).status != 0, "the refused build must not produce an image")
            let build = try f.docker(["build", "--network=none", "-t", "eci-built", context])
            #expect(build.status == 0, "a normal build: \(build.stdout.suffix(800)) \(build.stderr)")
            #expect(try f.docker(["run", "--rm", "--network", "none", "eci-built", "cat", "/built.txt"]).stdout == "built\n")

            // Plugins: the CLI's create, and a raw pull (what `docker plugin install` sends).
            let plugin = d.sandbox.directory + "/plugin"
            try FileManager.default.createDirectory(atPath: plugin + "/rootfs", withIntermediateDirectories: true)
            try "{\"Description\":\"x\",\"Documentation\":\"x\",\"Interface\":{\"Types\":[\"docker.volumedriver/1.0\"],\"Socket\":\"x.sock\"},\"Entrypoint\":[\"/x\"],\"Network\":{\"Type\":\"host\"}}"
                .write(toFile: plugin + "/config.json", atomically: true, encoding: .utf8)
            let pluginMessage = "enhanced container isolation: engine plugins can't be installed or changed"
            let created = try f.docker(["plugin", "create", "eci-evil-plugin", plugin])
            #expect(created.status != 0 && created.stderr.contains(pluginMessage), "plugin create: \(created.stderr)")
            let body = "[]"
            let pull = try Integration.APIProxy.exchange(f.userSocket, Array((
                "POST /v1.41/plugins/pull?remote=vieux/sshfs&name=sshfs HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body).utf8))
            #expect(pull.hasPrefix("HTTP/1.1 403") && pull.contains(pluginMessage), "POST /plugins/pull: \(pull)")
            #expect(try d.docker(["plugin", "ls", "-q"]).stdout.isEmpty, "no plugin was installed")

            f.stopAndCheck()
            #expect(try Self.mounts(d) == mountsBefore, "a mount was left behind")
            Self.stopAndCheck(d)
        }

        @Test func socketMountsAreAdmittedByImageIdentityAndTheCommandListAppliesToContainers() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let mountsBefore = try Self.mounts(d)
            // A small static client for the engine API from inside a busybox container.
            let tools = d.sandbox.directory + "/tools"
            try FileManager.default.createDirectory(atPath: tools, withIntermediateDirectories: true)
            let built = try TestSupport.run(["/usr/bin/cc", "-static", "-O2", "-o", tools + "/unix-http", TestSupport.repositoryRoot + "/Tests/Fixtures/unix-http.c"])
            try #require(built.status == 0, "building unix-http: \(built.stderr)")

            // The admitted image (by ID) and a disallowed one: another import, same layer, own ID.
            let allowedID = try d.docker(["image", "inspect", "-f", "{{.Id}}", d.image]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try d.docker(["tag", d.image, "eci-allowed:v1"]).status == 0)
            #expect(try d.docker(["import", "--message", "not the allowed image", d.sandbox.directory + "/image.tar", "eci-other:latest"]).status == 0)
            let otherID = try d.docker(["image", "inspect", "-f", "{{.Id}}", "eci-other:latest"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(allowedID.hasPrefix("sha256:") && otherID.hasPrefix("sha256:") && otherID != allowedID)

            func settings(_ images: [String]) throws -> AdminSettings {
                var s = AdminSettings.defaults
                s.socketMountImages = try images.map { try #require(ImageReference($0)) }
                s.commandList = CommandList(type: .deny, patterns: ["image*", "push"])
                return s
            }
            let f = try Filter(d, settings: try settings(["eci-allowed@" + allowedID]))
            let socketMount = ["-v", "\(f.userSocket):/var/run/docker.sock"]

            // Not on the list: refused with ECI's message, whichever filtered socket is named.
            let denied = "enhanced container isolation: docker socket mount denied for container with image \"docker.io/library/eci-other\"; image is not in the allowed list; if you wish to allow it, configure the docker socket image list in the admin settings"
            try Self.expectRefused(try f.docker(["run", "--network", "none"] + socketMount + ["eci-other", "true"]), denied, "-v of the user socket, disallowed image", d)
            try Self.expectRefused(try f.docker(["run", "--network", "none", "-v", "\(f.containerSocket):/s.sock", "eci-other", "true"]), denied, "-v of the container socket, disallowed image", d)
            try Self.expectRefused(try f.docker(["run", "--network", "none", "--mount", "type=bind,source=\(f.userSocket),target=/s.sock", "eci-other", "true"]), denied, "--mount of the user socket, disallowed image", d)
            // The engine's raw socket is never mountable, admitted image or not.
            try Self.expectRefused(try f.docker(["run", "--network", "none", "-v", "\(d.socket):/var/run/docker.sock", d.image, "true"]), Self.restricted, "-v of the raw socket", d)

            // Admitted by ID (under any name): the mount is pointed at the container-facing
            // socket, where the command list applies.
            let admitted = try f.docker([
                "run", "--name", "admitted", "--network", "none"] + socketMount + ["-v", "\(tools):/tools:ro", d.image, "sh", "-c",
                "/tools/unix-http /var/run/docker.sock GET /v1.41/containers/json | head -1; /tools/unix-http /var/run/docker.sock GET /v1.41/images/json",
            ])
            #expect(admitted.status == 0, "admitted image with the socket: \(admitted.stdout) \(admitted.stderr)")
            let answers = admitted.stdout.replacingOccurrences(of: "\r", with: "")
            #expect(answers.hasPrefix("HTTP/1.1 200 OK\n"), "ps through the mounted socket: \(answers)")
            #expect(answers.contains("HTTP/1.1 403") && answers.contains("docker command \\\"/v1.41/images/json\\\" " + Self.commandBlocked),
                    "images through the mounted socket must meet the command list (it is the container socket): \(answers)")
            // The container socket is root's alone: the admitted container's root reaches it through
            // the idmapped bind; a non-root user in that same container, and any VM user handed the
            // path, get EACCES.
            var st = stat()
            #expect(stat(f.containerSocket, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0, "container socket mode \(String(st.st_mode & 0o777, radix: 8))")
            #expect(stat(parentDirectory(f.containerSocket), &st) == 0 && st.st_mode & 0o777 == 0o700, "its directory: \(String(st.st_mode & 0o777, radix: 8))")
            let nonRoot = try f.docker(["run", "--rm", "--network", "none", "--user", "1000:1000"] + socketMount + ["-v", "\(tools):/tools:ro", d.image, "/tools/unix-http", "/var/run/docker.sock", "GET", "/_ping"])
            #expect(nonRoot.status != 0 && nonRoot.stderr.contains("Permission denied"), "a non-root user in an admitted container: \(nonRoot.stdout) \(nonRoot.stderr)")
            let nobody = try TestSupport.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tools + "/unix-http", f.containerSocket, "GET", "/_ping"])
            #expect(nobody.status != 0 && nobody.stderr.contains("Permission denied"), "a VM user with the path: \(nobody.stdout) \(nobody.stderr)")
            let binds = try f.docker(["inspect", "-f", "{{json .HostConfig.Binds}}", "admitted"]).stdout
            #expect(binds.contains("\"\(f.containerSocket):/var/run/docker.sock\"") && !binds.contains(f.userSocket), "the stored bind: \(binds)")
            // --volumes-from an admitted container hands its socket mount on: the image allow-list
            // applies to the new container as if it named the socket itself.
            try Self.expectRefusedWith(try f.docker(["run", "--rm", "--network", "none", "--volumes-from", "admitted", "eci-other", "true"]), denied, "--volumes-from a socket-mounting container, disallowed image", d, left: 1)
            let inherited = try f.docker(["run", "--rm", "--network", "none", "--volumes-from", "admitted:ro", "eci-allowed:v1", "test", "-S", "/var/run/docker.sock"])
            #expect(inherited.status == 0, "--volumes-from, admitted image: \(inherited.stderr)")
            let unknown = try f.docker(["run", "--rm", "--network", "none", "--volumes-from", "no-such-container", "eci-other", "true"])
            #expect(unknown.status != 0, "--volumes-from a missing container")
            #expect(try f.docker(["rm", "admitted"]).status == 0)
            let byTag = try f.docker(["run", "--rm", "--network", "none", "--mount", "type=bind,source=\(f.containerSocket),target=/s.sock", "eci-allowed:v1", "test", "-S", "/s.sock"])
            #expect(byTag.status == 0, "admitted under its other tag, --mount of the container socket: \(byTag.stderr)")

            // A disallowed image retagged with the allowed name stays refused.
            #expect(try d.docker(["tag", "eci-other:latest", "eci-allowed:latest"]).status == 0)
            let retaggedDenied = denied.replacingOccurrences(of: "eci-other", with: "eci-allowed")
            try Self.expectRefused(try f.docker(["run", "--network", "none"] + socketMount + ["eci-allowed:latest", "true"]), retaggedDenied, "retagged image, digest entry", d)
            // ...and with a tag entry (a local tag proves nothing without a registry digest).
            try f.start(try settings(["eci-allowed:latest"]))
            try Self.expectRefused(try f.docker(["run", "--network", "none"] + socketMount + ["eci-allowed:latest", "true"]), retaggedDenied, "retagged image, tag entry", d)
            try Self.expectRefused(try f.docker(["run", "--network", "none"] + socketMount + ["eci-allowed:v1", "true"]), denied.replacingOccurrences(of: "eci-other", with: "eci-allowed"), "a tag entry never admits a local-only image", d)

            // The command list: on the container socket only.
            let images = try f.docker(["images"], socket: f.containerSocket)
            #expect(images.status != 0 && images.stderr.contains("enhanced container isolation: docker command \"") && images.stderr.contains("/images/json\" " + Self.commandBlocked),
                    "images on the container socket: \(images.stderr)")
            let push = try f.docker(["push", "eci-allowed:v1"], socket: f.containerSocket)
            #expect(push.status != 0 && push.stderr.contains(Self.commandBlocked), "push on the container socket: \(push.stderr)")
            let ps = try f.docker(["ps", "-a"], socket: f.containerSocket)
            #expect(ps.status == 0, "ps on the container socket: \(ps.stderr)")
            let userImages = try f.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            #expect(userImages.status == 0 && userImages.stdout.contains("eci-allowed:v1"), "images on the user socket: \(userImages.stdout) \(userImages.stderr)")
            // Containers created through the container socket meet every other rule too.
            try Self.expectRefused(try f.docker(["run", "--pid=host", "--network", "none", d.image, "true"], socket: f.containerSocket), "containers can't share namespaces [pid] with the host", "--pid=host on the container socket", d)
            try Self.expectRefused(try f.docker(["run", "--network", "none", "-v", "\(d.dataRoot):/x", d.image, "true"], socket: f.containerSocket), Self.restricted, "a restricted mount on the container socket", d)
            let forced = try f.docker(["run", "--rm", "--runtime=runc", "--network", "none", d.image, "cat", "/proc/self/uid_map"], socket: f.containerSocket)
            #expect(forced.status == 0 && Docker.base(ofMap: forced.stdout).map { $0 != 0 } == true, "--runtime=runc on the container socket: \(forced.stdout) \(forced.stderr)")
            #expect(try d.sandbox.recordedContainers().isEmpty)

            f.stopAndCheck()
            #expect(try Self.mounts(d) == mountsBefore, "a mount was left behind")
            Self.stopAndCheck(d)
        }

        /// Routes the filter half-covered (issue 10, class 3), each attacked through the real CLI
        /// or raw API next to the neighbour that must keep working.
        @Test func routesTheFilterHalfCoveredAreClosed() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let mountsBefore = try Self.mounts(d)
            let f = try Filter(d)
            func raw(_ socket: String, _ method: String, _ path: String, _ body: String = "") throws -> String {
                let head = "\(method) \(path) HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                return try Integration.APIProxy.exchange(socket, Array((head + body).utf8))
            }

            // docker build --cgroup-parent (legacy builder: the engine makes the build containers itself).
            let context = d.sandbox.directory + "/build"
            try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
            try "FROM \(d.image)\nRUN true\n".write(toFile: context + "/Dockerfile", atomically: true, encoding: .utf8)
            let parented = try f.docker(["build", "--cgroup-parent=/eci-escape", "--network=none", "-t", "eci-parented", context])
            #expect(parented.status != 0 && parented.stderr.contains("docker build with --cgroup-parent is not allowed"), "build --cgroup-parent: \(parented.stderr)")
            #expect(try d.docker(["image", "inspect", "eci-parented"]).status != 0, "the refused build must not produce an image")

            // A container with an ordinary bind, for update and the legacy copy route.
            let shared = d.sandbox.directory + "/shared"
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
            try "secret\n".write(toFile: shared + "/file", atomically: true, encoding: .utf8)
            #expect(try f.docker(["create", "--name", "target", "--network", "none", "-v", "\(shared):/x", d.image, "true"]).status == 0)

            // docker update: a cgroup parent, device rules and devices refused; a CPU limit still updates.
            for body in [#"{"CgroupParent":"/eci-escape"}"#, #"{"DeviceCgroupRules":["b *:* rwm"]}"#, #"{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/n","CgroupPermissions":"rwm"}]}"#] {
                let answer = try raw(f.userSocket, "POST", "/v1.41/containers/target/update", body)
                #expect(answer.hasPrefix("HTTP/1.1 403"), "update \(body): \(answer)")
            }
            #expect(try f.docker(["update", "--cpu-shares", "512", "target"]).status == 0)
            #expect(try f.docker(["inspect", "-f", "{{.HostConfig.CpuShares}}", "target"]).stdout == "512\n")

            // The legacy copy route: the engine (20.10) serves it, the filter refuses it on both sockets.
            let copy = #"{"Resource":"/x/file"}"#
            let direct = try raw(d.socket, "POST", "/v1.23/containers/target/copy", copy)
            #expect(direct.hasPrefix("HTTP/1.1 200"), "the raw engine serves the legacy copy route (the contrast): \(direct.prefix(200))")
            for socket in [f.userSocket, f.containerSocket] {
                let answer = try raw(socket, "POST", "/v1.23/containers/target/copy", copy)
                #expect(answer.hasPrefix("HTTP/1.1 403") && answer.contains("legacy copy route"), "copy through \(socket): \(answer.prefix(300))")
            }
            // Routes the filter does not know: refused on both sockets (the engine serves /debug/vars).
            #expect(try raw(d.socket, "GET", "/debug/vars").hasPrefix("HTTP/1.1 200"), "the raw engine serves /debug/vars")
            for socket in [f.userSocket, f.containerSocket] {
                for (method, path) in [("GET", "/debug/vars"), ("GET", "/v1.41/containers/target/frobnicate"), ("OPTIONS", "/v1.41/containers/json")] {
                    let answer = try raw(socket, method, path)
                    #expect(answer.hasPrefix("HTTP/1.1 403") && answer.contains("is not known to the engine API filter"), "\(method) \(path) through \(socket): \(answer.prefix(300))")
                }
            }
            // Their neighbours, known routes, pass on the container socket (deny mode, empty list).
            #expect(try f.docker(["ps", "-a"], socket: f.containerSocket).status == 0)
            #expect(try f.docker(["cp", "target:/x/file", d.sandbox.directory + "/copied"]).status == 0)
            #expect(try String(contentsOfFile: d.sandbox.directory + "/copied", encoding: .utf8) == "secret\n", "docker cp through archive still works")

            // Annotations under ECI's prefix are the filter's alone.
            let forged = #"{"Image":"\#(d.image)","Cmd":["true"],"HostConfig":{"NetworkMode":"none","Annotations":{"org.eci.socket-admission":"00"}}}"#
            let forgedAnswer = try raw(f.userSocket, "POST", "/v1.41/containers/create", forged)
            #expect(forgedAnswer.hasPrefix("HTTP/1.1 403") && forgedAnswer.contains("is reserved"), "a forged stamp: \(forgedAnswer.prefix(300))")

            // Network volumes: refused unless the settings name the type; then nosuid,nodev are added.
            let nfs = ["volume", "create", "--opt", "type=nfs", "--opt", "device=:/export", "--opt", "o=addr=127.0.0.1,suid", "eci-nfs"]
            let refusedNFS = try f.docker(nfs)
            #expect(refusedNFS.status != 0 && refusedNFS.stderr.contains("local volumes of type \"nfs\" are not allowed"), "nfs volume: \(refusedNFS.stderr)")
            #expect(try d.docker(["volume", "ls", "-q"]).stdout.isEmpty, "the refused volume must not exist")
            var allowNFS = AdminSettings.defaults
            allowNFS.networkVolumeTypes = ["nfs"]
            try f.start(allowNFS)
            #expect(try f.docker(nfs).status == 0)
            #expect(try f.docker(["volume", "inspect", "-f", "{{index .Options \"o\"}}", "eci-nfs"]).stdout == "addr=127.0.0.1,suid,nosuid,nodev\n")
            let cifs = try f.docker(["volume", "create", "--opt", "type=cifs", "--opt", "device=//127.0.0.1/share", "--opt", "o=username=u", "eci-cifs"])
            #expect(cifs.status != 0 && cifs.stderr.contains("\"cifs\""), "cifs stays refused when only nfs is allowed: \(cifs.stderr)")
            #expect(try f.docker(["volume", "rm", "eci-nfs"]).status == 0)
            #expect(try f.docker(["rm", "target"]).status == 0)

            f.stopAndCheck()
            #expect(try Self.mounts(d) == mountsBefore, "a mount was left behind")
            Self.stopAndCheck(d)
        }

        /// eci-runc's stamp check on real bundles (the test engine, 20.10, ignores
        /// HostConfig.Annotations; the VM's 26 stores them and hands them to every create, which
        /// only the VM end-to-end tests show): a bind of the exact source runs only with the
        /// stamp the filter would write under the key in force.
        @Test func theRuntimeRunsTheContainerSocketOnlyWithAValidStamp() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let socket = sandbox.directory + "/eci-api/docker.sock"
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/eci-api", withIntermediateDirectories: true)
            try "not a socket, a stand-in\n".write(toFile: socket, atomically: true, encoding: .utf8)
            let policy = #"{"restrictedPaths":["/proc","/sys","/dev"],"engineDataRoot":"\#(sandbox.directory)/data","exactSources":["\#(socket)"]}"#
            try policy.write(toFile: sandbox.policyPath, atomically: true, encoding: .utf8)
            try FileSystem.makeDirectories(sandbox.stateDirectory, mode: 0o711)
            let keyPath = sandbox.stateDirectory + "/" + SocketAdmissionStamp.runKeyFileName
            let key = [UInt8](repeating: 0x5a, count: 32)
            try FileSystem.writeAtomically(keyPath, SocketAdmissionStamp.encodeKey(key), mode: 0o600)

            func bundle(_ name: String, annotation: String?) throws -> String {
                try sandbox.makeBundle(name, script: "cat /s > /out/seen") { config in
                    var mounts = config["mounts"] as? [[String: Any]] ?? []
                    mounts.append(["destination": "/s", "type": "bind", "source": socket, "options": ["rbind", "ro"]])
                    config["mounts"] = mounts
                    if let annotation { config["annotations"] = [SocketAdmissionStamp.annotation: annotation] }
                }
            }
            let stamp = SocketAdmissionStamp.stamp(runKey: key)
            let unstamped = try sandbox.runtime(["run", "--bundle", try bundle("unstamped", annotation: nil), "unstamped"])
            #expect(unstamped.status != 0 && unstamped.stderr.contains("was not admitted by the engine API filter"), "no stamp: \(unstamped.stderr)")
            let forged = try sandbox.runtime(["run", "--bundle", try bundle("forged", annotation: String(repeating: "0", count: 64)), "forged"])
            #expect(forged.status != 0 && forged.stderr.contains("does not hold under the settings in force"), "a forged stamp: \(forged.stderr)")
            let admitted = try bundle("admitted", annotation: stamp)
            let run = try sandbox.runtime(["run", "--bundle", admitted, "admitted"])
            #expect(run.status == 0, "the filter's stamp: \(run.stderr)")
            #expect(try sandbox.output(admitted, "seen") == "not a socket, a stand-in")
            // Settings changed (another run key at the next boot): the same container fails its next create.
            try FileSystem.writeAtomically(keyPath, SocketAdmissionStamp.encodeKey([UInt8](repeating: 0x5b, count: 32)), mode: 0o600)
            let rerun = try sandbox.runtime(["run", "--bundle", admitted, "admitted-again"])
            #expect(rerun.status != 0 && rerun.stderr.contains("does not hold under the settings in force"), "a stale stamp: \(rerun.stderr)")
            // The key file gone: refused, not skipped. A bundle without the socket needs no stamp.
            unlink(keyPath)
            let keyless = try sandbox.runtime(["run", "--bundle", admitted, "keyless"])
            #expect(keyless.status != 0 && keyless.stderr.contains("no socket admission key is in force"), "no key: \(keyless.stderr)")
            let plain = try sandbox.makeBundle("plain", script: "true")
            #expect(try sandbox.runtime(["run", "--bundle", plain, "plain"]).status == 0)
            #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
            #expect(try sandbox.recordedContainers().isEmpty)
        }
    }
}
