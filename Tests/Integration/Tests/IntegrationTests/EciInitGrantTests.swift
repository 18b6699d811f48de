import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// Containers whose program does not hold what eci-init needs (CAP_SYS_ADMIN and
    /// CAP_SYS_CHROOT, for setns) but may gain CAP_SYS_ADMIN: eci-init is granted them in the
    /// spec and takes them back after locking (`MountLockPolicy.grantForInit`, `--drop-caps`).
    /// Each runs locked, with exactly the capability sets runc alone would have given it.
    @Suite struct EciInitGrants {
        typealias A = EciInitAttacks

        /// The five capability lines of /proc/self/status, as the script writes them.
        static let capsScript = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | tr -d '\\t' | tr '\\n' ' '"

        static func mask(_ numbers: [Int]) -> String { String(format: "%016llx", numbers.reduce(UInt64(0)) { $0 | (1 << UInt64($1)) }) }

        /// A process that starts as uid 1000 with CAP_SYS_ADMIN only in its bounding set (the
        /// shape of `docker run --privileged --user 1000`) and no-new-privileges off: a
        /// setuid-root program of its image makes it root with CAP_SYS_ADMIN. That was "not
        /// covered" (unlocked; ecid's traps alone): it now runs locked, so root's unmount of a mask
        /// (untrapped in a locked container) is the kernel's to refuse, while the program as
        /// uid 1000 holds no capability at all, as under runc alone, and `runc exec` without
        /// `--process` is refused (runc would take the granted sets from the staged spec).
        @Test func setuidRegainRunsLocked() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                \(Self.capsScript) > /out/caps; id -u > /out/uid
                /bin/become-root 'umount /proc/keys 2>/dev/null; echo $? > /out/root-umount-keys; umount -l /proc 2>/dev/null; echo $? > /out/root-umount-proc; id -u > /out/root-uid; mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && umount /tmp/m; echo $? > /out/root-own-tmpfs'
                exec sleep 4441
                """
            let id = "grant-setuid"
            let bundle = try sandbox.makeBundle(id, script: script) { config in
                A.capabilities(&config, ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SYS_CHROOT", "CAP_SYS_ADMIN"])
                guard var process = config["process"] as? [String: Any] else { return }
                process["user"] = ["uid": 1000, "gid": 1000]
                process["noNewPrivileges"] = false
                config["process"] = process
            }
            #expect(chmod(bundle + "/out", 0o777) == 0, "uid 1000 writes its results there")
            let built = try TestSupport.run(["/usr/bin/cc", "-static", "-O2", "-o", bundle + "/rootfs/bin/become-root", TestSupport.repositoryRoot + "/Tests/Fixtures/become-root.c"])
            #expect(built.status == 0, "cc: \(built.stderr)")
            #expect(chmod(bundle + "/rootfs/bin/become-root", 0o4755) == 0)
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            let pid = try #require(try A.pid(of: "sleep 4441"))
            #expect(A.isLocked(pid), "the program runs unlocked: \(ecid.log().suffix(1500))")
            #expect(try sandbox.output(bundle, "uid") == "1000")
            // As runc alone: nothing but the bounding set (0 CHOWN, 1 DAC_OVERRIDE, 3 FOWNER,
            // 6 SETGID, 7 SETUID, 18 SYS_CHROOT, 21 SYS_ADMIN); eci-init's grants all gone.
            let none = Self.mask([])
            #expect(try sandbox.output(bundle, "caps") == "CapInh:\(none) CapPrm:\(none) CapEff:\(none) CapBnd:\(Self.mask([0, 1, 3, 6, 7, 18, 21])) CapAmb:\(none)")
            #expect(try sandbox.output(bundle, "root-uid") == "0", "the setuid program did not make it root")
            #expect(try sandbox.output(bundle, "root-umount-keys") != "0", "root unmasked /proc/keys")
            #expect(try sandbox.output(bundle, "root-umount-proc") != "0", "root unmounted /proc")
            #expect(try sandbox.output(bundle, "root-own-tmpfs") == "0", "root's own tmpfs")
            #expect(!ecid.log().contains("umount(target:"), "the unmounts reached ecid: the container is not locked")

            // An exec that names no capabilities would get the staged spec's, eci-init's grants
            // included (runc fills them in): refused, without --process and with a process
            // lacking them. One that names them (as Docker, containerd and Podman do) runs.
            let refused = try sandbox.runtime(["exec", id, "id", "-u"])
            #expect(refused.status != 0 && refused.stderr.contains("capabilities"), "exec without --process: \(refused.stdout) \(refused.stderr)")
            let process = bundle + "/exec-process.json"
            let base = #""args":["/bin/sh","-c","id -u; grep CapAmb /proc/self/status | tr -d '\t'"],"cwd":"/","user":{"uid":1000,"gid":1000},"env":["PATH=/bin:/usr/bin"]"#
            try "{\(base)}".write(toFile: process, atomically: true, encoding: .utf8)
            let unnamed = try sandbox.runtime(["exec", "--process", process, id])
            #expect(unnamed.status != 0 && unnamed.stderr.contains("capabilities"), "exec naming no capabilities: \(unnamed.stdout) \(unnamed.stderr)")
            try #"{\#(base),"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_SYS_CHROOT"]}}"#.write(toFile: process, atomically: true, encoding: .utf8)
            let exec = try sandbox.runtime(["exec", "--process", process, id])
            #expect(exec.status == 0 && exec.stdout == "1000\nCapAmb:\(none)\n", "exec with its capabilities: \(exec.stdout) \(exec.stderr)")
        }

        /// Root whose bounding set has CAP_SYS_ADMIN but neither CAP_SYS_CHROOT nor CAP_SETPCAP
        /// (`--cap-drop SYS_CHROOT --cap-drop SETPCAP --cap-add SYS_ADMIN`): was "not covered"
        /// (eci-init could not setns), now locked; both grants are dropped from the bounding
        /// set again, so the program cannot chroot, as under runc alone.
        @Test func rootWithoutChrootRunsLocked() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                \(Self.capsScript) > /out/caps
                chroot / true 2>/dev/null; echo $? > /out/chroot
                mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && umount /tmp/m; echo $? > /out/own-tmpfs
                exec sleep 4442
                """
            let id = "grant-chrootless"
            let bundle = try sandbox.makeBundle(id, script: script) { config in
                A.capabilities(&config, ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SYS_ADMIN"])
            }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            let pid = try #require(try A.pid(of: "sleep 4442"))
            #expect(A.isLocked(pid), "the program runs unlocked: \(ecid.log().suffix(1500))")
            #expect(try !A.kernelAllowsUnmask(pid), "the kernel let root unmask /proc/keys")
            let held = Self.mask([0, 1, 3, 6, 7, 21])
            #expect(try sandbox.output(bundle, "caps") == "CapInh:\(Self.mask([])) CapPrm:\(held) CapEff:\(held) CapBnd:\(held) CapAmb:\(Self.mask([]))")
            #expect(try sandbox.output(bundle, "chroot") != "0", "chroot without CAP_SYS_CHROOT")
            #expect(try sandbox.output(bundle, "own-tmpfs") == "0")
        }
    }
}
