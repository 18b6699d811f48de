import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on 302bf2b (eci-init copies the locked copy back into the container's
    /// user namespace; "locked" is eci-init's own word, a status file passed through runc; a
    /// granted container's exec gets a sealed copy of its `--process`; the spawn shim passes
    /// several descriptors). Each test states what must hold, next to the legitimate neighbour
    /// that must keep working; the outcome against 302bf2b is in its doc comment.
    @Suite struct AttackRound5 {
        typealias A = EciInitAttacks
        typealias G = EciInitGrants
        typealias GA = GrantAttacks
        typealias GA2 = GrantAttacks2

        static let capsScript = "grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status | tr -d '\\t' | tr '\\n' ' ' > /out/caps; "
        static var noCaps: String {
            let none = G.mask([])
            return "CapPrm:\(none) CapEff:\(none) CapAmb:\(none)"
        }

        /// `ls -l /proc/self/fd` as (number, target), without ls's own directory descriptor.
        static func descriptors(_ listing: String) -> [(number: Int, target: String)] {
            listing.split(separator: "\n").compactMap { line -> (number: Int, target: String)? in
                let parts = line.components(separatedBy: " -> ")
                guard parts.count == 2, let name = parts[0].split(separator: " ").last, let number = Int(name) else { return nil }
                guard !(parts[1].hasPrefix("/proc/") && parts[1].hasSuffix("/fd")) else { return nil }
                return (number, parts[1])
            }
        }

        /// A harmless `startContainer` hook (a CDI device's or an OCI hooks.d entry's shape;
        /// Podman and the NVIDIA toolkit add createContainer/startContainer hooks to specs whose
        /// user asked for a device or set an annotation).
        static func harmlessHook(_ config: inout [String: Any]) {
            config["hooks"] = ["startContainer": [["path": "/bin/sh", "args": ["sh", "-c", "true"]]]]
        }

        /// The errno check that keeps eci-init's capability drop honest (every errno of a
        /// locked container's profile must be 1...4095) lives in `SeccompTraps.merge`, and only
        /// under `Coverage.kernelLocked`. A container with a startContainer or createContainer
        /// hook still starts under eci-init (with grants), but gets `Coverage.every`, and the
        /// check is skipped: a profile answering prctl, capget and capset with errno 0 forges the
        /// drop and its verification, exactly as in `GrantAttacks2.forgedCapabilityCallsDoNotKeepGrants`.
        /// uid 1000 under no-new-privileges keeps CAP_SYS_ADMIN, CAP_SYS_CHROOT (and CAP_SETPCAP)
        /// ambient and effective, which runc alone never gives it, and mounts (ecid performs
        /// with the caller's capabilities). The user chooses the profile (`--security-opt
        /// seccomp=FILE`); the hook comes with a CDI device or an annotation-matched hooks.d
        /// entry. Against 302bf2b: ESCAPED (of the grant drop; the mounts stay locked, every call
        /// trapped). Fix idea: check the errnos whenever the container starts under eci-init
        /// (`startsUnderInit`, not the coverage), or verify the drop from /proc/self/status.
        /// Since: both (`MountLockPolicy.checkProfile` at every eci-init launch; eci-init reads
        /// its sets back from /proc/self/status).
        @Test func hookedContainerProfileCannotForgeTheGrantDrop() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = Self.capsScript + "mount -t tmpfs none /tmp 2>/dev/null; echo $? > /out/mount; exec sleep "
            // The neighbour: the same hook, a profile that forges nothing: runc's sets.
            let plain = try sandbox.makeBundle("r5-hook-plain", script: script + "4701") {
                GA2.nonRootUnderProfile(&$0, [GA2.errno(["acct"], 1)])
                Self.harmlessHook(&$0)
            }
            #expect(chmod(plain + "/out", 0o777) == 0)
            let plainRun = try sandbox.runtimeDetached(["run", "-d", "--bundle", plain, "r5-hook-plain"])
            #expect(plainRun.status == 0, "\(plainRun.stderr)")
            defer { A.delete(sandbox, "r5-hook-plain") }
            let plainPid = try #require(try A.pid(of: "sleep 4701"))
            #expect(A.isLocked(plainPid))
            #expect(try sandbox.output(plain, "caps") == Self.noCaps)
            #expect(try sandbox.output(plain, "mount") != "0", "uid 1000 without capabilities mounted")

            let forged = try sandbox.makeBundle("r5-hook-forge", script: script + "4702") {
                GA2.nonRootUnderProfile(&$0, [GA2.errno(["prctl", "capget", "capset"], 0)])
                Self.harmlessHook(&$0)
            }
            #expect(chmod(forged + "/out", 0o777) == 0)
            let run = try sandbox.runtimeDetached(["run", "-d", "--bundle", forged, "r5-hook-forge"])
            defer { A.delete(sandbox, "r5-hook-forge") }
            guard run.status == 0, let pid = try A.pid(of: "sleep 4702") else { return }  // refused: fine
            #expect(A.isLocked(pid))
            let caps = try sandbox.output(forged, "caps")
            let mount = (try? sandbox.output(forged, "mount")) ?? "(not run)"
            print("AttackRound5.hookedContainerProfileCannotForgeTheGrantDrop: caps \(caps), mount \(mount)")
            #expect(caps == Self.noCaps, "a container with a hook: its profile answered prctl, capget and capset with errno 0 and the program kept eci-init's grants: \(caps)")
            #expect(mount != "0", "uid 1000 mounted a tmpfs with eci-init's grants")
        }

        /// The same forged drop where no ecid runs (mode `auto` and ecid has not run on this
        /// boot, or `off`): `SeccompTraps.apply` returns before `merge`, so the profile is not
        /// looked at, yet the container starts under eci-init with grants (the kernel's lock is
        /// then the only layer). A configuration, not a container's choice, but the grant drop's
        /// honesty should not depend on ecid. Against 302bf2b: ESCAPED (of the grant drop). Fix
        /// idea: the errno check belongs to eci-init's launch (`launchUnderInit`), not to the traps.
        /// Since: it does (`MountLockPolicy.checkProfile`).
        @Test func profileWithoutEcidCannotForgeTheGrantDrop() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let script = Self.capsScript + "exec sleep "
            let plain = try sandbox.makeBundle("r5-noecid-plain", script: script + "4711") { GA2.nonRootUnderProfile(&$0, [GA2.errno(["acct"], 1)]) }
            #expect(chmod(plain + "/out", 0o777) == 0)
            let plainRun = try sandbox.runtimeDetached(["run", "-d", "--bundle", plain, "r5-noecid-plain"])
            #expect(plainRun.status == 0, "\(plainRun.stderr)")
            defer { A.delete(sandbox, "r5-noecid-plain") }
            let plainPid = try #require(try A.pid(of: "sleep 4711"))
            #expect(A.isLocked(plainPid))
            #expect(try sandbox.output(plain, "caps") == Self.noCaps)

            let forged = try sandbox.makeBundle("r5-noecid-forge", script: script + "4712") {
                GA2.nonRootUnderProfile(&$0, [GA2.errno(["prctl", "capget", "capset"], 0)])
            }
            #expect(chmod(forged + "/out", 0o777) == 0)
            let run = try sandbox.runtimeDetached(["run", "-d", "--bundle", forged, "r5-noecid-forge"])
            defer { A.delete(sandbox, "r5-noecid-forge") }
            guard run.status == 0, let pid = try A.pid(of: "sleep 4712") else { return }  // refused: fine
            #expect(A.isLocked(pid))
            let caps = try sandbox.output(forged, "caps")
            #expect(caps == Self.noCaps, "without ecid the profile is never checked: errno 0 on prctl, capget and capset kept eci-init's grants: \(caps)")
        }

        /// The caller's `--preserve-fds` at create, next to eci-init's two descriptors (the
        /// spawn shim places them at 3+N and 4+N): the program gets exactly the caller's
        /// descriptors at 3 and 4 (not eci-init's binary nor its status file), for root and for
        /// a granted uid 1000, and runs locked. Against 302bf2b: BLOCKED (works as runc).
        @Test(arguments: ["root", "granted"])
        func createKeepsTheCallersPreservedFdsAndNothingOfEci(shape: String) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r5-fds-" + shape
            let script = "ls -l /proc/self/fd > /out/fds; exec sleep 4721"
            let bundle = try sandbox.makeBundle(id, script: script) {
                if shape == "root" { Integration.RuntimeLocks.privileged(&$0) } else { GA.nonRootWithAdminInBounding(&$0) }
            }
            #expect(chmod(bundle + "/out", 0o777) == 0)
            try "three".write(toFile: sandbox.directory + "/fd-three", atomically: true, encoding: .utf8)
            try "four".write(toFile: sandbox.directory + "/fd-four", atomically: true, encoding: .utf8)
            let line = "exec 3<\(sandbox.directory)/fd-three 4<\(sandbox.directory)/fd-four 5>&- 6>&- 7>&-; exec \(sandbox.eciRunc) --root \(sandbox.runcRoot) run -d --preserve-fds 2 --bundle \(bundle) \(id) </dev/null >/dev/null 2>\(sandbox.directory)/run.err"
            let run = try TestSupport.run(["/bin/sh", "-c", line], environment: sandbox.environment)
            defer { A.delete(sandbox, id) }
            #expect(run.status == 0, "\(run.stderr) \((try? String(contentsOfFile: sandbox.directory + "/run.err", encoding: .utf8)) ?? "")")
            let pid = try #require(try A.pid(of: "sleep 4721"))
            #expect(A.isLocked(pid))
            let fds = Self.descriptors(try sandbox.output(bundle, "fds"))
            #expect(fds.map(\.number) == [0, 1, 2, 3, 4], "the program's descriptors: \(fds)")
            #expect(fds.count > 4 && fds[3].target.hasSuffix("fd-three") && fds[4].target.hasSuffix("fd-four"), "\(fds)")
            // The status file says locked, and nothing of the container holds it.
            let status = try #require(sandbox.containerDirectories().first.map { sandbox.stateDirectory + "/containers/" + $0 + "/mount-lock-status" })
            #expect((try? String(contentsOfFile: status, encoding: .utf8)) == "locked\n")
        }

        /// The sealed copy of a granted exec's `--process` (a memfd, not close-on-exec in runc,
        /// at 3+N) must not reach the exec'd process; the caller's preserved descriptor must.
        /// runc marks everything from 3+N close-on-exec before the exec (and runc init is not
        /// dumpable meanwhile). The neighbour is the exec itself (it must run without grants).
        /// Against 302bf2b: BLOCKED.
        @Test func grantedExecSealedCopyStaysOutOfTheContainer() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r5-memfd"
            let bundle = try sandbox.makeBundle(id, script: "exec sleep 4731") { GA.nonRootWithAdminInBounding(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            _ = try #require(try A.pid(of: "sleep 4731"))
            let process = bundle + "/exec.json"
            let body = #"{"args":["/bin/sh","-c","grep CapAmb /proc/self/status | tr -d '\t'; exec ls -l /proc/self/fd"],"cwd":"/","user":{"uid":1000,"gid":1000},"env":["PATH=/bin:/usr/bin"],"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}"#
            try body.write(toFile: process, atomically: true, encoding: .utf8)
            try "three".write(toFile: sandbox.directory + "/exec-three", atomically: true, encoding: .utf8)
            let line = "exec 3<\(sandbox.directory)/exec-three; exec \(sandbox.eciRunc) --root \(sandbox.runcRoot) exec --preserve-fds 1 --process \(process) \(id)"
            let exec = try TestSupport.run(["/bin/sh", "-c", line], environment: sandbox.environment)
            #expect(exec.status == 0, "\(exec.stdout) \(exec.stderr)")
            let fds = Self.descriptors(exec.stdout)
            #expect(fds.map(\.number) == [0, 1, 2, 3], "the exec'd process's descriptors: \(fds)")
            #expect(fds.count > 3 && fds[3].target.hasSuffix("exec-three"), "\(fds)")
            #expect(exec.stdout.contains("CapAmb:\(G.mask([]))"), "\(exec.stdout)")
            #expect(!exec.stdout.contains("memfd"), "the sealed copy reached the container: \(exec.stdout)")
        }

        /// The status file lives in ECI's directory of the container (ECI_STATE/containers/<hash>,
        /// /run/eci/containers in the VM). A container with that directory as a volume (`-v
        /// /run/eci/containers:/eci-state`: no socket in it, so no restricted-mount refusal; the
        /// whole state directory is refused only because ecid's socket is in it) gets it as an
        /// idmapped bind, where the VM root's 0600 files are its root's: it writes "locked" into
        /// the status file of a neighbour that is created, not started, and an exec into that
        /// neighbour (`runc exec` and containerd accept one between create and start) is let in
        /// and joins runc init's unlocked namespace, as in `EciInitAttacks.execBeforeStartDoesNotRunUnlocked`.
        /// The same bind lets it unlink a neighbour's `mount-lock` marker (its exec is then not
        /// checked at all, capabilities included) and write ECI's other records. The neighbour:
        /// after `start`, an exec runs locked. Against 302bf2b: ESCAPED (the status is forged; the
        /// exec before start runs unlocked). Fix idea: refuse bind sources at, below or above
        /// ECI's state directory (as for the engine's socket), and/or keep "locked" where no
        /// container can reach (e.g. check the status file's inode and content against a
        /// descriptor eci-runc holds, or have eci-runc `start` write a record of its own only
        /// after it read eci-init's word from a pipe rather than a file). (In the VM the image's
        /// policy names /run/eci, so the bind was refused there; this host's state directory was
        /// one the policy did not name.) Since: ECI's configured state directory, and the runc
        /// root of the command, are restricted whatever the policy file says
        /// (`RuntimeConfiguration.loadPolicy`, `IsolatedRuntime.create`).
        @Test func containerCannotWriteAnotherContainersStatus() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let victim = try sandbox.makeBundle("r5-victim", script: "exec sleep 4741") { Integration.RuntimeLocks.privileged(&$0) }
            #expect(try sandbox.runtimeDetached(["create", "--bundle", victim, "r5-victim"]).status == 0)
            defer { A.delete(sandbox, "r5-victim") }
            let attack = "ls -la /eci-state/*/ > /out/listing 2>&1; for f in /eci-state/*/mount-lock-status; do printf 'locked\\n' > $f 2>/dev/null && echo wrote $f; done > /out/wrote; echo done >> /out/wrote"
            let attacker = try sandbox.makeBundle("r5-attacker", script: attack) {
                Integration.RuntimeLocks.privileged(&$0)
                var mounts = $0["mounts"] as? [[String: Any]] ?? []
                mounts.append(["destination": "/eci-state", "type": "bind", "source": sandbox.stateDirectory + "/containers", "options": ["rbind", "rw"]])
                $0["mounts"] = mounts
            }
            let run = try sandbox.runtime(["run", "--bundle", attacker, "r5-attacker"])
            A.delete(sandbox, "r5-attacker")
            print("AttackRound5.containerCannotWriteAnotherContainersStatus: run \(run.status) \(run.stderr.prefix(300)) wrote: \((try? sandbox.output(attacker, "wrote")) ?? "(not run)")")
            #expect(run.status != 0 && run.stderr.contains("restricted host mount"), "ECI's state directory as a volume: \(run.status) \(run.stderr)")
            if run.status == 0 { #expect(!((try? sandbox.output(attacker, "wrote")) ?? "").contains("wrote"), "a container wrote another container's status file") }
            let exec = try sandbox.runtimeDetached(["exec", "-d", "r5-victim", "sleep", "4742"])
            #expect(exec.status != 0 && exec.stderr.contains("before it has started"), "exec before start with a forged status: \(exec.status) \(exec.stderr)")
            if exec.status == 0, let pid = try A.pid(of: "sleep 4742") {
                let locked = A.isLocked(pid)
                print("AttackRound5.containerCannotWriteAnotherContainersStatus: the exec before start runs \(locked ? "locked" : "UNLOCKED")")
                #expect(locked, "an exec let in by a forged status runs in the unlocked namespace")
            }
            #expect(try sandbox.runtime(["start", "r5-victim"]).status == 0)
            #expect(try sandbox.runtimeDetached(["exec", "-d", "r5-victim", "sleep", "4743"]).status == 0)
            if let pid = try A.pid(of: "sleep 4743") { #expect(A.isLocked(pid)) }
        }

        /// Legitimate shapes the status file must not break: a pid 1 that later unshares a mount
        /// namespace of its own (a copy within its user namespace: still locked; the old
        /// ownership test would have called it unlocked and refused every exec), and `runc run`
        /// in the foreground (no `start`, nobody waits for the lock: an exec is let in once
        /// eci-init wrote it). Each exec runs locked. Against 302bf2b: BLOCKED (works).
        @Test func execIntoOwnNamespacePidOneAndForegroundRun() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let unshared = try sandbox.makeBundle("r5-unshared", script: "exec unshare -m sleep 4751") { Integration.RuntimeLocks.privileged(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", unshared, "r5-unshared"])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, "r5-unshared") }
            let pid1 = try #require(try A.pid(of: "sleep 4751"))
            #expect(A.isLocked(pid1))
            let exec = try sandbox.runtimeDetached(["exec", "-d", "r5-unshared", "sleep", "4752"])
            #expect(exec.status == 0, "exec into a pid 1 with its own mount namespace: \(exec.stderr)")
            if let pid = try A.pid(of: "sleep 4752") { #expect(A.isLocked(pid)) }

            let foreground = try sandbox.makeBundle("r5-foreground", script: "exec sleep 4753") { Integration.RuntimeLocks.privileged(&$0) }
            let line = "exec \(sandbox.eciRunc) --root \(sandbox.runcRoot) run --bundle \(foreground) r5-foreground </dev/null >/dev/null 2>&1 &"
            _ = try TestSupport.run(["/bin/sh", "-c", line], environment: sandbox.environment)
            defer { A.delete(sandbox, "r5-foreground") }
            let pidF = try #require(try A.pid(of: "sleep 4753"))
            #expect(A.isLocked(pidF))
            var execF = try sandbox.runtimeDetached(["exec", "-d", "r5-foreground", "sleep", "4754"])
            for _ in 0..<20 where execF.status != 0 {
                usleep(100_000)
                execF = try sandbox.runtimeDetached(["exec", "-d", "r5-foreground", "sleep", "4754"])
            }
            #expect(execF.status == 0, "exec into a foreground run: \(execF.stderr)")
            if let pid = try A.pid(of: "sleep 4754") { #expect(A.isLocked(pid)) }
        }
    }
}
