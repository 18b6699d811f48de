import ECITestSupport
import Foundation

/// An attack review's cases for the VM, each attack next to the neighbour that must keep working.
enum E2EAttackCases {
    static let tools = E2EFixtures.toolsImage
    static let restricted = "because it's configured as a restricted host mount"

    static let all: [E2ECase] = [
        // The engine's own lookups of a literal path outside the symlink-blind roots: a volume
        // device inside another volume's data, or a bind source through a container's upper dir.
        E2ECase(name: "engine-lookups-outside-blind-roots-are-refused") { c in
            try c.docker(["volume", "create", "e2e-host-vol"])
            let clean = try c.docker(["run", "--rm", "-v", "e2e-host-vol:/v", tools, "sh", "-c", "mkdir -p /v/sub && echo ok"])
            c.expect(clean.stdout.contains("ok"), "a container prepares its volume: \(clean.stderr)")
            // Accepted before the fix: then `ln -s /usr/local/sbin /v/sub` and
            // `docker create -v e2e-evil:/usr/local/bin IMAGE` copied the image's files into the
            // VM's /usr/local/sbin as root; `docker cp` read and wrote /etc/docker through it.
            try c.expectRefused(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/var/lib/docker/volumes/e2e-host-vol/_data/sub", "e2e-evil"], restricted)
            try c.expectRefused(["create", "-v", "/var/lib/docker/volumes/e2e-host-vol/_data/sub:/x", tools, "true"], restricted)
            try c.expectRefused(["create", "--mount", "type=bind,src=/var/lib/docker/volumes/e2e-host-vol/_data/sub,dst=/x", tools, "true"], restricted)
            // A symlink in a container's own upper dir, pointing into an allowed root today.
            try c.docker(["run", "--rm", "-v", "/srv:/s", tools, "mkdir", "-p", "/s/e2e-lit"])
            try c.docker(["run", "--name", "e2e-lit", tools, "ln", "-s", "/srv/e2e-lit", "/link"])
            let upper = try c.docker(["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "e2e-lit"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            c.expect(upper.hasPrefix("/var/lib/docker/"), "the container's upper dir: \(upper)")
            try c.expectRefused(["create", "-v", upper + "/link:/x", tools, "true"], restricted)
            try c.expectRefused(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=\(upper)/link", "e2e-evil2"], restricted)
            // Neighbours: the volume by name, docker cp in and out of a container that uses it.
            let named = try c.docker(["run", "--rm", "-v", "e2e-host-vol:/v", tools, "ls", "/v"])
            c.expect(named.stdout.contains("sub"), "the volume by name: \(named.stdout) \(named.stderr)")
            try c.docker(["create", "--name", "e2e-volcp", "-v", "e2e-host-vol:/v", tools, "true"])
            let file = c.work + "/attack-cp.txt"
            try "copied\n".write(toFile: file, atomically: true, encoding: .utf8)
            c.expect(try c.docker(["cp", file, "e2e-volcp:/v/copied"]).status == 0, "docker cp into a named volume")
            c.expect(try c.docker(["cp", "e2e-volcp:/v/copied", c.work + "/attack-cp-back.txt"]).status == 0, "docker cp out of a named volume")
            try c.docker(["rm", "-f", "e2e-lit", "e2e-volcp"])
            try c.docker(["volume", "rm", "e2e-host-vol"])
        },
        // Annotations runc reads as configuration: a systemd property of the container's scope
        // (the engine uses the systemd cgroup driver in the VM) would stop the engine
        // (Conflicts), power the VM off (Wants=poweroff.target) or load any module (modprobe@).
        // The host's docker CLI (20.10) has no --annotation: the API directly, at 1.45.
        E2ECase(name: "runc-configuration-annotations-are-refused") { c in
            func create(_ name: String, _ annotations: String) throws -> TestSupport.Output {
                let socket = String(c.dockerHost.dropFirst("unix://".count))
                let body = #"{"Image":"\#(tools)","Cmd":["true"],"HostConfig":{"Annotations":{\#(annotations)}}}"#
                let result = try TestSupport.run([
                    "/usr/bin/curl", "-sS", "--unix-socket", socket, "-H", "Content-Type: application/json", "-d", body,
                    "-w", "\n%{http_code}", "http://localhost/v1.45/containers/create?name=\(name)",
                ])
                c.note("$ curl create \(name) \(annotations)\n\(result.stdout)\(result.stderr)")
                return result
            }
            for (name, annotation) in [
                ("e2e-ann-conflicts", #""org.systemd.property.Conflicts":"['docker.service']""#),
                ("e2e-ann-wants", #""org.systemd.property.Wants":"['modprobe@dummy.service']""#),
                ("e2e-ann-criu", #""org.criu.config":"/srv/criu.conf""#),
            ] {
                let refused = try create(name, annotation)
                c.expect(refused.stdout.hasSuffix("\n403") && refused.stdout.contains("annotation"), "\(annotation) must be refused: \(refused.stdout)")
            }
            let ordinary = try create("e2e-ann-ok", #""com.example.team":"web""#)
            c.expect(ordinary.stdout.hasSuffix("\n201"), "an ordinary annotation is accepted: \(ordinary.stdout)")
            c.expect(try c.docker(["start", "-a", "e2e-ann-ok"]).status == 0, "and the container runs")
            c.expect(try c.docker(["version"]).status == 0, "the engine still answers")
            try c.docker(["rm", "-f", "e2e-ann-ok"])
        },
        // Functional (predicted to fail): API 1.45's volume subpath. The engine binds the subpath
        // through a temporary mount under its data root (moby's safepath, /var/lib/docker/tmp),
        // and eci-runc judges that name first: restricted, not a volume's data.
        E2ECase(name: "volume-subpath-works") { c in
            try c.docker(["volume", "create", "e2e-subpath"])
            try c.docker(["run", "--rm", "-v", "e2e-subpath:/v", tools, "sh", "-c", "mkdir -p /v/sub && echo inside > /v/sub/file"])
            let socket = String(c.dockerHost.dropFirst("unix://".count))
            let body = #"{"Image":"\#(tools)","Cmd":["cat","/x/file"],"HostConfig":{"Mounts":[{"Type":"volume","Source":"e2e-subpath","Target":"/x","VolumeOptions":{"Subpath":"sub"}}]}}"#
            let created = try TestSupport.run([
                "/usr/bin/curl", "-sS", "--unix-socket", socket, "-H", "Content-Type: application/json", "-d", body, "-w", "\n%{http_code}",
                "http://localhost/v1.45/containers/create?name=e2e-subpath-c",
            ])
            c.note("$ curl create e2e-subpath-c\n\(created.stdout)\(created.stderr)")
            c.expect(created.stdout.hasSuffix("\n201"), "create with a volume subpath: \(created.stdout)")
            let run = try c.docker(["start", "-a", "e2e-subpath-c"])
            c.expect(run.status == 0 && run.stdout == "inside\n", "a volume subpath is mounted: \(run.stdout) \(run.stderr)")
            try c.docker(["rm", "-f", "e2e-subpath-c"])
            try c.docker(["volume", "rm", "e2e-subpath"])
        },
        // BuildKit (the 20.10 CLI's built-in client: /session + POST /build?version=2): every RUN
        // step is a container eci-runc starts, under the engine's cgroup parent.
        E2ECase(name: "buildkit-builds-run-in-the-isolated-runtime") { c in
            let built = try c.docker(["build", "--progress=plain", "-t", "eci-e2e/buildkit:1", c.fixtures.buildContext], environment: ["DOCKER_BUILDKIT": "1"])
            c.expect(built.status == 0, "a BuildKit build with a RUN step: \(built.stderr.suffix(1500))")
            let run = try c.docker(["run", "--rm", "eci-e2e/buildkit:1", "cat", "/built"])
            c.expect(run.stdout == "built-in-the-vm\n", "the BuildKit-built image holds the RUN result: \(run.stdout) \(run.stderr)")
            try c.expectRefused(["build", "--network=host", "-q", c.fixtures.buildContext], "docker build with --network=host is not allowed")
        },
    ]
}
