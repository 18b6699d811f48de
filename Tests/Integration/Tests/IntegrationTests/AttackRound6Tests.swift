import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on 0e32200 (ECI's state directory and the command's runc root are
    /// restricted bind sources; the profile's errnos are checked at every eci-init launch;
    /// eci-init reads its sets back from /proc/self/status) and on 302bf2b (the locked copy is
    /// owned by the container's user namespace; "locked" is a status file). Each test states
    /// what must hold, next to the legitimate neighbour that must keep working; the outcome
    /// against 0e32200 is in its doc comment.
    @Suite struct AttackRound6 {
        typealias A = EciInitAttacks
        typealias L = LockedNamespaceOwner

        static func addMount(_ config: inout [String: Any], source: String, destination: String) {
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": destination, "type": "bind", "source": source, "options": ["rbind", "rw"]])
            config["mounts"] = mounts
        }

        /// Writes "locked" into every status file below `directory` in the container, and says which.
        static func forgeStatus(below directory: String) -> String {
            "for f in \(directory)/*/mount-lock-status; do [ -f $f ] && printf 'locked\\n' > $f 2>/dev/null && echo wrote $f; done > /out/wrote; echo done >> /out/wrote"
        }

        /// A created (not started) neighbour's exec must still be refused, and run locked after start.
        static func expectVictimHolds(_ sandbox: RuntimeSandbox, _ id: String, marker: Int) throws {
            let exec = try sandbox.runtimeDetached(["exec", "-d", id, "sleep", "\(marker)"])
            #expect(exec.status != 0 && exec.stderr.contains("before it has started"), "exec before start: \(exec.status) \(exec.stderr)")
            if exec.status == 0, let pid = try A.pid(of: "sleep \(marker)") {
                let locked = A.isLocked(pid)
                print("AttackRound6: the exec before start into \(id) runs \(locked ? "locked" : "UNLOCKED")")
                #expect(locked, "an exec let in by a forged status runs in the unlocked namespace")
                #expect(try !A.kernelAllowsUnmask(pid), "the kernel let root unmount /proc/keys in the exec'd process's namespace")
            }
        }

        /// ECI's state directory is restricted "at, below or above", by every name its directory
        /// has through other mounts of its file system (`MountSources.aliases`), but a recursive
        /// bind (Docker's `-v` default) also carries every mount *below* its source, and those are
        /// judged only by their file system type (`SourceIdentityJudge.check`: pseudo file systems
        /// and overlay layers), never by what they show. A VM-side bind of the state directory (or
        /// of any directory holding it, or of the runc root) anywhere below a directory a
        /// container may bind (a host share in `/mnt`, an admin's bind, a `docker volume create
        /// -o o=bind,device=...` mounted below an allowed root) reaches the container through
        /// `-v DIR:/x`: the container writes "locked" into a created neighbour's status file, and an
        /// exec before start runs in runc init's unlocked namespace (as in
        /// `AttackRound5.containerCannotWriteAnotherContainersStatus`). The neighbour: the same
        /// rbind of a directory with no such mount below it works. Against 0e32200: ESCAPED
        /// (needs a VM-side mount of ECI's state below a bindable directory). Fix idea: judge every
        /// mount below a recursive source by its own names too (its root through `aliases`, against
        /// the restricted paths and allowed roots, as `judgeLayer` does for overlay layers), or
        /// refuse a recursive source with a submount of a restricted file system. Since: the
        /// first (`SourceIdentityJudge.check`: each mount below, under every alias of its point).
        @Test func rbindCarryingAMountOfEciStateIsRefused() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let victim = try sandbox.makeBundle("r6-sub-victim", script: "exec sleep 4801") { Integration.RuntimeLocks.privileged(&$0) }
            #expect(try sandbox.runtimeDetached(["create", "--bundle", victim, "r6-sub-victim"]).status == 0)
            defer { A.delete(sandbox, "r6-sub-victim") }

            let plain = sandbox.directory + "/share-plain"
            let holder = sandbox.directory + "/share-holder"
            for dir in [plain + "/sub", holder + "/sub"] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            let bound = try TestSupport.run(["/bin/mount", "--bind", sandbox.stateDirectory + "/containers", holder + "/sub"])
            #expect(bound.status == 0, "VM-side bind: \(bound.stderr)")

            // The neighbour: an rbind of a directory with nothing mounted below it.
            let neighbour = try sandbox.makeBundle("r6-sub-plain", script: "ls /share/sub > /out/ls; echo ok > /out/ran") {
                Integration.RuntimeLocks.privileged(&$0)
                Self.addMount(&$0, source: plain, destination: "/share")
            }
            let plainRun = try sandbox.runtime(["run", "--bundle", neighbour, "r6-sub-plain"])
            A.delete(sandbox, "r6-sub-plain")
            #expect(plainRun.status == 0 && (try? sandbox.output(neighbour, "ran")) == "ok", "rbind of a plain directory: \(plainRun.stderr)")

            let attacker = try sandbox.makeBundle("r6-sub-attacker", script: Self.forgeStatus(below: "/share/sub")) {
                Integration.RuntimeLocks.privileged(&$0)
                Self.addMount(&$0, source: holder, destination: "/share")
            }
            let run = try sandbox.runtime(["run", "--bundle", attacker, "r6-sub-attacker"])
            A.delete(sandbox, "r6-sub-attacker")
            let wrote = (try? sandbox.output(attacker, "wrote")) ?? "(not run)"
            print("AttackRound6.rbindCarryingAMountOfEciStateIsRefused: run \(run.status) \(run.stderr.prefix(300)) wrote: \(wrote)")
            #expect(run.status != 0 && run.stderr.contains("restricted host mount"), "an rbind carrying a mount of ECI's state directory: \(run.status) \(run.stderr)")
            #expect(!wrote.contains("wrote"), "a container wrote another container's status file through a submount: \(wrote)")
            try Self.expectVictimHolds(sandbox, "r6-sub-victim", marker: 4802)
        }

        /// Only the runc root *of the command* is restricted (`IsolatedRuntime.create`), and the
        /// default policy names Docker's and containerd's roots (`/run/docker`, `/run/containerd`)
        /// but not runc's own default `/run/runc` (Podman's, `ctr`'s with runc, a plain `runc`
        /// user's). A container created under one runc root binds another root's directory and gets
        /// its neighbours' runc state: `state.json` (0600, VM root's, idmapped so the container's
        /// root owns it) names the process `runc exec` joins (`init_process_pid`, which
        /// `eci-runc exec` also reads for its lock check) and the whole config an exec runs with
        /// (namespaces, capabilities, seccomp): rewriting it decides where the next exec of that
        /// neighbour lands. The neighbour: the command's own root stays refused (round 5's fix).
        /// Against 0e32200: ESCAPED when two runc roots share a host (plain host, no
        /// allowedBindRoots; in the VM every root lies under the policy's paths and outside the
        /// allowed roots). Fix idea: restrict every runc root ECI has seen (the range store's keys
        /// hold each live container's root) and runc's default `/run/runc`, or all of them through
        /// the policy's defaults. Since: both (`IsolatedRuntime.create` restricts every root of
        /// the range store's records; `/run/runc` is in the defaults and the image's policy).
        @Test func anotherRuncRootIsNoVolume() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let otherRoot = sandbox.directory + "/runc-root-b"
            let victim = try sandbox.makeBundle("r6-root-victim", script: "exec sleep 4811") { Integration.RuntimeLocks.privileged(&$0) }
            #expect(try sandbox.runtimeDetached(["create", "--bundle", victim, "r6-root-victim"]).status == 0)
            defer { A.delete(sandbox, "r6-root-victim") }
            #expect(FileManager.default.fileExists(atPath: sandbox.runcRoot + "/r6-root-victim/state.json"))

            // The neighbour: the command's own runc root is refused.
            let own = try sandbox.makeBundle("r6-root-own", script: "true") {
                Integration.RuntimeLocks.privileged(&$0)
                Self.addMount(&$0, source: sandbox.runcRoot, destination: "/runc")
            }
            let ownRun = try sandbox.runtime(["run", "--bundle", own, "r6-root-own"])
            A.delete(sandbox, "r6-root-own")
            #expect(ownRun.status != 0 && ownRun.stderr.contains("restricted host mount"), "the command's own runc root: \(ownRun.status) \(ownRun.stderr)")

            let script = "ls /runc > /out/ls 2>&1; for f in /runc/*/state.json; do printf '' >> $f 2>/dev/null && echo writable $f; grep -o init_process_pid $f; done > /out/wrote; echo done >> /out/wrote"
            let attacker = try sandbox.makeBundle("r6-root-attacker", script: script) {
                Integration.RuntimeLocks.privileged(&$0)
                Self.addMount(&$0, source: sandbox.runcRoot, destination: "/runc")
            }
            let run = try sandbox.runtime(["run", "--bundle", attacker, "r6-root-attacker"], globals: ["--root", otherRoot])
            _ = try? sandbox.runtime(["delete", "-f", "r6-root-attacker"], globals: ["--root", otherRoot])
            let wrote = (try? sandbox.output(attacker, "wrote")) ?? "(not run)"
            print("AttackRound6.anotherRuncRootIsNoVolume: run \(run.status) \(run.stderr.prefix(300)) wrote: \(wrote)")
            #expect(run.status != 0 && run.stderr.contains("restricted host mount"), "another runc root as a volume: \(run.status) \(run.stderr)")
            #expect(!wrote.contains("writable"), "a container under another runc root can rewrite its neighbour's runc state: \(wrote)")
        }

        /// Other spellings of the state directory and the runc root as bind sources: a symlink
        /// to the state directory, `..` through a bundle, `/proc/self/root/...`, a VM-side bind of
        /// the state directory elsewhere (another mount of the same file system), and the runc
        /// root when the command names it relatively, with `..` and a trailing slash, or through a
        /// symlink. Each is refused (`MountSources` resolves the opened source and its aliases;
        /// `runcRoot` resolves as runc does). The neighbour: `plain`, the same container without
        /// the bind, runs. Against 0e32200: BLOCKED.
        @Test(arguments: ["plain", "state-symlink", "state-dotdot", "state-proc-root", "state-alias-bind", "root-relative", "root-dotdot", "root-symlink"])
        func spelledStateAndRootStayRestricted(shape: String) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let id = "r6-spell-" + shape
            // Created once so the state directory and the runc root exist.
            let first = try sandbox.makeBundle("r6-spell-first", script: "true") { Integration.RuntimeLocks.privileged(&$0) }
            #expect(try sandbox.runtime(["run", "--bundle", first, "r6-spell-first"]).status == 0)
            A.delete(sandbox, "r6-spell-first")
            var source: String?
            var globals: [String] = []
            var cwd: String?
            let containers = sandbox.stateDirectory + "/containers"
            switch shape {
            case "state-symlink":
                try FileManager.default.createSymbolicLink(atPath: sandbox.directory + "/state-link", withDestinationPath: sandbox.stateDirectory)
                source = sandbox.directory + "/state-link/containers"
            case "state-dotdot": source = first + "/../state/containers"
            case "state-proc-root": source = "/proc/self/root" + containers
            case "state-alias-bind":
                let alias = sandbox.directory + "/state-alias"
                try FileManager.default.createDirectory(atPath: alias, withIntermediateDirectories: true)
                #expect(try TestSupport.run(["/bin/mount", "--bind", sandbox.stateDirectory, alias]).status == 0)
                source = alias + "/containers"
            case "root-relative":
                source = sandbox.runcRoot
                globals = ["--root", "runc-root"]
                cwd = sandbox.directory
            case "root-dotdot":
                source = sandbox.runcRoot
                globals = ["--root", sandbox.runcRoot + "/../runc-root/"]
            case "root-symlink":
                try FileManager.default.createSymbolicLink(atPath: sandbox.directory + "/root-link", withDestinationPath: sandbox.runcRoot)
                source = sandbox.runcRoot
                globals = ["--root", sandbox.directory + "/root-link"]
            default: break
            }
            let bundle = try sandbox.makeBundle(id, script: "ls /eci > /out/ls 2>&1; echo ok > /out/ran") {
                Integration.RuntimeLocks.privileged(&$0)
                if let source { Self.addMount(&$0, source: source, destination: "/eci") }
            }
            let run = try TestSupport.run([sandbox.eciRunc, "--root", sandbox.runcRoot] + globals + ["run", "--bundle", bundle, id], environment: sandbox.environment, directory: cwd)
            _ = try? TestSupport.run([sandbox.eciRunc, "--root", sandbox.runcRoot] + globals + ["delete", "-f", id], environment: sandbox.environment, directory: cwd)
            if source == nil {
                #expect(run.status == 0 && (try? sandbox.output(bundle, "ran")) == "ok", "the plain neighbour: \(run.stderr)")
            } else {
                let listing = (try? sandbox.output(bundle, "ls")) ?? "(not run)"
                #expect(run.status != 0 && run.stderr.contains("restricted host mount"), "\(shape): \(run.status) \(run.stderr) saw: \(listing)")
            }
        }

        /// A root process without CAP_SYS_ADMIN in a locked container (a `runc exec` naming fewer
        /// capabilities) tries every route through a user namespace of its own, where it holds
        /// every capability: (a) mount while still in the container's mount namespace (ecid's
        /// helper joins the caller's user namespace, the nested one, after its mount namespace:
        /// it must get the kernel's EPERM, not act with the nested namespace's capabilities);
        /// (b) mount in its own copy (made rshared) below a mount pid 1 made shared, hoping it propagates back (a tmpfs in its own copy works: the control);
        /// (c) setns back into pid 1's mount namespace from the nested user namespace and mount
        /// there; (d) unmount root's tmpfs from the nested namespace, in the container's mount
        /// namespace. None may change what the container's other processes see. The neighbour:
        /// root with CAP_SYS_ADMIN mounts below the shared mount, and the others see it.
        /// Against 0e32200: BLOCKED ((b) mounts in its own copy, as it may, and nothing propagates;
        /// a, c, d: EPERM. The kernel turns shared into slave mounts when it copies a
        /// mount namespace into a less privileged user namespace, and asks CAP_SYS_ADMIN over
        /// the owner of the target namespace).
        @Test func capabilityLessRootGainsNothingFromANestedUserNamespace() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r6-nested"
            let setup = "mkdir -p /mnt/shared /mnt/roottmp && mount -t tmpfs none /mnt/shared && mount --make-shared /mnt/shared && mkdir -p /mnt/shared/a /mnt/shared/b && mount -t tmpfs none /mnt/roottmp && touch /mnt/roottmp/kept; echo $? > /out/setup; exec sleep 4821"
            // CAP_SETFCAP (Docker's default set has it) lets root map its uid 0 into a user
            // namespace of its own (the kernel asks it of a map naming the parent's root).
            let withoutAdmin = L.withoutAdmin + ["CAP_SETFCAP"]
            let withAdmin = withoutAdmin + ["CAP_SYS_ADMIN"]
            let bundle = try sandbox.makeBundle(id, script: setup) { A.capabilities(&$0, withAdmin) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            let pid = try #require(try A.pid(of: "sleep 4821"))
            #expect(A.isLocked(pid))
            #expect(try sandbox.output(bundle, "setup") == "0", "pid 1's set-up failed: \(ecid.log().suffix(1500))")

            func exec(_ script: String, _ capabilities: [String]) throws -> TestSupport.Output {
                let process = bundle + "/exec-process.json"
                try L.rootProcess(script, capabilities: capabilities).write(to: URL(fileURLWithPath: process))
                return try sandbox.runtime(["exec", "--process", process, id])
            }
            let attempts = """
                unshare -r sh -c 'mount -t tmpfs none /etc' 2>/dev/null; echo a=$?
                unshare -r -m --propagation shared sh -c 'mount -t tmpfs none /mnt/shared/a && touch /mnt/shared/a/leak && grep -c " /mnt/shared/a " /proc/self/mountinfo' 2>&1; echo b=$?
                unshare -r -m sh -c 'mount -t tmpfs none /tmp && echo own-copy-mounts' 2>&1
                unshare -r sh -c 'nsenter -t 1 -m mount -t tmpfs none /etc' 2>/dev/null; echo c=$?
                unshare -r sh -c 'umount /mnt/roottmp || umount -l /mnt/roottmp' 2>/dev/null; echo d=$?
                """
            let attack = try exec(attempts, withoutAdmin)
            print("AttackRound6.capabilityLessRootGainsNothingFromANestedUserNamespace: \(attack.stdout) \(attack.stderr)")
            #expect(attack.stdout.contains("own-copy-mounts"), "the nested user namespace's own copy must take mounts (else the attempts prove nothing): \(attack.stdout)")
            #expect(attack.stdout.contains("d="), "the attempts did not run: \(attack.stdout) \(attack.stderr)")
            for refused in ["a=0", "c=0", "d=0"] {
                #expect(!attack.stdout.contains(refused), "root without CAP_SYS_ADMIN through a nested user namespace: \(refused): \(attack.stdout) \(ecid.log().suffix(1500))")
            }
            // What pid 1 sees afterwards, from the VM side (no filter): its /etc, root's tmpfs, no leak.
            let seen = try TestSupport.run(["/usr/bin/nsenter", "-t", "\(pid)", "-m", "--", "/bin/sh", "-c",
                "cat /etc/passwd | head -1; ls /mnt/roottmp; ls /mnt/shared/a; grep -c ' /mnt/shared/a ' /proc/self/mountinfo"])
            #expect(seen.stdout.hasPrefix("root:x:0:0"), "/etc changed for the container: \(seen.stdout)")
            #expect(seen.stdout.contains("kept"), "root's tmpfs was unmounted: \(seen.stdout)")
            #expect(!seen.stdout.contains("leak"), "a mount in a nested user namespace's copy propagated into the container's namespace: \(seen.stdout)")

            // The neighbour: with CAP_SYS_ADMIN, root mounts below the shared mount and pid 1 sees it.
            let legit = try exec("mount -t tmpfs none /mnt/shared/b && touch /mnt/shared/b/mine; echo legit=$?", withAdmin)
            #expect(legit.stdout.contains("legit=0"), "root with CAP_SYS_ADMIN: \(legit.stdout) \(legit.stderr) \(ecid.log().suffix(1500))")
            let mine = try TestSupport.run(["/usr/bin/nsenter", "-t", "\(pid)", "-m", "--", "/bin/ls", "/mnt/shared/b"])
            #expect(mine.stdout.contains("mine"), "pid 1 does not see root's mount: \(mine.stdout)")
        }

        /// `docker exec --privileged`'s shape (`runc exec --cap CAP_SYS_ADMIN`, root, with its
        /// capabilities named) into a locked container whose program is uid 1000 with
        /// CAP_SYS_ADMIN only in its bounding set (locked: it may gain it; eci-init was granted
        /// capabilities). The exec holds CAP_SYS_ADMIN in the locked namespace: it must still
        /// meet the kernel's locks (no unmount of a mask or of /proc, no writable /proc/sys) and
        /// ecid's traps (no bind over /proc/keys' mask's place hidden), while its own tmpfs works.
        /// Also the grant: an exec of the same shape without `--process` is refused.
        /// Against 0e32200: BLOCKED.
        @Test func privilegedExecIntoAGrantedContainerMeetsTheLocks() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r6-privexec"
            let bundle = try sandbox.makeBundle(id, script: "exec sleep 4831") { GrantAttacks.nonRootWithAdminInBounding(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            let pid = try #require(try A.pid(of: "sleep 4831"))
            #expect(A.isLocked(pid))

            let bare = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", id, "true"])
            #expect(bare.status != 0 && bare.stderr.contains("names no capabilities"), "a granted container's exec without --process: \(bare.status) \(bare.stderr)")

            let process = bundle + "/exec-process.json"
            let attempts = """
                umount /proc/keys 2>/dev/null; echo keys=$?
                umount -l /proc 2>/dev/null; echo proc=$?
                mount -o remount,bind,rw /proc/sys 2>/dev/null; echo sys=$?
                mkdir -p /tmp/own && mount -t tmpfs none /tmp/own; echo own=$?
                """
            try L.rootProcess(attempts, capabilities: L.withAdmin).write(to: URL(fileURLWithPath: process))
            let attack = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", "--process", process, id])
            print("AttackRound6.privilegedExecIntoAGrantedContainerMeetsTheLocks: \(attack.stdout) \(attack.stderr)")
            for refused in ["keys=0", "proc=0", "sys=0"] {
                #expect(!attack.stdout.contains(refused), "the privileged exec: \(refused): \(attack.stdout) \(attack.stderr)")
            }
            #expect(attack.stdout.contains("own=0"), "the privileged exec's own tmpfs: \(attack.stdout) \(attack.stderr) \(ecid.log().suffix(1500))")
        }
    }
}
