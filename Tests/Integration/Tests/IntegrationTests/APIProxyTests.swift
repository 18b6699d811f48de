import ECICore
import ECIIO
import ECIOCI
import ECITestSupport
import Foundation
import Logging
import Testing

@testable import ECIAgent

/// Forwards everything; reads and re-sends the body of container creations with a label added
/// (so re-framing a rewritten body is exercised); counts the requests it saw.
final class RecordingVetter: RequestVetter, @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String] = []

    var requests: [String] { lock.withLock { seen } }

    func wantsBody(_ head: HTTPRequestHead) -> Bool {
        head.method == "POST" && head.path.hasSuffix("/containers/create")
    }

    func vet(_ head: HTTPRequestHead, body: [UInt8]?) -> Verdict {
        lock.withLock { seen.append("\(head.method) \(head.path)") }
        guard let body, var json = try? JSONValue.parse(body) else { return .forward(head, body: nil) }
        var labels = json["Labels"] ?? .object([])
        if case .null = labels { labels = .object([]) }
        labels.set("eci.proxy", .string("vetted"))
        json.set("Labels", labels)
        return .forward(head, body: Array(json.serialized().utf8))
    }
}

/// Refuses container creation with a message, forwards the rest.
struct RefusingVetter: RequestVetter {
    static let message = "ECI: creating containers is not allowed by the test policy"
    func wantsBody(_ head: HTTPRequestHead) -> Bool { false }
    func vet(_ head: HTTPRequestHead, body: [UInt8]?) -> Verdict {
        if head.method == "POST" && head.path.hasSuffix("/containers/create") { return .refuse(status: 403, message: Self.message) }
        return .forward(head, body: nil)
    }
}

extension Integration {
    /// The engine API proxy in front of a real dockerd, driven by the real docker CLI.
    @Suite(.serialized) struct APIProxy {
        /// A proxy in front of `daemon`, the CLI pointed at it, and the leak checks.
        final class Fixture {
            let daemon: DockerDaemon
            let proxy: ECIAgent.APIProxy
            let socket: String
            let socketsBefore: Int
            let threadsBefore: Int

            init(_ daemon: DockerDaemon, vetter: any RequestVetter, headTimeout: Double = 30, upstream: String? = nil, name: String = "proxy.sock") throws {
                self.daemon = daemon
                socket = daemon.sandbox.directory + "/" + name
                socketsBefore = Self.openSockets()
                threadsBefore = DetachedThread.running
                var logger = Logger(label: "eci.test.api-proxy")
                logger.logLevel = .debug
                proxy = ECIAgent.APIProxy(
                    configuration: .init(listenPath: socket, mode: 0o660, upstreamPath: upstream ?? daemon.socket, headTimeout: headTimeout),
                    vetter: vetter, logger: logger)
                try proxy.start()
            }

            var environment: [String: String] { ["DOCKER_HOST": "unix://" + socket, "DOCKER_BUILDKIT": "0"] }

            /// The docker CLI through the proxy (killed after two minutes if it hangs).
            @discardableResult
            func docker(_ args: [String], input: String? = nil) throws -> TestSupport.Output {
                try TestSupport.run(["/usr/bin/timeout", "120", "/usr/bin/docker"] + args, environment: environment, input: input)
            }

            /// A shell pipeline with DOCKER_HOST pointing at the proxy.
            @discardableResult
            func sh(_ script: String) throws -> TestSupport.Output {
                try TestSupport.run(["/usr/bin/timeout", "240", "/bin/sh", "-c", script], environment: environment)
            }

