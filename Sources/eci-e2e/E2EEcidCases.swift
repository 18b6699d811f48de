import Foundation

/// ecid in the VM (issue 11): the mount calls a container makes are vetted by the syscall
/// supervisor, through every path the engine offers (`--privileged`, Docker's default seccomp
/// profile with CAP_SYS_ADMIN, `docker exec`), next to the Docker-in-Docker-style mounts that
/// must keep working.
enum E2EEcidCases {
    static let tools = E2EFixtures.toolsImage

    /// Mounts a privileged container makes for itself, each line printed only when it worked.
    /// The tools image is busybox: `mount -o remount,ro` is busybox's, which passes the
    /// tmpfs's `uid=`/`gid=` from /proc/mounts back (issue 11's compatibility case).
    static let ownMounts = [
        "mkdir -p /mnt/t /mnt/r /mnt/b /mnt/n",
        "mount -t tmpfs none /mnt/t && echo tmpfs-ok",
        "mkdir -p /mnt/t/l /mnt/t/u /mnt/t/w /mnt/t/m && echo lower > /mnt/t/l/f",
        "mount -t overlay overlay -o lowerdir=/mnt/t/l,upperdir=/mnt/t/u,workdir=/mnt/t/w /mnt/t/m && cat /mnt/t/m/f && echo upper > /mnt/t/m/g && test -f /mnt/t/u/g && echo overlay-ok",
        "mount --bind /mnt/t/l /mnt/b && cat /mnt/b/f >/dev/null && echo bind-ok",
        "mount -o remount,bind,ro /mnt/b && ! touch /mnt/b/x 2>/dev/null && mount -o remount,bind,rw /mnt/b && touch /mnt/b/x && echo bind-remount-ok",
        "mount -t tmpfs none /mnt/r && mount -o remount,ro /mnt/r && ! touch /mnt/r/x 2>/dev/null && mount -o remount,rw /mnt/r && touch /mnt/r/x && echo busybox-remount-ok",
        "unshare -m sh -c 'mount -t tmpfs none /mnt/n && touch /mnt/n/x && echo nested-mntns-ok'",
        "unshare -U -r -m sh -c 'mount -t tmpfs none /mnt/n && touch /mnt/n/x && echo nested-userns-ok'",
        "umount /mnt/t/m && umount /mnt/b && umount /mnt/r && umount /mnt/t && echo umount-own-ok",
        // What LXC and other nested runtimes do: pivot_root into a mount of their own, then
        // detach the old root (untrapped in a locked container: the kernel moved the lock to
        // the new root), then a fresh procfs, which still gets its masks from ecid.
        "unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs none /mnt/n && mkdir /mnt/n/old /mnt/n/bin /mnt/n/proc && cp /bin/busybox /mnt/n/bin/ "
            + "&& cd /mnt/n && pivot_root . old && /bin/busybox umount -l /old && /bin/busybox mount -t proc proc /proc && /bin/busybox test -c /proc/keys && echo pivot-detach-old-root-ok'",
        // A fresh procfs (sysfs) replacing the whole /proc (/sys) of a nested mount namespace,
        // masked: `unshare --mount-proc` and `ip netns exec`'s sysfs (MountCallPolicy.freshReplacesWhole).
        "unshare -p -f -m --mount-proc sh -c 'test -c /proc/keys && test \"$(cat /proc/1/comm)\" = sh && echo mount-proc-ok'",
        "unshare -m --propagation slave sh -c 'mount -t sysfs sysfs /sys && test -d /sys/kernel && test -z \"$(ls /sys/firmware)\" && echo netns-sysfs-ok'",
    ].joined(separator: "; ")
    static let ownMountMarks = [
        "tmpfs-ok", "overlay-ok", "bind-ok", "bind-remount-ok", "busybox-remount-ok", "nested-mntns-ok", "nested-userns-ok", "umount-own-ok", "pivot-detach-old-root-ok",
        "mount-proc-ok", "netns-sysfs-ok",
    ]

