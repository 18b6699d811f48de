import Foundation

/// The VM end-to-end cases: every ECI behaviour of docs/design that exists, shown from outside
/// with the real docker CLI through `ecibuild run`'s host socket.
enum E2ECases {
    static let tools = E2EFixtures.toolsImage
    static let plain = E2EFixtures.plainImage

    static let all: [E2ECase] = [
        E2ECase(name: "load-and-import-test-images") { c in
            let loaded = try c.docker(["load", "-i", c.fixtures.toolsArchive])
            c.expect(loaded.status == 0 && loaded.stdout.contains("Loaded image: \(tools)"), "docker load of the tools archive")
            let id = try c.docker(["image", "inspect", "--format", "{{.Id}}", tools])
            c.expect(id.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == c.fixtures.toolsID, "the loaded image keeps the ID computed on the host")
            let imported = try c.docker(["import", c.fixtures.plainTarball, plain])
            c.expect(imported.status == 0, "docker import of the plain rootfs")
        },
        E2ECase(name: "every-container-is-isolated") { c in
            for extra in [[], ["--runtime=runc"], ["--userns=host"], ["--privileged"]] {
                let map = try c.docker(["run", "--rm"] + extra + [tools, "cat", "/proc/self/uid_map"])
                let base = E2EContext.mapBase(map.stdout)
                c.expect(map.status == 0 && base != nil && base != 0, "\(extra): container root must be a 65536-ID range, not VM root: \(map.stdout)")
            }
            let own = try c.docker(["run", "--rm", tools, "sh", "-c", "id -u; stat -c %u /bin/busybox"])
            c.expect(own.stdout.split(separator: "\n") == ["0", "0"], "container root sees its image's files as root's")
        },
        E2ECase(name: "exclusive-id-ranges") { c in
            var bases: [UInt64] = []
            for (index, extra) in [[], [], ["--runtime=runc"]].enumerated() {
                let name = "range-\(index)"
                try c.docker(["run", "-d", "--name", name] + extra + [tools, "sleep", "300"])
                bases += [try c.docker(["exec", name, "cat", "/proc/self/uid_map"]).stdout].compactMap(E2EContext.mapBase)
            }
            try c.docker(["rm", "-f", "range-0", "range-1", "range-2"])
            c.expect(bases.count == 3, "three running containers report their ranges: \(bases)")
            for (i, a) in bases.enumerated() {
                for b in bases[(i + 1)...] { c.expect(a > b ? a - b >= 65536 : b - a >= 65536, "ranges \(a) and \(b) overlap") }
            }
        },
        E2ECase(name: "host-namespaces-are-refused") { c in
            for (flag, word) in [("--pid=host", "[pid]"), ("--ipc=host", "[ipc]"), ("--uts=host", "[uts]")] {
                try c.expectRefused(["run", "--rm", flag, tools, "true"], "containers can't share namespaces \(word) with the host (because they use the linux user-namespace for isolation)")
            }
            try c.expectRefused(["run", "--rm", "--network=host", tools, "true"], "containers can't share a network namespace with the host")
            c.expect(try c.docker(["run", "--rm", "--network=none", tools, "true"]).status == 0, "--network=none works")
        },
        E2ECase(name: "restricted-mounts-are-refused") { c in
            let restricted = "because it's configured as a restricted host mount"
            try c.expectRefused(["run", "--rm", "-v", "/etc/docker/daemon.json:/mnt/daemon.json", tools, "true"], "can't mount /etc/docker/daemon.json \(restricted)")
            try c.expectRefused(["run", "--rm", "--mount", "type=bind,src=/var/lib/docker,dst=/x", tools, "true"], restricted)
            try c.expectRefused(["run", "--rm", "-v", "/run/eci/engine/docker.sock:/s", tools, "true"], restricted)
            try c.expectRefused(["run", "--rm", "-v", "/var/run/../../etc/eci:/x", tools, "true"], restricted)
            // `..` after a missing directory is judged as the engine cleans it (here: /).
            try c.expectRefused(["create", "-v", "/nonexistent/..:/host", tools, "true"], restricted)
            // Bind mounts are idmapped (container root writes as VM root): only user-data roots.
            try c.expectRefused(["run", "--rm", "-v", "/usr/local/bin:/x", tools, "true"], restricted)
            try c.expectRefused(["run", "--rm", "--device-cgroup-rule", "b *:* rwm", tools, "true"], "device cgroup rules are not allowed")
            try c.expectRefused(["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/etc/docker", "evil"], restricted)
            try c.expectRefused(["run", "--rm", "--mount", "type=volume,dst=/v,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/var/lib/docker", tools, "true"], restricted)
            c.expect(try c.docker(["run", "--rm", "--init", tools, "true"]).status == 0, "--init (the engine's own helper is bind-mounted) works")
            let ordinary = try c.docker(["run", "--rm", "-v", "/srv/e2e-data:/data", tools, "sh", "-c", "echo ok > /data/f && cat /data/f"])
            c.expect(ordinary.status == 0 && ordinary.stdout.contains("ok"), "an ordinary VM directory can be bind-mounted")
        },
        E2ECase(name: "docker-socket-mount-and-command-list") { c in
            let socketMount = ["-v", "/var/run/docker.sock:/var/run/docker.sock"]
            try c.expectRefused(["run", "--rm"] + socketMount + [plain, "true"],
                "enhanced container isolation: docker socket mount denied for container with image \"docker.io/eci-e2e/plain\"; image is not in the allowed list")
            // Retagging a disallowed image with the allowed name does not help: the entry is a digest.
            try c.docker(["tag", plain, "eci-e2e/tools:retagged"])
            try c.expectRefused(["run", "--rm"] + socketMount + ["eci-e2e/tools:retagged", "true"], "docker socket mount denied")
            try c.expectRefused(["run", "--rm", "--mount", "type=bind,src=/run/docker.sock,dst=/s", plain, "true"], "docker socket mount denied")
            // The allowed image gets the container-facing socket: the engine answers, the command list applies.
            let inside = try c.docker(["run", "--rm"] + socketMount + [tools, "sh", "-c",
                "unix-http /var/run/docker.sock GET /containers/json | head -1; unix-http /var/run/docker.sock GET /images/json"])
            c.expect(inside.stdout.hasPrefix("HTTP/1.1 200"), "a listing through the mounted socket is allowed: \(inside.stdout.prefix(200))")
            c.expect(inside.stdout.contains("HTTP/1.1 403") && inside.stdout.contains("is blocked"), "image commands are denied by the command list: \(inside.stdout.suffix(300))")
            let user = try c.docker(["images", "-q"])
            c.expect(user.status == 0, "the command list does not apply to users")
        },
        E2ECase(name: "privileged-escapes-are-blocked") { c in
            // With the attacks on the container's own mounts (issue 11) that ecid blocks.
            let escape = try c.docker(["run", "--rm", "--privileged", "-v", "/srv/e2e-ro:/mnt/ro:ro", tools, "escape-attempts", "--mount-attacks", "/mnt/ro"])
            c.expect(escape.stdout.contains("summary:") && escape.stdout.contains(" 0 escaped"), "every escape attempt is blocked:\n\(escape.stdout)")
            c.expect(!escape.stdout.contains("ESCAPED"), "no attempt got through")
        },
        E2ECase(name: "privileged-work-succeeds") { c in
            let work = try c.docker(["run", "--rm", "--privileged", "--network=none", tools, "sh", "-c",
                "mount -t tmpfs none /mnt && touch /mnt/x && umount /mnt && echo mounted; unshare -U -r id -u; sysctl -w net.ipv4.ip_forward=1"])
            let lines = work.stdout.split(separator: "\n").map(String.init)
            c.expect(lines.contains("mounted"), "a privileged container mounts its own tmpfs")
            c.expect(lines.contains("0"), "a nested user namespace works")
            c.expect(lines.contains("net.ipv4.ip_forward = 1"), "a sysctl of its own network namespace is writable")
        },
        E2ECase(name: "volumes-are-shared-across-ranges") { c in
            try c.docker(["volume", "create", "e2e-shared"])
            try c.docker(["run", "--rm", "-v", "e2e-shared:/data", tools, "sh", "-c", "echo first > /data/file"])
            let second = try c.docker(["run", "--rm", "-v", "e2e-shared:/data", tools, "sh", "-c", "cat /data/file; echo second >> /data/file; stat -c %u:%g /data/file"])
            c.expect(second.stdout.split(separator: "\n") == ["first", "0:0"], "a second container (another range) reads, writes and sees root-owned files: \(second.stdout)")
            let third = try c.docker(["run", "--rm", "--runtime=runc", "-v", "e2e-shared:/data", tools, "cat", "/data/file"])
            c.expect(third.stdout == "first\nsecond\n", "the volume keeps both writes")
            try c.docker(["volume", "rm", "e2e-shared"])
        },
        E2ECase(name: "build-from-a-local-image") { c in
            let built = try c.docker(["build", "-q", "-t", "eci-e2e/built:1", c.fixtures.buildContext], environment: ["DOCKER_BUILDKIT": "0"])
            c.expect(built.status == 0, "docker build FROM the local tools image")
            let run = try c.docker(["run", "--rm", "eci-e2e/built:1", "cat", "/built", "/greeting"])
            c.expect(run.stdout == "built-in-the-vm\nhello from the build context\n", "the built image holds the RUN result and the context file")
            try c.expectRefused(["build", "--network=host", "-q", c.fixtures.buildContext], "docker build with --network=host is not allowed")
        },
        E2ECase(name: "exec-logs-cp-attach-events") { c in
            let since = String(Int(Date().timeIntervalSince1970) - 1)
            try c.docker(["run", "-d", "--name", "svc", tools, "sh", "-c", "echo started; sleep 300"])
            let exec = try c.docker(["exec", "svc", "cat", "/proc/self/uid_map"])
            c.expect(E2EContext.mapBase(exec.stdout).map { $0 != 0 } == true, "exec joins the container's user namespace")
            c.expect(try c.docker(["logs", "svc"]).stdout.contains("started"), "logs")
            let file = c.work + "/cp-in.txt"
            try "through the tunnel\n".write(toFile: file, atomically: true, encoding: .utf8)
            c.expect(try c.docker(["cp", file, "svc:/tmp/in.txt"]).status == 0, "cp into the container")
            c.expect(try c.docker(["exec", "svc", "cat", "/tmp/in.txt"]).stdout == "through the tunnel\n", "the copied file arrives intact")
            c.expect(try c.docker(["cp", "svc:/etc/passwd", c.work + "/passwd-out"]).status == 0, "cp out of the container")
            c.expect((try? String(contentsOfFile: c.work + "/passwd-out", encoding: .utf8))?.hasPrefix("root:x:0:0") == true, "the file copied out is intact")
            let piped = try c.docker(["run", "-i", "--rm", tools, "sh", "-c", "cat; echo after-eof"], input: "piped through stdin\n")
            c.expect(piped.stdout == "piped through stdin\nafter-eof\n", "attach with stdin and half-close: \(piped.stdout)")
            try c.docker(["create", "--name", "once", tools, "echo", "attached output"])
            c.expect(try c.docker(["start", "-a", "once"]).stdout == "attached output\n", "start -a attaches")
            try c.docker(["rm", "-f", "svc", "once"])
            let events = try c.docker(["events", "--since", since, "--until", String(Int(Date().timeIntervalSince1970) + 1), "--filter", "container=svc"])
            c.expect(events.stdout.contains(" start ") && events.stdout.contains(" destroy "), "events of svc: \(events.stdout.prefix(300))")
        },
        E2ECase(name: "status-reports-probes-settings-and-ranges") { c in
            try c.docker(["run", "-d", "--name", "watched", tools, "sleep", "300"])
            let status = try c.status()
            c.expect(status.contains("\"phase\":\"ready\""), "the VM is ready")
            c.expect(status.contains("\"name\":\"overlay-over-idmapped-layers\",\"ok\":true") || status.contains("overlay-over-idmapped-layers"), "probe results")
            c.expect(status.contains("\"origin\":\"host\""), "the settings came from the host (fw_cfg)")
            c.expect(status.contains(c.fixtures.toolsID), "the allow-list in force names the tools image")
            c.expect(status.contains("\"name\":\"/watched\"") && status.contains("\"idRange\":\""), "the running container and its ID range")
            try c.docker(["rm", "-f", "watched"])
        },
        E2ECase(name: "engine-unreachable-from-containers") { c in
            let probe = try c.docker(["run", "--rm", tools, "sh", "-c",
                "gw=$(ip route | awk '/default/ {print $3}'); echo gateway=$gw; for p in 2375 2376; do nc -w 3 $gw $p </dev/null && echo OPEN-$p; done; ls /run/eci /run/docker.sock /var/run/docker.sock 2>&1; echo done"])
            c.expect(probe.stdout.contains("gateway=") && probe.stdout.contains("done"), "the probe ran")
            c.expect(!probe.stdout.contains("OPEN-") && !probe.stdout.contains("ApiVersion"), "no engine TCP port answers from a container: \(probe.stdout)")
            c.expect(!probe.stdout.contains("docker.sock\n") || probe.stdout.contains("No such file"), "no engine socket inside a container without a mount")
        },
    ]
}
