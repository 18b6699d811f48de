import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// A second attack round on eci-init, the exec gate, the lock pass on fresh procfs/sysfs and
    /// the read-only rule (written by the attacking session against ac4d39a). Each test states
    /// what must hold; the doc comment says what it found then (ESCAPED / BROKE-COMPAT / BLOCKED).
    /// Both findings are fixed: the runc root is resolved as runc resolves it, and a soft
    /// RLIMIT_NPROC of 2 or more stays in the spec runc exec reads.
    @Suite struct EciInitAttacks2 {
        typealias A = EciInitAttacks

        /// Docker's --privileged as far as these attacks need: every capability they use, and no
        /// read-only paths (so /proc/sys is writable, as under --privileged).
        static func privilegedNoReadonly(_ config: inout [String: Any], extra: [String] = []) {
            let caps = ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID"] + extra
            A.capabilities(&config, caps)
            if var linux = config["linux"] as? [String: Any] {
                linux["readonlyPaths"] = [String]()
                config["linux"] = linux
            }
        }

        /// The exec gate finds "this container starts under eci-init" through ECI's directory,
        /// named by a hash of the `--root` string as given. runc reads `--root` through
        /// filepath.Abs (and follows symlinks), so `--root R/`, `--root R/.`, a relative root or
        /// a symlink to R name the same container for runc but no marker for eci-runc: the gate
        /// lets an exec before start through, and it runs in runc init's unlocked namespace and
        /// stays there after start. ESCAPED (of the kernel's layer) on ac4d39a.
        @Test(arguments: ["trailing-slash", "dot", "symlink"])
        func execBeforeStartThroughAnotherSpellingOfRoot(spelling: String) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "spell-\(spelling)"
            let bundle = try sandbox.makeBundle(id, script: "sleep 4401") { Integration.RuntimeLocks.privileged(&$0) }
            #expect(try sandbox.runtimeDetached(["create", "--bundle", bundle, id]).status == 0)
            defer { A.delete(sandbox, id) }
            let root: String
            switch spelling {
            case "trailing-slash": root = sandbox.runcRoot + "/"
            case "dot": root = sandbox.runcRoot + "/."
            default:
                root = sandbox.directory + "/root-link"
                try FileManager.default.createSymbolicLink(atPath: root, withDestinationPath: sandbox.runcRoot)
            }
            // urfave/cli and eci-runc both take the last --root.
            let exec = try sandbox.runtimeDetached(["exec", "-d", id, "sleep", "4402"], globals: ["--root", root])
            #expect(try sandbox.runtime(["start", id]).status == 0)
            if exec.status == 0, let pid = try A.pid(of: "sleep 4402") {
                #expect(A.isLocked(pid), "an exec before start (--root \(root)) runs in the unlocked namespace")
                #expect(try !A.kernelAllowsUnmask(pid), "the kernel let root unmount /proc/keys in the exec'd process's namespace (--root \(root))")
            }
        }

        /// The lock pass needs a new user namespace. Root of a --privileged container (writable
        /// /proc/sys, CAP_SYS_RESOURCE) sets max_user_namespaces of its own user namespace to 0:
        /// the lock pass must fail closed (no mount), never fall back to an unlocked one.
        /// BLOCKED on ac4d39a (the mount fails; nothing left mounted).
        @Test func freshProcfsFailsClosedWithoutUserNamespaces() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                echo 0 > /proc/sys/user/max_user_namespaces && cat /proc/sys/user/max_user_namespaces > /out/max
                mkdir -p /p2; mount -t proc proc /p2 2> /out/err; echo $? > /out/rc
                grep ' /p2 ' /proc/self/mountinfo > /out/mounts
                ls /p2 > /out/ls 2>&1
                exec sleep 4411
                """
            let bundle = try sandbox.makeBundle("nouserns", script: script) { Self.privilegedNoReadonly(&$0, extra: ["CAP_SYS_RESOURCE"]) }
            #expect(try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, "nouserns"]).status == 0)
            defer { A.delete(sandbox, "nouserns") }
            let pid = try #require(try A.pid(of: "sleep 4411"))
            #expect(A.isLocked(pid))
            #expect(try sandbox.output(bundle, "max") == "0")
            let rc = try sandbox.output(bundle, "rc")
            let mounts = (try? sandbox.output(bundle, "mounts")) ?? ""
            print("max_user_namespaces=0: rc=\(rc) err=\((try? sandbox.output(bundle, "err")) ?? "") mounts=\(mounts) ls=\((try? sandbox.output(bundle, "ls")) ?? "")")
            // Either no mount, or one whose masks the kernel keeps.
            if rc == "0" || !mounts.isEmpty {
                let umount = try TestSupport.run(["/usr/bin/nsenter", "-t", "\(pid)", "-U", "-m", "-p", "--", "/bin/sh", "-c", "umount /p2/keys"])
                #expect(umount.status != 0, "fresh procfs without the lock pass: its mask /p2/keys could be unmounted")
            }
        }

        /// Read-only rule: a fresh sysfs (nested net namespace) in a container whose /sys is
        /// read-only, mounted read-only as the rule requires, then made writable afterwards by
        /// every remount spelling, or a bind of it made writable, or unmounted and mounted anew
        /// read-write. None may leave a writable sysfs. BLOCKED on ac4d39a if this passes.
        @Test func freshSysfsCannotBeMadeWritableAfterwards() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                grep ' /sys ' /proc/self/mountinfo | grep -q ' ro,' && echo ro > /out/sys
                mkdir -p /s2 /b
                unshare -n sh -c '
                  mount -t sysfs -o ro sysfs /s2; echo $? > /out/mount
                  mount -o remount,rw /s2; echo $? > /out/remount
                  mount -o remount,rw,bind /s2; echo $? > /out/bindremount
                  mount --bind /s2/class /b; mount -o remount,bind,rw /b; echo $? > /out/bindcopy
                  mount --rbind /s2 /b; mount -o remount,bind,rw /b; echo $? > /out/rbindcopy
                  umount /b; umount /b
                  umount -l /s2; mount -t sysfs sysfs /s2; echo $? > /out/anew
                  grep -E " /(s2|b)" /proc/self/mountinfo > /out/mounts
                  echo x > /s2/class/net/lo/ifalias && echo written > /out/write
                  echo x > /b/net/lo/ifalias && echo written > /out/write-b
                '
                """
            let bundle = try sandbox.makeBundle("ro-sys2", script: script) {
                A.capabilities(&$0, ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_NET_ADMIN"])
            }
            _ = try sandbox.runtime(["run", "--bundle", bundle, "ro-sys2"])
            defer { A.delete(sandbox, "ro-sys2") }
            #expect(try sandbox.output(bundle, "sys") == "ro")
            print("ro sysfs: mount=\((try? sandbox.output(bundle, "mount")) ?? "?") remount=\((try? sandbox.output(bundle, "remount")) ?? "?") bindremount=\((try? sandbox.output(bundle, "bindremount")) ?? "?") bindcopy=\((try? sandbox.output(bundle, "bindcopy")) ?? "?") rbindcopy=\((try? sandbox.output(bundle, "rbindcopy")) ?? "?") anew=\((try? sandbox.output(bundle, "anew")) ?? "?")\n\((try? sandbox.output(bundle, "mounts")) ?? "")")
            #expect(try sandbox.output(bundle, "mount") == "0", "the read-only fresh sysfs the rule allows")
            for name in ["remount", "bindremount", "bindcopy", "rbindcopy", "anew"] {
                #expect((try? sandbox.output(bundle, name)) != "0", "\(name) succeeded")
            }
            #expect(!FileManager.default.fileExists(atPath: bundle + "/out/write"), "wrote through the fresh sysfs")
            #expect(!FileManager.default.fileExists(atPath: bundle + "/out/write-b"), "wrote through a bind of the fresh sysfs")
        }

        /// eci-init's options end at its own `--`: a program whose arguments are `--nproc=1:1`
        /// and `--` gets them unchanged, with the spec's RLIMIT_NPROC. And `runc exec` without
        /// --process takes the process (and its rlimits) from the bundle's config.json, which is
        /// ECI's staged copy with RLIMIT_NPROC moved to eci-init's argument: the exec'd process
        /// runs without the spec's limit, where runc alone applies it. BROKE-COMPAT on ac4d39a.
        @Test func nprocOptionAndExecRlimits() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle("nproc2", script: "") {
                Integration.RuntimeLocks.privileged(&$0)
                if var process = $0["process"] as? [String: Any] {
                    process["args"] = ["/bin/sh", "-c", "ulimit -u > /out/u; echo \"$*\" > /out/args; exec sleep 4431", "--", "--nproc=1:1", "--"]
                    process["rlimits"] = [["type": "RLIMIT_NPROC", "hard": 77, "soft": 66]]
                    $0["process"] = process
                }
            }
            #expect(try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, "nproc2"]).status == 0)
            defer { A.delete(sandbox, "nproc2") }
            let pid = try #require(try A.pid(of: "sleep 4431"))
            #expect(A.isLocked(pid))
            #expect(try sandbox.output(bundle, "u") == "66")
            #expect(try sandbox.output(bundle, "args") == "--nproc=1:1 --")
            // runc alone gives an exec without --process the spec's limit (66; the attack round
            // checked it): so must eci-runc.
            let exec = try sandbox.runtime(["exec", "nproc2", "/bin/sh", "-c", "ulimit -u"])
            #expect(exec.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "66", "runc exec's process RLIMIT_NPROC: \(exec.stdout) \(exec.stderr)")
        }
    }
}
