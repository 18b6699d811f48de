import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on 352aac7 (eci-init for programs that may gain CAP_SYS_ADMIN, the
    /// capabilities granted to eci-init and taken back, the exec gate). Each test states what
    /// must hold, next to the legitimate neighbour that must keep working; the outcome of each
    /// attack against 352aac7 is in its doc comment. The three escapes are fixed since: the
    /// namespace the program runs in is owned by the container's own user namespace (first the
    /// nested one was made root's; then `LockedNamespaceOwner` showed that root's ownership was
    /// the same escape for root), the exec gate reads keys as Go does, and a file capability
    /// under no-new-privileges counts as a gain.
    @Suite struct GrantAttacks {
        typealias A = EciInitAttacks
        typealias G = EciInitGrants

        /// `docker run --privileged --user 1000` without a setuid program's help: the shape
        /// that now runs under eci-init with grants.
        static func nonRootWithAdminInBounding(_ config: inout [String: Any], noNewPrivileges: Bool = false) {
            A.capabilities(&config, ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SYS_CHROOT", "CAP_SYS_ADMIN"])
            guard var process = config["process"] as? [String: Any] else { return }
            process["user"] = ["uid": 1000, "gid": 1000]
            process["noNewPrivileges"] = noNewPrivileges
            config["process"] = process
        }

        /// Compiles C `source` statically into the bundle's rootfs at `path`.
        static func compile(_ source: String, into bundle: String, at path: String) throws {
            let file = bundle + "/" + (path as NSString).lastPathComponent + ".c"
            try source.write(toFile: file, atomically: true, encoding: .utf8)
            let built = try TestSupport.run(["/usr/bin/cc", "-static", "-O2", "-o", bundle + "/rootfs" + path, file])
            guard built.status == 0 else { throw TestFailure("cc \(file): \(built.stderr)") }
        }

        /// Opens the owner of its own mount namespace (NS_GET_USERNS: allowed for a namespace
        /// at or below the caller's), joins it, and mounts over /etc and /tmp/m.
        static let joinOwnerSource = """
            #define _GNU_SOURCE
            #include <errno.h>
            #include <fcntl.h>
            #include <sched.h>
            #include <stdio.h>
            #include <string.h>
            #include <sys/ioctl.h>
            #include <sys/mount.h>
            #include <unistd.h>
            int main(void) {
                int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
                int owner = mnt < 0 ? -1 : ioctl(mnt, 0xb701);
                if (owner < 0) { printf("owner: %s\\n", strerror(errno)); return 1; }
                if (setns(owner, CLONE_NEWUSER) < 0) { printf("setns: %s\\n", strerror(errno)); return 1; }
                printf("joined\\n");
                if (mount("/tmp/fake-etc", "/etc", NULL, MS_BIND, NULL) == 0) printf("bind ok\\n"); else printf("bind: %s\\n", strerror(errno));
                if (mount("none", "/tmp/m", "tmpfs", 0, NULL) == 0) printf("tmpfs ok\\n"); else printf("tmpfs: %s\\n", strerror(errno));
                // Untrapped in a locked container: root's own (unlocked) mounts made after start.
                if (mount(NULL, "/tmp/rootro", NULL, MS_REMOUNT | MS_BIND, NULL) == 0) printf("remount rw ok\\n"); else printf("remount rw: %s\\n", strerror(errno));
                FILE *w = fopen("/tmp/rootro/written", "w");
                printf(w ? "write ok\\n" : "write: %s\\n", strerror(errno));
                if (umount2("/tmp/rootmnt", MNT_DETACH) == 0) printf("umount ok\\n"); else printf("umount: %s\\n", strerror(errno));
                fflush(stdout);
                return 0;
            }
            """

        /// Writes its effective set to /out/capprog and waits (an exec would shed a non-root's
        /// capabilities).
        static let capProgramSource = """
            #include <stdio.h>
            #include <string.h>
            #include <unistd.h>
            int main(void) {
                char line[256];
                FILE *status = fopen("/proc/self/status", "r"), *out = fopen("/out/capprog", "w");
                if (!status || !out) return 1;
                while (fgets(line, sizeof line, status)) if (strncmp(line, "CapEff:", 7) == 0) fputs(line + 7, out);
                fclose(out);
                for (;;) pause();
            }
            """

        /// eci-init runs as the program's user, so the nested user namespace its child creates
        /// (U2, the owner of the locked copy of the mount namespace, which the program and every
        /// exec share) is owned by that user. Before 352aac7 that was always the container's
        /// root; now it is uid 1000 too, and the owner of a user namespace holds every
        /// capability in it from the parent namespace: the kernel's may_mount() asks for
        /// CAP_SYS_ADMIN over the mount namespace's owner (U2), so every uid-1000 process of
        /// the container, with no capability at all and no setuid program, may unmount and
        /// bind-remount every mount that is not locked (untrapped in a locked container: root's
        /// own mounts made after start) and bind, move and re-propagate (trapped: ecid performs
        /// them with the caller's credentials, and the kernel agrees). Only new superblocks
        /// (tmpfs: CAP_SYS_ADMIN over the caller's own user namespace) stay refused. It binds a
        /// directory of its own over /etc, which the container's root (a `docker exec -u 0`, a
        /// setuid `su`) then reads; and NS_GET_USERNS + setns joins U2 with a full effective
        /// set. Under runc alone every one of these is EPERM. Against 352aac7: ESCAPED (all but
        /// the tmpfs and the calls from inside U2, which ecid's helper cannot serve).
        @Test func nonRootHasNoPowerOverTheMountNamespace() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                mkdir -p /tmp/fake-etc /tmp/m && echo 'root::0:0:owned by uid 1000:/root:/bin/sh' > /tmp/fake-etc/passwd
                mount -t tmpfs none /tmp/m 2>/dev/null; echo $? > /out/plain-mount
                while [ ! -e /tmp/go ]; do sleep 0.1; done
                umount /tmp/rootmnt 2>/dev/null; echo $? > /out/plain-umount
                mount -o remount,bind,rw /tmp/rootro 2>/dev/null; echo $? > /out/plain-remount
                mount --bind /tmp/fake-etc /etc 2>/dev/null; echo $? > /out/plain-bind
                /bin/join-owner > /out/attack 2>&1
                id -u > /out/uid
                exec sleep 4471
                """
            let id = "grant-owner"
            let bundle = try sandbox.makeBundle(id, script: script) { Self.nonRootWithAdminInBounding(&$0) }
            #expect(chmod(bundle + "/out", 0o777) == 0)
            #expect(chmod(bundle + "/rootfs/tmp", 0o1777) == 0)
            try Self.compile(Self.joinOwnerSource, into: bundle, at: "/bin/join-owner")
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            // The container's root (`docker exec -u 0 --privileged`) mounts after start: a tmpfs,
            // and a world-writable directory bound read-only.
            let process = bundle + "/root-exec.json"
            let caps = #"["CAP_SYS_ADMIN","CAP_SYS_CHROOT","CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_SETUID","CAP_SETGID"]"#
            let rootScript = "mkdir -p /tmp/rootmnt /tmp/rootro && chmod 1777 /tmp/rootro && mount -t tmpfs none /tmp/rootmnt && mount --bind /tmp/rootro /tmp/rootro && mount -o remount,bind,ro /tmp/rootro && touch /tmp/go"
            try #"{"args":["/bin/sh","-c","\#(rootScript)"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"],"capabilities":{"bounding":\#(caps),"effective":\#(caps),"permitted":\#(caps)}}"#
                .write(toFile: process, atomically: true, encoding: .utf8)
            let rootExec = try sandbox.runtime(["exec", "--process", process, id])
            #expect(rootExec.status == 0, "root's exec: \(rootExec.stdout) \(rootExec.stderr)")
            let pid = try #require(try A.pid(of: "sleep 4471"))
            #expect(A.isLocked(pid), "the program runs unlocked")
            #expect(try sandbox.output(bundle, "uid") == "1000")
            // The neighbour: uid 1000's own mount is refused, as under runc alone.
            #expect(try sandbox.output(bundle, "plain-mount") != "0", "uid 1000 mounted a tmpfs")
            #expect(try sandbox.output(bundle, "plain-umount") != "0", "uid 1000 unmounted root's tmpfs")
            #expect(try sandbox.output(bundle, "plain-remount") != "0", "uid 1000 made root's read-only bind writable")
            #expect(try sandbox.output(bundle, "plain-bind") != "0", "uid 1000 bound a directory of its own over /etc")
            let attack = try sandbox.output(bundle, "attack")
            #expect(!attack.contains("joined"), "uid 1000 joined eci-init's owner user namespace: \(attack) \(ecid.log().suffix(3000))")
            #expect(!attack.contains("bind ok") && !attack.contains("tmpfs ok"), "uid 1000 mounted in the container's mount namespace: \(attack) \(ecid.log().suffix(1200))")
            #expect(!attack.contains("remount rw ok") && !attack.contains("write ok"), "uid 1000 made root's read-only bind writable (untrapped): \(attack)")
            #expect(!attack.contains("umount ok"), "uid 1000 unmounted root's tmpfs (untrapped): \(attack)")
            // What the container's root sees in its /etc/passwd.
            let passwd = try TestSupport.run(["/usr/bin/nsenter", "-t", "\(pid)", "-m", "--", "/bin/cat", "/etc/passwd"])
            #expect(!passwd.stdout.contains("owned by uid 1000"), "/etc is uid 1000's for every process of the container: \(passwd.stdout)")
        }

        /// no-new-privileges does not stop a file capability within the permitted set runc gave
        /// before the exec (the kernel intersects with the old permitted set). A non-root program
        /// with CAP_SYS_ADMIN in its spec's bounding and permitted sets (Docker's shape for
        /// `--user 1000 --cap-add SYS_ADMIN --security-opt no-new-privileges`) whose own binary
        /// carries `cap_sys_admin+ep` holds CAP_SYS_ADMIN from its first instruction, under runc
        /// alone too. MountLockPolicy says "no CAP_SYS_ADMIN, held or to be gained" (nothing
        /// gainable under no-new-privileges, nothing ambient): it runs unlocked. Against
        /// 352aac7: ESCAPED (of the kernel's layer; ecid's traps alone vet its mounts).
        @Test func fileCapabilityUnderNoNewPrivilegesRunsLocked() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            func bundle(_ id: String, marker: String, noNewPrivileges: Bool) throws -> String {
                let bundle = try sandbox.makeBundle(id, script: "") { config in
                    Self.nonRootWithAdminInBounding(&config, noNewPrivileges: noNewPrivileges)
                    if var process = config["process"] as? [String: Any] {
                        process["args"] = ["/bin/capprog", marker]
                        config["process"] = process
                    }
                }
                #expect(chmod(bundle + "/out", 0o777) == 0)
                try Self.compile(Self.capProgramSource, into: bundle, at: "/bin/capprog")
                let setcap = try TestSupport.run(["/usr/sbin/setcap", "cap_sys_admin+ep", bundle + "/rootfs/bin/capprog"])
                #expect(setcap.status == 0, "setcap: \(setcap.stderr)")
                return bundle
            }
            let admin: UInt64 = 1 << 21
            func holdsAdmin(_ bundle: String) throws -> Bool {
                for _ in 0..<100 where !FileManager.default.fileExists(atPath: bundle + "/out/capprog") { usleep(50_000) }
                return (UInt64(try sandbox.output(bundle, "capprog"), radix: 16) ?? 0) & admin != 0
            }

            // runc alone gives the program CAP_SYS_ADMIN (no ECI involved).
            let plain = try bundle("plain-fcap", marker: "4480", noNewPrivileges: true)
            let plainRoot = sandbox.directory + "/plain-runc"
            let plainRun = try TestSupport.runDetached(["/usr/sbin/runc", "--root", plainRoot, "run", "-d", "--bundle", plain, "plain-fcap"])
            defer {
                _ = try? TestSupport.run(["/usr/sbin/runc", "--root", plainRoot, "kill", "plain-fcap", "KILL"])
                for _ in 0..<50 where (try? TestSupport.run(["/usr/sbin/runc", "--root", plainRoot, "delete", "-f", "plain-fcap"]))?.status != 0 { usleep(50_000) }
            }
            #expect(plainRun.status == 0, "\(plainRun.stderr)")
            #expect(try holdsAdmin(plain), "runc alone: the file capability gave nothing (premise)")

            // The neighbour: no-new-privileges off, locked (a file capability "may gain").
            let gains = try bundle("fcap-nnp-off", marker: "4481", noNewPrivileges: false)
            #expect(try sandbox.runtimeDetached(["run", "-d", "--bundle", gains, "fcap-nnp-off"]).status == 0)
            defer { A.delete(sandbox, "fcap-nnp-off") }
            let gainsPid = try #require(try A.pid(of: "/bin/capprog 4481"))
            #expect(try holdsAdmin(gains))
            #expect(A.isLocked(gainsPid))

            let nnp = try bundle("fcap-nnp", marker: "4482", noNewPrivileges: true)
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", nnp, "fcap-nnp"])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, "fcap-nnp") }
            let pid = try #require(try A.pid(of: "/bin/capprog 4482"))
            if try holdsAdmin(nnp) {
                #expect(A.isLocked(pid), "the program holds CAP_SYS_ADMIN (a file capability under no-new-privileges) and runs unlocked")
            }
        }

        /// runc decodes `--process` with Go's encoding/json: a key matches a field case-
        /// insensitively (with Unicode simple folding: ſ is s), and the last of several wins. A
        /// process with `"capabilities": {...}` followed by `"Capabilities": null` passes eci-runc's
        /// gate (it looks for the exact key "capabilities") while runc sees no capabilities and
        /// fills in the staged spec's, eci-init's grants included: the exec'd uid-1000 process
        /// holds ambient (so effective) CAP_SYS_ADMIN and CAP_SYS_CHROOT, which the same JSON
        /// under runc alone (the program's sets) does not give it. Against 352aac7: ESCAPED.
        @Test func execProcessWithFoldedCapabilitiesKeyGetsNoGrant() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "grant-fold"
            let bundle = try sandbox.makeBundle(id, script: "exec sleep 4491") { Self.nonRootWithAdminInBounding(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            let pid = try #require(try A.pid(of: "sleep 4491"))
            #expect(A.isLocked(pid))
            let base = #""args":["/bin/sh","-c","grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status | tr -d '\t' | tr '\n' ' '"],"cwd":"/","user":{"uid":1000,"gid":1000},"env":["PATH=/bin:/usr/bin"],"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_SYS_CHROOT"]}"#
            let none = G.mask([])
            let expected = "CapPrm:\(none) CapEff:\(none) CapAmb:\(none)"
            let process = bundle + "/exec-process.json"
            // The neighbour: the exact key, as the engines send it.
            try "{\(base)}".write(toFile: process, atomically: true, encoding: .utf8)
            let legit = try sandbox.runtime(["exec", "--process", process, id])
            #expect(legit.status == 0 && legit.stdout.trimmingCharacters(in: .whitespaces) == expected, "\(legit.stdout) \(legit.stderr)")
            for key in ["Capabilities", "CAPABILITIES", "capabilitie\u{17F}"] {
                try "{\(base),\"\(key)\":null}".write(toFile: process, atomically: true, encoding: .utf8)
                let exec = try sandbox.runtime(["exec", "--process", process, id])
                let out = exec.stdout.trimmingCharacters(in: .whitespaces)
                #expect(exec.status != 0 || out == expected, "\"\(key)\": null after \"capabilities\": the exec got eci-init's grants: \(out) \(exec.stderr)")
            }
        }

        /// The other spellings of `--process` urfave/cli accepts, an empty value (runc then reads
        /// the staged spec), a repeated flag (the last wins) and both forms at once (runc refuses):
        /// none may run an exec that names no capabilities. Against 352aac7: BLOCKED.
        @Test func execSpellingsOfProcessWithoutCapabilitiesAreRefused() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "grant-spell"
            let bundle = try sandbox.makeBundle(id, script: "exec sleep 4492") { Self.nonRootWithAdminInBounding(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            _ = try #require(try A.pid(of: "sleep 4492"))
            let base = #""args":["/bin/sh","-c","grep CapAmb /proc/self/status | tr -d '\t'"],"cwd":"/","user":{"uid":1000,"gid":1000},"env":["PATH=/bin:/usr/bin"]"#
            let bare = bundle + "/bare.json", named = bundle + "/named.json"
            try "{\(base)}".write(toFile: bare, atomically: true, encoding: .utf8)
            try "{\(base),\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\"]}}".write(toFile: named, atomically: true, encoding: .utf8)
            let none = "CapAmb:\(G.mask([]))"
            // The neighbour, spelled -p: runs without the grants.
            let legit = try sandbox.runtime(["exec", "-p", named, id])
            #expect(legit.status == 0 && legit.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == none, "\(legit.stdout) \(legit.stderr)")
            let spellings: [[String]] = [
                ["--process=" + bare], ["-process", bare], ["-process=" + bare], ["-p=" + bare], ["--process="], ["-p", ""],
                ["--process", named, "--process", bare], ["--process", named, "-p", bare], ["-p", named, "--process", bare],
                ["--process", "bare.json"], ["--cap", "CAP_SYS_ADMIN"],
            ]
            for flags in spellings {
                let exec = try sandbox.runtime(["exec"] + flags + [id, "/bin/sh", "-c", "grep CapAmb /proc/self/status | tr -d '\t'"], directory: bundle)
                let out = exec.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(exec.status != 0 || out == none, "exec \(flags): ran with eci-init's grants: \(out)")
            }
        }
    }
}
