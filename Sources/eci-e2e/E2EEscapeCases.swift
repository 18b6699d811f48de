import Foundation

/// The escape classes of issue 10, each attacked for real through the docker CLI in the VM, next
/// to the legitimate neighbour that must keep working.
enum E2EEscapeCases {
    static let tools = E2EFixtures.toolsImage
    static let restricted = "because it's configured as a restricted host mount"

    static let all: [E2ECase] = [
        // Class 1: the engine-helper exception is as narrow as what the engine does.
        E2ECase(name: "engine-helper-exception-is-narrow") { c in
            try c.expectRefused(["run", "--rm", "-v", "/usr/bin/docker-init:/x", tools, "sh", "-c", "cat /x > /tmp/c && cat /tmp/c > /x"], restricted)
            try c.expectRefused(["run", "--rm", "-v", "/usr/bin/docker-init:/sbin/docker-init:ro", tools, "true"], restricted)
            try c.expectRefused(["run", "--rm", "--mount", "type=bind,src=/usr/bin/docker-init,dst=/sbin/docker-init", tools, "true"], restricted)
            try c.expectRefused(["run", "--rm", "-v", "/usr/libexec/docker/docker-init:/x", tools, "true"], restricted)
            let initRun = try c.docker(["run", "--rm", "--init", "--privileged", tools, "sh", "-c",
                "grep ' /sbin/docker-init ' /proc/self/mountinfo | cut -d' ' -f6; mount -o remount,bind,rw /sbin/docker-init 2>/dev/null && echo REMOUNTED; echo done"])
            c.expect(initRun.status == 0 && initRun.stdout.contains("done"), "--init works: \(initRun.stdout) \(initRun.stderr)")
            c.expect(initRun.stdout.hasPrefix("ro,") && !initRun.stdout.contains("REMOUNTED"), "the engine's helper is locked read-only, even for --privileged: \(initRun.stdout)")
        },
        // Class 2: no VM-side lookup follows a symlink a container planted (the allowed roots
        // are nosymfollow), while symlinks inside a bound directory work in the container.
        E2ECase(name: "engine-never-follows-planted-symlinks") { c in
            let setup = try c.docker(["run", "--rm", "-v", "/srv:/s", tools, "sh", "-c",
                "mkdir -p /s/e2e-sym/v1/data /s/e2e-sym/v2 /s/e2e-sym/app/target && echo inside > /s/e2e-sym/app/target/file && ln -sfn target /s/e2e-sym/app/link && echo ok"])
            c.expect(setup.stdout.contains("ok"), "a container prepares /srv: \(setup.stderr)")
            let inside = try c.docker(["run", "--rm", "-v", "/srv/e2e-sym/app:/app", tools, "sh", "-c", "cat /app/link/file; ln -sfn /etc /app/etc-link; cat /app/etc-link/hostname >/dev/null && echo followed"])
            c.expect(inside.stdout.hasPrefix("inside\n") && inside.stdout.contains("followed"), "symlinks in a bound directory work in the container: \(inside.stdout) \(inside.stderr)")
            // A volume bound to a clean path, then the path turned into a symlink to /etc/docker.
            try c.docker(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/srv/e2e-sym/v1/data", "e2e-v1"])
            try c.docker(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/srv/e2e-sym/v2", "e2e-v2"])
            try c.docker(["create", "--name", "e2e-cp", "-v", "e2e-v1:/x", tools, "sleep", "300"])
            try c.docker(["create", "--name", "e2e-mk", "-v", "/srv/e2e-sym/m/b/c:/x", tools, "true"])
            let flip = try c.docker(["run", "--rm", "-v", "/srv:/s", tools, "sh", "-c",
                "rm -rf /s/e2e-sym/v1/data /s/e2e-sym/v2 /s/e2e-sym/m && ln -s /etc/docker /s/e2e-sym/v1/data && ln -s /usr/local/sbin /s/e2e-sym/v2 && ln -s /etc/docker /s/e2e-sym/m && echo flipped"])
            c.expect(flip.stdout.contains("flipped"), "the container plants the symlinks: \(flip.stderr)")
            let file = c.work + "/planted.txt"
            try "planted\n".write(toFile: file, atomically: true, encoding: .utf8)
            let cpIn = try c.docker(["cp", file, "e2e-cp:/x/planted"])
            c.expect(cpIn.status != 0, "docker cp into a volume whose device became a symlink must fail: \(cpIn.stdout)")
            let cpOut = try c.docker(["cp", "e2e-cp:/x/key.json", c.work + "/key.json"])
            c.expect(cpOut.status != 0 && !FileManager.default.fileExists(atPath: c.work + "/key.json"), "docker cp out of it must not read /etc/docker: \(cpOut.stdout)")
            let use = try c.docker(["run", "--rm", "-v", "e2e-v1:/x", tools, "ls", "/x"])
            c.expect(use.status != 0 && !use.stdout.contains("daemon.json"), "the volume's device is not followed: \(use.stdout)")
            // The engine copies image content into an empty volume at create: not through a symlink.
            let populate = try c.docker(["run", "--rm", "-v", "e2e-v2:/etc", tools, "true"])
            c.expect(populate.status != 0, "populating a volume whose device became a symlink must fail")
            // The engine's mkdir -p of a missing bind source at start: not through a symlink.
            let start = try c.docker(["start", "e2e-mk"])
            // Go's MkdirAll stats the planted symlink (ELOOP), then mkdir meets it (EEXIST): it never
            // walks through it into /etc/docker.
            c.expect(start.status != 0 && start.stderr.contains("creating mount source path"), "start must fail on the planted symlink (the engine's own lookup): \(start.stderr)")
            let after = try c.docker(["run", "--rm", "-v", "/srv:/s", tools, "sh", "-c", "ls /s/e2e-sym; readlink /s/e2e-sym/m"])
            c.expect(after.stdout.contains("/etc/docker"), "the planted symlink is still a symlink: \(after.stdout)")
            // Neighbours: named volumes populate from the image; cp into a bound directory works.
            let populated = try c.docker(["run", "--rm", "-v", "e2e-populated:/etc", tools, "cat", "/etc/passwd"])
            c.expect(populated.stdout.hasPrefix("root:"), "a named volume is populated from the image: \(populated.stderr)")
            try c.docker(["create", "--name", "e2e-bindcp", "-v", "/srv/e2e-sym/app:/app", tools, "true"])
            c.expect(try c.docker(["cp", file, "e2e-bindcp:/app/copied"]).status == 0, "docker cp into a bound directory")
            c.expect(try c.docker(["cp", "e2e-bindcp:/app/copied", c.work + "/copied-back"]).status == 0, "docker cp out of a bound directory")
            try c.docker(["rm", "-f", "e2e-cp", "e2e-mk", "e2e-bindcp"])
            try c.docker(["volume", "rm", "e2e-v1", "e2e-v2", "e2e-populated"])
        },
        // Class 5: read-only binds, volumes and --read-only roots stay read-only under --privileged.
        E2ECase(name: "read-only-stays-read-only-under-privileged") { c in
            try c.docker(["run", "--rm", "-v", "e2e-rovol:/v", "-v", "/srv/e2e-ro2:/b", tools, "sh", "-c", "echo seed > /v/seed; echo seed > /b/seed"])
            let attack = "cat /ro/seed; mount -o remount,bind,rw /ro 2>/dev/null; mount -o remount,rw /ro 2>/dev/null; touch /ro/x 2>/dev/null && echo WROTE; echo done"
            let forms: [[String]] = [
                ["-v", "e2e-rovol:/ro:ro"], ["-v", "/srv/e2e-ro2:/ro:ro"],
                ["--mount", "type=bind,src=/srv/e2e-ro2,dst=/ro,readonly"], ["--mount", "type=volume,src=e2e-rovol,dst=/ro,readonly"],
            ]
            for form in forms {
                let run = try c.docker(["run", "--rm", "--privileged"] + form + [tools, "sh", "-c", attack])
                c.expect(run.stdout.hasPrefix("seed\n") && run.stdout.contains("done"), "\(form): read-only stays readable: \(run.stdout) \(run.stderr)")
                c.expect(!run.stdout.contains("WROTE"), "\(form): a privileged container remounted its read-only mount read-write")
            }
            let root = try c.docker(["run", "--rm", "--privileged", "--read-only", "-v", "/srv/e2e-ro2:/new/mount/point", tools, "sh", "-c",
                "cat /new/mount/point/seed; mount -o remount,rw / 2>/dev/null; mount -o remount,bind,rw / 2>/dev/null; touch /x 2>/dev/null && echo WROTE; echo done"])
            c.expect(root.stdout.hasPrefix("seed\n") && root.stdout.contains("done"), "--read-only with a new mount point works: \(root.stdout) \(root.stderr)")
            c.expect(!root.stdout.contains("WROTE"), "a privileged container remounted its --read-only root read-write")
            let tmp = try c.docker(["run", "--rm", "--read-only", "--tmpfs", "/tmp", tools, "sh", "-c", "touch /tmp/ok && echo ok"])
            c.expect(tmp.stdout.contains("ok"), "--read-only with a tmpfs works: \(tmp.stderr)")
            try c.docker(["volume", "rm", "e2e-rovol"])
        },
        // Class 3: routes the filter half-covered.
        E2ECase(name: "half-covered-routes-are-closed") { c in
            try c.expectRefused(["build", "--cgroup-parent=/evil", "-q", c.fixtures.buildContext], "cgroup")
            for type in ["nfs", "nfs4", "cifs", "smb3"] {
                try c.expectRefused(["volume", "create", "-o", "type=\(type)", "-o", "o=addr=127.0.0.1", "-o", "device=:/export", "e2e-\(type)"], "enhanced container isolation")
            }
            try c.expectRefused(["run", "--rm", "--mount", "type=volume,dst=/v,volume-opt=type=nfs,volume-opt=o=addr=127.0.0.1,volume-opt=device=:/x", tools, "true"], "enhanced container isolation")
            try c.docker(["run", "-d", "--name", "e2e-routes", "-v", "/var/run/docker.sock:/var/run/docker.sock", tools, "sleep", "300"])
            let routes = try c.docker(["exec", "e2e-routes", "sh", "-c",
                "for r in 'POST /containers/e2e-routes/copy' 'GET /debug/vars' 'GET /no/such/route' 'GET /_ping'; do unix-http /var/run/docker.sock $r | head -1; done"])
            let lines = routes.stdout.split(whereSeparator: \.isNewline).map(String.init)  // "\r\n" is one Character
            c.expect(lines.count == 4 && lines.prefix(3).allSatisfy { $0.contains(" 403") }, "legacy, debug and unknown routes are refused from a container's socket: \(routes.stdout)")
            c.expect(lines.last?.contains(" 200") == true, "a known route still answers: \(routes.stdout)")
            try c.docker(["rm", "-f", "e2e-routes"])
        },
        // Class 6: the container-facing socket is root-only, and admission is stamped and checked
        // by the runtime at every create (a restart included).
        E2ECase(name: "container-socket-is-root-only-and-stamped") { c in
            try c.docker(["run", "-d", "--name", "e2e-admitted", "-v", "/var/run/docker.sock:/var/run/docker.sock", tools, "sleep", "300"])
            let owner = try c.docker(["exec", "e2e-admitted", "sh", "-c", "stat -c %a:%u /var/run/docker.sock; unix-http /var/run/docker.sock GET /_ping | head -1"])
            c.expect(owner.stdout.hasPrefix("600:0\n") && owner.stdout.contains(" 200"), "root-only socket, reached by container root: \(owner.stdout) \(owner.stderr)")
            let other = try c.docker(["exec", "--user", "1000", "e2e-admitted", "sh", "-c", "unix-http /var/run/docker.sock GET /_ping 2>&1 | head -1"])
            c.expect(!other.stdout.contains(" 200"), "a non-root user of the admitted container can't connect: \(other.stdout)")
            let stamp = try c.docker(["inspect", "--format", "{{json .HostConfig.Annotations}}", "e2e-admitted"])
            c.expect(stamp.stdout.contains("org.eci.socket-admission"), "the filter stamped the admission: \(stamp.stdout)")
            c.expect(try c.docker(["restart", "-t", "1", "e2e-admitted"]).status == 0, "an admitted container restarts (the runtime verifies the stamp)")
            let again = try c.docker(["exec", "e2e-admitted", "sh", "-c", "unix-http /var/run/docker.sock GET /_ping | head -1"])
            c.expect(again.stdout.contains(" 200"), "after the restart the socket still answers: \(again.stdout)")
            try c.docker(["rm", "-f", "e2e-admitted"])
        },
        // Class 2, raced: a container swaps a bind source's name with a symlink to /etc/docker
        // (renameat2 RENAME_EXCHANGE, ~100k swaps a second) while the user runs docker cp into a
        // container that binds it. Every copy either fails (ELOOP: the symlink is never followed)
        // or lands in the real directory; none may land anywhere else.
        E2ECase(name: "docker-cp-races-a-symlink-flip") { c in
            let setup = try c.docker(["run", "--rm", "-v", "/srv:/s", tools, "sh", "-c", "mkdir -p /s/e2e-race/real && ln -sfn /etc/docker /s/e2e-race/evil && echo ok"])
            c.expect(setup.stdout.contains("ok"), "race setup: \(setup.stderr)")
            try c.docker(["create", "--name", "e2e-race-target", "-v", "/srv/e2e-race/real:/x", tools, "true"])
            try c.docker(["run", "-d", "--name", "e2e-flipper", "-v", "/srv/e2e-race:/r", tools, "flip-names", "/r/real", "/r/evil", "40"])
            var landed: [String] = []
            for index in 0..<25 {
                let file = c.work + "/race-\(index).txt"
                try "race \(index)\n".write(toFile: file, atomically: true, encoding: .utf8)
                if try c.docker(["cp", file, "e2e-race-target:/x/race-\(index).txt"]).status == 0 { landed.append("race-\(index).txt") }
            }
            let flipped = try c.docker(["wait", "e2e-flipper"])
            let swaps = try c.docker(["logs", "e2e-flipper"])
            c.expect(flipped.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0" && swaps.stdout.contains("swaps"), "the flipper ran: \(swaps.stdout) \(swaps.stderr)")
            let listing = try c.docker(["run", "--rm", "-v", "/srv/e2e-race:/r", tools, "sh", "-c", "test -d /r/real && ! test -L /r/real && ls /r/real"])
            let inReal = Set(listing.stdout.split(whereSeparator: \.isNewline).map(String.init))
            let astray = landed.filter { !inReal.contains($0) }
            c.note("docker cp during the flip: \(landed.count) of 25 landed, all checked; \(swaps.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
            c.expect(astray.isEmpty, "copies reported as done that are not in the real directory (they went through the symlink): \(astray)")
            try c.docker(["rm", "-f", "e2e-race-target", "e2e-flipper"])
        },
    ]
}