            static func openSockets() -> Int {
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
                return fds.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) ?? "").hasPrefix("socket:") }.count
            }

            /// Stops the proxy and checks that it left no socket file, no socket and no thread.
            func stopAndCheck() {
                proxy.stop()
                #expect(!FileManager.default.fileExists(atPath: socket), "stop() removes the socket")
                var sockets = Self.openSockets()
                var threads = DetachedThread.running
                for _ in 0..<50 where sockets > socketsBefore || threads > threadsBefore {
                    usleep(100_000)
                    sockets = Self.openSockets()
                    threads = DetachedThread.running
                }
                #expect(sockets <= socketsBefore, "leaked sockets: \(sockets) open, \(socketsBefore) before")
                #expect(threads <= threadsBefore, "leaked threads: \(threads) running, \(threadsBefore) before")
            }
        }

        /// Raw bytes to the proxy, everything it answers until it closes.
        static func exchange(_ socket: String, _ bytes: [UInt8], closeWrite: Bool = false) throws -> String {
            let connection = try UnixSocket.connect(to: socket)
            defer { connection.close() }
            connection.setReceiveTimeout(30)
            try connection.write(bytes)
            if closeWrite { connection.shutdown(Int32(SHUT_WR)) }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while let n = try? connection.read(into: &buffer), n > 0 { answer.append(contentsOf: buffer[0..<n]) }
            return String(decoding: answer, as: UTF8.self)
        }

        static func createBody(_ image: String) -> String {
            "{\"Image\":\"\(image)\",\"Cmd\":[\"true\"],\"HostConfig\":{\"NetworkMode\":\"none\"}}"
        }

        @Test func dockerCLIWorksThroughTheProxy() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let mountsBefore = try TestSupport.mountPoints()
            let vetter = RecordingVetter()
            let p = try Fixture(d, vetter: vetter)
            let image = d.image
            let work = d.sandbox.directory

            // run --rm with output; the vetter's rewritten create body reached the engine.
            let run = try p.docker(["run", "--rm", "--network", "none", image, "echo", "hello through the proxy"])
            #expect(run.status == 0 && run.stdout == "hello through the proxy\n", "run: \(run.stdout) \(run.stderr)")
            let labelled = try p.docker(["run", "--name", "labelled", "--network", "none", image, "true"])
            #expect(labelled.status == 0, "\(labelled.stderr)")
            let label = try p.docker(["inspect", "-f", "{{index .Config.Labels \"eci.proxy\"}}", "labelled"])
            #expect(label.stdout == "vetted\n", "the rewritten body must reach the engine: \(label.stdout) \(label.stderr)")
            #expect(vetter.requests.contains { $0.hasSuffix("/containers/create") })

            // run -i: stdin through the hijacked stream, its EOF passed on as a half-close.
            let interactive = try p.docker(["run", "-i", "--rm", "--network", "none", image, "cat"], input: "hi\n")
            #expect(interactive.status == 0 && interactive.stdout == "hi\n", "run -i: \(interactive.stdout) \(interactive.stderr)")
            let piped = try p.sh("echo hi | docker run -i --rm --network none \(image) cat")
            #expect(piped.status == 0 && piped.stdout == "hi\n", "echo | run -i: \(piped.stdout) \(piped.stderr)")

            // A 20 MB stream through stdin, checksummed on both sides.
            let big = work + "/big.bin"
            try TestSupport.run(["/bin/dd", "if=/dev/urandom", "of=" + big, "bs=1M", "count=20"])
            let local = try TestSupport.run(["/usr/bin/sha256sum", big]).stdout.split(separator: " ").first.map(String.init) ?? "?"
            let remote = try p.sh("docker run -i --rm --network none \(image) sha256sum < \(big)")
            #expect(remote.status == 0 && remote.stdout.hasPrefix(local), "20 MB through stdin: \(remote.stdout) \(remote.stderr) vs \(local)")

            // exec, with and without stdin.
            #expect(try p.docker(["run", "-d", "--name", "busy", "--network", "none", image, "sleep", "120"]).status == 0)
            // (docker exec is checked against the engine directly first: when it fails there, it is
            // an eci-runc matter and the proxy's part is only that the error comes back.)
            let direct = try d.docker(["exec", "busy", "true"])
            try withKnownIssue("docker exec fails without the proxy too: \(direct.stderr)") {
                let exec = try p.docker(["exec", "busy", "sh", "-c", "echo exec works"])
                #expect(exec.status == 0 && exec.stdout == "exec works\n", "exec: \(exec.stdout) \(exec.stderr)")
                let execInput = try p.docker(["exec", "-i", "busy", "cat"], input: "through exec\n")
                #expect(execInput.stdout == "through exec\n", "exec -i: \(execInput.stdout) \(execInput.stderr)")
                let execStatus = try p.docker(["exec", "busy", "sh", "-c", "exit 3"])
                #expect(execStatus.status == 3, "exec's exit status: \(execStatus.status)")
            } when: {
                direct.status != 0
            }

            // logs -f of a container that exits: follows to the end, then returns.
            #expect(try p.docker(["run", "-d", "--name", "talker", "--network", "none", image, "sh", "-c", "echo one; sleep 1; echo two"]).status == 0)
            let logs = try p.docker(["logs", "-f", "talker"])
            #expect(logs.status == 0 && logs.stdout == "one\ntwo\n", "logs -f: \(logs.stdout) \(logs.stderr)")

            // cp both ways.
            try "copied in\n".write(toFile: work + "/cp-in.txt", atomically: true, encoding: .utf8)
            #expect(try p.docker(["cp", work + "/cp-in.txt", "busy:/tmp/cp.txt"]).status == 0)
            #expect(try p.docker(["cp", "busy:/tmp/cp.txt", work + "/cp-check.txt"]).status == 0)
            #expect(try String(contentsOfFile: work + "/cp-check.txt", encoding: .utf8) == "copied in\n")
            #expect(try p.docker(["cp", "busy:/tmp/cp.txt", work + "/cp-out.txt"]).status == 0)
            #expect(try String(contentsOfFile: work + "/cp-out.txt", encoding: .utf8) == "copied in\n")

            // export piped to import, save piped to load.
            let exported = try p.sh("docker export labelled | docker import - eci-exported:latest")
            #expect(exported.status == 0, "export | import: \(exported.stderr)")
            #expect(try p.docker(["run", "--rm", "--network", "none", "eci-exported:latest", "echo", "imported"]).stdout == "imported\n")
            let saved = try p.sh("docker save eci-exported:latest | docker load")
            #expect(saved.status == 0 && saved.stdout.contains("eci-exported:latest"), "save | load: \(saved.stdout) \(saved.stderr)")

            // events --until returns.
            let events = try p.docker(["events", "--since", "0", "--until", String(Int(Date().timeIntervalSince1970)), "--filter", "container=labelled"])
            #expect(events.status == 0 && events.stdout.contains(" create "), "events: \(events.stdout.prefix(500)) \(events.stderr)")

            // docker build (legacy builder: a chunked build-context upload).
            let context = work + "/build"
            try FileManager.default.createDirectory(atPath: context, withIntermediateDirectories: true)
            try "FROM \(image)\nCOPY note.txt /note.txt\nRUN cat /note.txt > /built.txt\n".write(toFile: context + "/Dockerfile", atomically: true, encoding: .utf8)
            try "built through the proxy\n".write(toFile: context + "/note.txt", atomically: true, encoding: .utf8)
            let build = try p.docker(["build", "--network", "none", "-t", "eci-built:latest", context])
            #expect(build.status == 0, "build: \(build.stdout.suffix(1000)) \(build.stderr)")
            #expect(try p.docker(["run", "--rm", "--network", "none", "eci-built:latest", "cat", "/built.txt"]).stdout == "built through the proxy\n")

            // Many connections at once.
            let parallel = try (0..<16).map { i in
                try TestSupport.run(["/bin/true"])  // keeps the dispatch pool warm
                return try d.dockerProcess(["ps", "-a", "--format", "{{.Names}}"], output: "\(work)/ps\(i)", via: p.socket)
            }
            parallel.forEach { $0.waitUntilExit() }
            #expect(parallel.allSatisfy { $0.terminationStatus == 0 })

            // A client that goes away during a streaming response ends its connection.
            let follower = try d.dockerProcess(["events"], output: work + "/events-follow", via: p.socket)
            usleep(1_000_000)
            #expect(p.proxy.activeConnections >= 1)
            follower.terminate()
            follower.waitUntilExit()
            var active = p.proxy.activeConnections
            for _ in 0..<50 where active > 0 {
                usleep(100_000)
                active = p.proxy.activeConnections
            }
            #expect(active == 0, "the events connection must end when the client leaves")

            _ = try p.docker(["rm", "-f", "busy", "talker", "labelled"])
            p.stopAndCheck()
            #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
        }

        @Test func refusalsAreShownByTheCLI() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let p = try Fixture(d, vetter: RefusingVetter())
            let run = try p.docker(["run", "--rm", "--network", "none", d.image, "true"])
            #expect(run.status != 0)
            #expect(run.stderr.contains("Error response from daemon: \(RefusingVetter.message)"), "CLI output: \(run.stderr)")
            #expect(try d.docker(["ps", "-aq"]).stdout.isEmpty, "nothing was created")
            #expect(try p.docker(["version"]).status == 0, "other requests pass")
            p.stopAndCheck()
        }

        @Test func engineClientReadsEveryFraming() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let client = EngineClient(socketPath: d.socket, timeout: 5)
            let ping = try client.get("/_ping")
            #expect(ping.status == 200 && ping.body == Array("OK".utf8))
            let image = try client.get("/images/\(d.image)/json")
            #expect(image.isSuccess && image.json?["Id"]?.stringValue?.hasPrefix("sha256:") == true, "\(image.status)")
            let missing = try client.get("/images/no-such-image/json")
            #expect(missing.status == 404 && missing.json?["message"]?.stringValue != nil)
            // A streamed (chunked) answer that ends.
            let now = Int(Date().timeIntervalSince1970)
            let events = try client.get("/events?since=0&until=\(now)")
            #expect(events.status == 200 && events[header: "Transfer-Encoding"] == "chunked", "\(events.headers)")
            let created = try client.post("/containers/create?name=via-client", body: Array(Self.createBody(d.image).utf8))
            #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
            #expect(try client.post("/containers/via-client/start").status == 204)
            // A stream that never ends times out.
            let short = EngineClient(socketPath: d.socket, timeout: 1)
            #expect(throws: ECIError.self) { _ = try short.get("/events") }
            let unreachable = EngineClient(socketPath: d.sandbox.directory + "/nowhere.sock")
            #expect(throws: ECIError.self) { _ = try unreachable.get("/_ping") }
        }

        @Test func smugglingAndMalformedRequestsNeverReachTheEngine() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            let vetter = RecordingVetter()
            let p = try Fixture(d, vetter: vetter, headTimeout: 2)
            let body = Self.createBody(d.image)
            func create(_ name: String) -> String {
                "POST /v1.41/containers/create?name=\(name) HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }

            // Two requests in one write: only the first is vetted and forwarded.
            let pipelined = try Self.exchange(p.socket, Array(("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n" + create("smuggled1")).utf8))
            #expect(pipelined.hasPrefix("HTTP/1.1 200 OK") && pipelined.hasSuffix("OK"), "\(pipelined)")
            // A body with a request after it: the body's request runs, the one after does not.
            let afterBody = try Self.exchange(p.socket, Array((create("legit1") + create("smuggled2")).utf8))
            #expect(afterBody.hasPrefix("HTTP/1.1 201"), "\(afterBody)")
            let chunkedBody = "\(String(body.utf8.count, radix: 16))\r\n\(body)\r\n0\r\n\r\n"
            let chunked = try Self.exchange(
                p.socket,
                Array(("POST /v1.41/containers/create?name=legit2 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + chunkedBody + create("smuggled3")).utf8))
            #expect(chunked.hasPrefix("HTTP/1.1 201"), "\(chunked)")
            // CL + TE, conflicting lengths, bare LF, obs-fold: 400, never vetted.
            let seenBefore = vetter.requests.count
            for hostile in [
                "POST /v1.41/containers/create?name=smuggled4 HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + create("smuggled5"),
                "POST /v1.41/containers/create?name=smuggled6 HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nContent-Length: 120\r\n\r\n" + create("smuggled7"),
                "POST /v1.41/containers/create?name=smuggled8 HTTP/1.1\nHost: docker\n\n",
                "POST /v1.41/containers/create?name=smuggled9 HTTP/1.1\r\nHost: docker\r\n Content-Length: 5\r\n\r\n",
                "GARBAGE\r\n\r\n",
            ] {
                let answer = try Self.exchange(p.socket, Array(hostile.utf8))
                #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n") && answer.contains("{\"message\":\"malformed"), "\(answer)")
            }
            // A malformed chunked body read for the vetter: 400, not vetted.
            let badChunks = try Self.exchange(
                p.socket,
                Array(("POST /v1.41/containers/create?name=smuggled10 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5\nhello\r\n0\r\n\r\n" + create("smuggled11")).utf8))
            #expect(badChunks.hasPrefix("HTTP/1.1 400"), "\(badChunks)")
            // A malformed chunked body streamed through is cut off there: its request fails, the
            // one after never runs.
            let cutOff = try Self.exchange(
                p.socket,
                Array(("PUT /v1.41/containers/legit1/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5\r\nhello\r\n5\nhello\r\n0\r\n\r\n" + create("smuggled12")).utf8))
            #expect(!cutOff.hasPrefix("HTTP/1.1 200"), "\(cutOff)")
            // A huge head: 431.
            let huge = try Self.exchange(p.socket, Array(("GET /_ping HTTP/1.1\r\nX: " + String(repeating: "a", count: 70_000) + "\r\n\r\n").utf8))
            #expect(huge.hasPrefix("HTTP/1.1 431"), "\(huge.prefix(200))")
            #expect(vetter.requests.count == seenBefore + 1, "malformed requests are never vetted: \(vetter.requests)")
            // A silent client gets 408 after the head timeout; others are served meanwhile.
            let silent = try UnixSocket.connect(to: p.socket)
            #expect(try p.docker(["version"]).status == 0)
            silent.setReceiveTimeout(10)
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = (try? silent.read(into: &buffer)) ?? 0
            #expect(String(decoding: buffer[0..<n], as: UTF8.self).hasPrefix("HTTP/1.1 408"))
            silent.close()
            // A client that disconnects in the middle of its body.
            let partial = try UnixSocket.connect(to: p.socket)
            try partial.write(Array("POST /v1.41/containers/create?name=smuggled13 HTTP/1.1\r\nHost: docker\r\nContent-Length: 500\r\n\r\n{\"Ima".utf8))
            partial.close()

            let names = try d.docker(["ps", "-a", "--format", "{{.Names}}"]).stdout.split(separator: "\n").map(String.init).sorted()
            #expect(names == ["legit1", "legit2"], "only vetted requests reach the engine: \(names)")
            p.stopAndCheck()
        }

        @Test func engineDownIs502AndStaleSocketsAreReplaced() throws {
            let d = try DockerDaemon()
            defer { d.stop() }
            // A stale socket file is replaced; a regular file is not.
            let stale = d.sandbox.directory + "/stale.sock"
            // What a crashed proxy leaves: a socket file nobody listens on.
            try UnixSocket.listen(at: stale, mode: 0o600, group: nil).close()
            var before = stat()
            #expect(lstat(stale, &before) == 0 && before.st_mode & S_IFMT == S_IFSOCK)
            let p = try Fixture(d, vetter: RefusingVetter(), upstream: d.sandbox.directory + "/nowhere.sock", name: "stale.sock")
            var st = stat()
            #expect(lstat(p.socket, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK && st.st_mode & 0o777 == 0o660)
            let down = try p.docker(["version", "--format", "{{.Server.Version}}"])
            #expect(down.status != 0 && down.stderr.contains("not reachable"), "\(down.stderr)")
            p.stopAndCheck()
            let regular = d.sandbox.directory + "/regular"
            try "x".write(toFile: regular, atomically: true, encoding: .utf8)
            let refused = ECIAgent.APIProxy(configuration: .init(listenPath: regular, upstreamPath: d.socket), vetter: RefusingVetter())
            #expect(throws: ECIError.self) { try refused.start() }
            #expect(try String(contentsOfFile: regular, encoding: .utf8) == "x")
        }
    }
}
