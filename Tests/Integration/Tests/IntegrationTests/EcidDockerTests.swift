import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// ecid behind a real dockerd (the test's own, eci-runc its default runtime, ecid required):
    /// the rules through every way the engine starts a process — `--privileged` (no seccomp
    /// profile from the engine), Docker's default profile with CAP_SYS_ADMIN, `docker exec` —
    /// each attack next to the mounts a Docker-in-Docker workload makes, which must work.
    @Test func rulesThroughTheTestDockerd() throws {
        let d = try DockerDaemon(ecid: true)
        defer { d.stop() }
        let mountsBefore = try TestSupport.mountPoints()
        let readonly = d.sandbox.directory + "/readonly"
        try FileManager.default.createDirectory(atPath: readonly, withIntermediateDirectories: true)
        func run(_ options: [String], _ command: [String]) throws -> TestSupport.Output {
            try d.docker(["run", "--rm", "--network", "none"] + options + [d.image] + command)
        }

        // --privileged: the engine sends no profile; the traps are the whole filter.
        let attacks = try run(["--privileged", "-v", "\(readonly):/ro:ro"], ["/bin/escape-attempts", "--mount-attacks", "/ro"])
        print("escape attempts with mount attacks under ECI + ecid (--privileged):\n\(attacks.stdout)\(attacks.stderr)")
        #expect(attacks.stdout.contains("summary:"), "the escape program did not run: \(attacks.stderr)")
        #expect(!attacks.stdout.contains("ESCAPED"), "an escape got through")

        // The mounts of a Docker-in-Docker workload, each mark printed only when it worked.
        let own = [
            "mkdir -p /mnt/t /mnt/r /mnt/b /mnt/n",
            "mount -t tmpfs none /mnt/t && echo tmpfs-ok",
            "mkdir -p /mnt/t/l /mnt/t/u /mnt/t/w /mnt/t/m && echo lower > /mnt/t/l/f",
            "mount -t overlay overlay -o lowerdir=/mnt/t/l,upperdir=/mnt/t/u,workdir=/mnt/t/w /mnt/t/m && cat /mnt/t/m/f >/dev/null && echo upper > /mnt/t/m/g && test -f /mnt/t/u/g && echo overlay-ok",
            "mount --bind /mnt/t/l /mnt/b && echo bind-ok",
            "mount -o remount,bind,ro /mnt/b && ! touch /mnt/b/x 2>/dev/null && mount -o remount,bind,rw /mnt/b && touch /mnt/b/x && echo bind-remount-ok",
            "mount -t tmpfs none /mnt/r && mount -o remount,ro /mnt/r && ! touch /mnt/r/x 2>/dev/null && mount -o remount,rw /mnt/r && touch /mnt/r/x && echo busybox-remount-ok",
            "unshare -m sh -c 'mount -t tmpfs none /mnt/n && touch /mnt/n/x && echo nested-mntns-ok'",
            // This host's kernel has no /proc/kcore; keys and timer_list are masked everywhere.
            "mount -t proc proc /mnt/n && test -c /mnt/n/keys && test -c /mnt/n/timer_list && echo fresh-proc-masked; umount -l /mnt/n",
            "umount /mnt/t/m && umount /mnt/b && umount /mnt/r && umount /mnt/t && echo umount-own-ok",
        ].joined(separator: "; ")
        let dind = try run(["--privileged"], ["sh", "-c", own])
        for mark in ["tmpfs-ok", "overlay-ok", "bind-ok", "bind-remount-ok", "busybox-remount-ok", "nested-mntns-ok", "fresh-proc-masked", "umount-own-ok"] {
            #expect(dind.stdout.contains(mark + "\n"), "\(mark) missing: \(dind.stdout)\(dind.stderr)")
        }

        // Docker's default profile (dockerd sends it) with CAP_SYS_ADMIN: the traps sit where
        // the profile allows mount; its refusals stand.
        let admin = try run(["--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined"], [
            "sh", "-c",
            "mkdir -p /mnt; grep Seccomp: /proc/self/status; mount -t tmpfs none /mnt && touch /mnt/x && umount /mnt && echo tmpfs-ok; umount /proc 2>/dev/null && echo UNMOUNTED-PROC; umount /proc/kcore 2>/dev/null && echo UNMOUNTED-KCORE; mount -t tmpfs none /proc/sys 2>/dev/null && echo COVERED-PROC-SYS; echo done",
        ])
        #expect(admin.stdout.contains("Seccomp:\t2") && admin.stdout.contains("tmpfs-ok\n") && admin.stdout.contains("done"), "\(admin.stdout) \(admin.stderr)")
        for breach in ["UNMOUNTED-PROC", "UNMOUNTED-KCORE", "COVERED-PROC-SYS"] { #expect(!admin.stdout.contains(breach), "--cap-add SYS_ADMIN: \(breach)") }
        let adminAttacks = try run(["--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined"], ["/bin/escape-attempts", "--mount-attacks"])
        #expect(adminAttacks.stdout.contains("summary:") && !adminAttacks.stdout.contains("ESCAPED"), "\(adminAttacks.stdout)")
        // A default container cannot mount at all, as with plain Docker.
        let plain = try run([], ["sh", "-c", "mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; echo done"])
        #expect(plain.stdout == "done\n", "\(plain.stdout) \(plain.stderr)")

        // docker exec: the exec'd process has its own notify fd; its calls are vetted too.
        #expect(try d.docker(["run", "-d", "--name", "exec-target", "--network", "none", "--privileged", d.image, "sleep", "300"]).status == 0)
        #expect(try d.docker(["exec", "exec-target", "umount", "/proc/kcore"]).status != 0, "docker exec umount /proc/kcore must be refused")
        let execMount = try d.docker(["exec", "exec-target", "sh", "-c", "mkdir -p /mnt; mount -t tmpfs none /mnt && touch /mnt/x && umount /mnt && echo ok"])
        #expect(execMount.stdout == "ok\n", "\(execMount.stdout) \(execMount.stderr)")
        try d.docker(["rm", "-f", "exec-target"])
        #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
    }
}
