import ECIAgent
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
    }
}