    static let all: [E2ECase] = [
        E2ECase(name: "ecid-supervises-the-vm") { c in
            let status = try c.status()
            c.expect(status.contains("\"ecid\":\"running\""), "the agent's status reports ecid running")
            // A container's seccomp filter carries ecid's listener: its trapped calls are answered.
            let run = try c.docker(["run", "--rm", "--privileged", tools, "sh", "-c", "grep -E '^Seccomp(_filters)?:' /proc/self/status; umount /proc/kcore 2>&1; test -c /proc/kcore && echo still-masked"])
            c.expect(run.stdout.contains("Seccomp:\t2"), "a --privileged container runs under a seccomp filter (the traps): \(run.stdout)")
            // Two filters: the traps (runc's, from the spec) and ECI's syscall floor under them
            // (eci-runc's, by number: SyscallFloorPolicy). The image's kernel (6.12) has no call
            // the floor refuses, so its presence is what can be checked here; what it refuses is
            // checked on the host's kernel (SyscallFloor).
            c.expect(run.stdout.contains("Seccomp_filters:\t2\n"), "a --privileged container runs under the traps and ECI's syscall floor: \(run.stdout)")
            let defaultFilters = try c.docker(["run", "--rm", tools, "grep", "^Seccomp_filters:", "/proc/self/status"])
            c.expect(defaultFilters.stdout == "Seccomp_filters:\t2\n", "a default container: Docker's profile with the traps, and the floor: \(defaultFilters.stdout) \(defaultFilters.stderr)")
            c.expect(run.stdout.contains("still-masked"), "umount of a mask is refused: \(run.stdout) \(run.stderr)")
            // eci-init: a container that starts as root with CAP_SYS_ADMIN runs with its mounts
            // locked by the kernel, under Docker's seccomp profile too. Docker's AppArmor profile
            // denies mount calls itself (and the user namespace eci-init needs): not locked, and
            // it starts. One without CAP_SYS_ADMIN has nothing to lock against.
            let unconfinedAdmin = ["--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined"]
            for (what, flags, want) in [
                ("--privileged", ["--privileged"], "yes"), ("--cap-add SYS_ADMIN apparmor=unconfined", unconfinedAdmin, "yes"),
                ("--cap-add SYS_ADMIN", ["--cap-add", "SYS_ADMIN"], "no"), ("default", [], "no"),
            ] {
                let status = try c.docker(["run", "--rm"] + flags + [tools, "escape-attempts", "--lock-status"])
                c.expect(status.status == 0 && status.stdout.contains("mounts locked: \(want)\n"), "\(what): mounts locked \(want)? \(status.stdout) \(status.stderr)")
            }
            // --privileged --user 1000: the program holds nothing, a setuid program could make it
            // root: locked, with eci-init's grants taken back (no capability held or ambient),
            // and Docker's exec (which names its capabilities) joins it as uid 1000. The lock is
            // asked by root (`docker exec -u 0`): the probe needs CAP_SYS_ADMIN.
            try c.docker(["run", "-d", "--name", "e2e-user", "--privileged", "--user", "1000", tools, "sh", "-c",
                "grep -E '^Cap(Eff|Amb)' /proc/self/status; exec sleep 300"])
            for _ in 0..<50 where !(try c.docker(["logs", "e2e-user"])).stdout.contains("CapAmb") { usleep(100_000) }
            let user = try c.docker(["logs", "e2e-user"])
            c.expect(user.stdout == "CapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n", "--privileged --user 1000: \(user.stdout) \(user.stderr)")
            let userExec = try c.docker(["exec", "e2e-user", "sh", "-c", "id -u; grep CapAmb /proc/self/status"])
            c.expect(userExec.stdout == "1000\nCapAmb:\t0000000000000000\n", "docker exec into it: \(userExec.stdout) \(userExec.stderr)")
            let execFilters = try c.docker(["exec", "e2e-user", "grep", "^Seccomp_filters:", "/proc/self/status"])
            c.expect(execFilters.stdout == "Seccomp_filters:\t2\n", "docker exec runs under the traps and the floor: \(execFilters.stdout) \(execFilters.stderr)")
            let userLock = try c.docker(["exec", "-u", "0", "e2e-user", "escape-attempts", "--lock-status"])
            c.expect(userLock.stdout == "mounts locked: yes\n", "--privileged --user 1000 runs locked: \(userLock.stdout) \(userLock.stderr)")
            try c.docker(["rm", "-f", "e2e-user"])
        },
        // procfs emulation (ECIProcFS): a container's /proc/uptime, meminfo, cpuinfo, stat and
        // swaps are its own (its init's age, its cgroup's limits and cpuset), under Docker's
        // seccomp and AppArmor profiles, read by cat (sendfile) and by read(2).
        E2ECase(name: "procfs-emulation-through-docker") { c in
            let run = try c.docker(["run", "--rm", "--memory", "64m", "--cpuset-cpus", "0", tools, "sh", "-c",
                "cat /proc/uptime; read -r up < /proc/uptime; echo \"read $up\"; grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo; grep -c '^cpu[0-9]' /proc/stat; head -1 /proc/swaps"])
            let lines = run.stdout.split(separator: "\n").map(String.init)
            c.expect(lines.count == 6, "emulated files: \(run.stdout) \(run.stderr)")
            guard lines.count == 6 else { return }
            let uptime = Double(lines[0].split(separator: " ").first ?? "") ?? 1e9
            c.expect(uptime < 30, "the container's uptime, not the VM's: \(lines[0])")
            c.expect(lines[1].hasPrefix("read ") && lines[1].split(separator: " ").count == 3, "read(2): \(lines[1])")
            c.expect(lines[2].hasSuffix(" 65536 kB"), "MemTotal is the --memory limit: \(lines[2])")
            c.expect(lines[3] == "1" && lines[4] == "1", "cpuinfo and stat show the cpuset only: \(lines[3]) \(lines[4])")
            c.expect(lines[5].hasPrefix("Filename"), "/proc/swaps: \(lines[5])")
        },
        // Tests/Fixtures/ecid-jail.c through the docker CLI: a chrooted caller naming unlisted
        // mounts, symlink-swap races against the helper, pivot_root into masks, overlays over
        // /sys, i386/x32 calls; all refused, next to the jail's, runc's and DinD's own mounts.
        E2ECase(name: "privileged-helper-path-attacks") { c in
            let run = try c.docker(["run", "--rm", "--privileged", "-v", "/srv/e2e-ro:/mnt/ro:ro", tools, "ecid-jail", "/mnt/ro"])
            c.expect(run.stdout.contains("escaped 0") && !run.stdout.contains("ESCAPED"), "helper path attacks under --privileged:\n\(run.stdout)\(run.stderr)")
            for mark in ["jail-own-tmpfs ok", "overlay-own ok ok", "jail-released ok", "pivot-own-dot ok", "pivot-own-old ok"] {
                c.expect(run.stdout.contains(mark), "neighbour \(mark) missing:\n\(run.stdout)")
            }
        },
        E2ECase(name: "privileged-dind-mounts-work") { c in
            let run = try c.docker(["run", "--rm", "--privileged", tools, "sh", "-c", ownMounts])
            for mark in ownMountMarks {
                c.expect(run.stdout.contains(mark + "\n"), "a privileged container's own mounts: \(mark) missing:\n\(run.stdout)\(run.stderr)")
            }
        },
        // Docker's default seccomp profile (sent by dockerd) allows mount and umount2 only with
        // CAP_SYS_ADMIN; ECI traps them where the profile allows them and keeps its refusals.
        E2ECase(name: "default-seccomp-profile-through-dockerd") { c in
            let admin = try c.docker(["run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined", tools, "sh", "-c",
                "grep Seccomp: /proc/self/status; mount -t tmpfs none /mnt && touch /mnt/x && umount /mnt && echo tmpfs-ok; umount /proc 2>/dev/null && echo UNMOUNTED-PROC; umount /proc/kcore 2>/dev/null && echo UNMOUNTED-KCORE; mount -t tmpfs none /proc/sys 2>/dev/null && echo COVERED-PROC-SYS; echo done"])
            c.expect(admin.stdout.contains("Seccomp:\t2") && admin.stdout.contains("done"), "the container runs under a filter: \(admin.stdout) \(admin.stderr)")
            c.expect(admin.stdout.contains("tmpfs-ok"), "--cap-add SYS_ADMIN mounts a tmpfs under the default profile: \(admin.stdout) \(admin.stderr)")
            for breach in ["UNMOUNTED-PROC", "UNMOUNTED-KCORE", "COVERED-PROC-SYS"] {
                c.expect(!admin.stdout.contains(breach), "--cap-add SYS_ADMIN: \(breach)")
            }
            let escape = try c.docker(["run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined", tools, "escape-attempts", "--mount-attacks"])
            c.expect(escape.stdout.contains("summary:") && !escape.stdout.contains("ESCAPED"), "the mount attacks with CAP_SYS_ADMIN under the default profile:\n\(escape.stdout)")
            let plain = try c.docker(["run", "--rm", tools, "sh", "-c", "mount -t tmpfs none /mnt 2>&1 && echo MOUNTED; umount /proc 2>&1 && echo UNMOUNTED; echo done"])
            c.expect(plain.stdout.contains("done") && !plain.stdout.contains("MOUNTED"), "a default container cannot mount or unmount: \(plain.stdout)")
            c.expect(plain.stdout.lowercased().contains("permission denied") || plain.stdout.contains("not permitted"), "refused with EPERM, as with plain Docker: \(plain.stdout)")
        },
        E2ECase(name: "docker-exec-calls-are-vetted") { c in
            try c.docker(["run", "-d", "--name", "e2e-exec", "--privileged", tools, "sleep", "300"])
            let umountProc = try c.docker(["exec", "e2e-exec", "umount", "/proc"])
            c.expect(umountProc.status != 0, "docker exec umount /proc is refused: \(umountProc.stdout) \(umountProc.stderr)")
            let umountKcore = try c.docker(["exec", "e2e-exec", "umount", "/proc/kcore"])
            c.expect(umountKcore.status != 0, "docker exec umount /proc/kcore is refused: \(umountKcore.stdout) \(umountKcore.stderr)")
            let mount = try c.docker(["exec", "e2e-exec", "sh", "-c", "mount -t tmpfs none /mnt && touch /mnt/x && umount /mnt && echo ok"])
            c.expect(mount.stdout == "ok\n", "docker exec mount -t tmpfs works: \(mount.stdout) \(mount.stderr)")
            let after = try c.docker(["exec", "e2e-exec", "sh", "-c", "test -c /proc/kcore && test -c /proc/keys && ls /proc/self/status >/dev/null && echo intact"])
            c.expect(after.stdout == "intact\n", "the container's /proc and masks are intact: \(after.stdout) \(after.stderr)")
            let locked = try c.docker(["exec", "e2e-exec", "escape-attempts", "--lock-status"])
            c.expect(locked.stdout == "mounts locked: yes\n", "docker exec joins the locked mount namespace: \(locked.stdout) \(locked.stderr)")
            try c.docker(["rm", "-f", "e2e-exec"])
        },
        // Restart safety (issue 11 §4): ecid killed with SIGKILL (its main process only, as a
        // crash would) and restarted by systemd while a container mounts in a loop.
        E2ECase(name: "ecid-killed-during-a-mount-loop") { c in
            try c.docker(["run", "-d", "--name", "e2e-loop", "--privileged", tools, "sh", "-c",
                "i=0; while [ $i -lt 120 ]; do if mount -t tmpfs none /mnt 2>/tmp/e && umount /mnt 2>/tmp/e; then echo ok $i; else echo FAILED $i $(cat /tmp/e); umount /mnt 2>/dev/null; fi; i=$((i+1)); sleep 0.05; done; "
                    + "umount /proc/kcore 2>/dev/null && echo kcore-unmounted; echo loop-done"])
            // A few iterations in: the kill lands in the middle of the loop.
            usleep(3_000_000)
            let killed = try c.debug("kill-ecid")
            c.expect(killed.status == 0, "ecid was killed: \(killed.stdout) \(killed.stderr)")
            let waited = try c.docker(["wait", "e2e-loop"])
            let logs = try c.docker(["logs", "e2e-loop"])
            let lines = logs.stdout.split(separator: "\n")
            let failed = lines.filter { $0.hasPrefix("FAILED") }
            c.note("mount loop: \(lines.count - 1) iterations, \(failed.count) failed: \(failed.prefix(5))")
            c.expect(waited.stdout.hasPrefix("0") && lines.last == "loop-done", "the loop ran to its end: \(logs.stdout.suffix(300))")
            // The call the killed ecid had taken (if the kill landed inside a call) gets its exact
            // answer from the next ecid; only one received and not yet recorded (a kill within
            // those few instructions) gets EINTR. Every other call works, none hangs.
            let interrupted = failed.filter { $0.contains("Interrupted system call") }
            c.expect(failed.count <= 1 && interrupted.count == failed.count, "every mount of the loop worked across ecid's restart, but for at most one EINTR: \(failed)")
            c.expect(!lines.contains("kcore-unmounted"), "the mask on /proc/kcore held after the restart")
            let after = try c.docker(["run", "--rm", "--privileged", tools, "sh", "-c", "umount /proc/kcore 2>/dev/null; test -c /proc/kcore && echo masked; mount -t tmpfs none /mnt && echo mounted"])
            c.expect(after.stdout == "masked\nmounted\n", "a new container after the restart is supervised: \(after.stdout) \(after.stderr)")
            try c.docker(["rm", "-f", "e2e-loop"])
        },
    ]
}
