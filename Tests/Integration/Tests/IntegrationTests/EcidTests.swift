import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// ecid supervising real runc containers through eci-runc: the container's initial mounts
    /// attacked by container root with CAP_SYS_ADMIN, next to the mounts that must keep working;
    /// and what a container meets when ecid is killed.
    @Suite struct Ecid {
        /// ecid in the foreground on the sandbox's state directory, its log in a file.
        final class Daemon {
            let process = Process()
            let logPath: String

            init(sandbox: RuntimeSandbox, name: String = "ecid", holderGrace: Double = 10, environment: [String: String] = [:]) throws {
                logPath = sandbox.directory + "/\(name).log"
                FileManager.default.createFile(atPath: logPath, contents: nil)
                let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
                process.executableURL = URL(fileURLWithPath: try TestSupport.binary("ecid"))
                process.arguments = ["--state-dir", sandbox.stateDirectory, "--holder-grace", "\(holderGrace)", "--debug"]
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
                process.standardInput = FileHandle.nullDevice
                process.standardOutput = log
                process.standardError = log
                try process.run()
                try log.close()
                // A restarted ecid listens once it has re-attached its predecessor's fds: its log says so.
                for _ in 0..<200 where !self.log().contains("listening") { usleep(50_000) }
                guard self.log().contains("listening") else { throw TestFailure("ecid did not listen: \(self.log())") }
            }

            func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

            func kill(_ signal: Int32 = SIGTERM) {
                guard process.isRunning else { return }
                Glibc.kill(process.processIdentifier, signal)
                process.waitUntilExit()
            }
        }

        /// A container run by eci-runc on a thread of its own, with the file handshakes these
        /// tests use: wait for one of its output files, tell it to go on, wait until it is gone.
        struct BackgroundContainer {
            let sandbox: RuntimeSandbox
            let bundle: String
            let id: String

            init(_ sandbox: RuntimeSandbox, bundle: String, id: String) {
                self.sandbox = sandbox
                self.bundle = bundle
                self.id = id
                Thread { _ = try? sandbox.runtime(["run", "--bundle", bundle, id]) }.start()
            }

            /// Waits (50 ms steps) until `out/NAME` exists.
            func waitFor(_ name: String, tries: Int = 200) {
                for _ in 0..<tries where !FileManager.default.fileExists(atPath: bundle + "/out/" + name) { usleep(50_000) }
            }

            /// Creates `out/go`, which the container's script waits for.
            func go() { _ = FileManager.default.createFile(atPath: bundle + "/out/go", contents: nil) }

            /// Waits until runc no longer knows the container.
            func waitUntilGone() throws {
                for _ in 0..<100 where try sandbox.runtime(["state", id]).status == 0 { usleep(50_000) }
            }
        }

        /// The mount points now, less this sandbox's emulation file system: ecid's own mount for
        /// as long as it (or, after it, its fd holder) serves, not one a test left behind.
        static func mountPoints(besidesEcidOf sandbox: RuntimeSandbox) throws -> [String] {
            try TestSupport.mountPoints().filter { $0 != sandbox.stateDirectory + "/emulation" }
        }

        /// The fd holder of this sandbox (its command line names the sandbox's directory).
        static func holderRunning(_ sandbox: RuntimeSandbox) throws -> Bool {
            try TestSupport.sh("pgrep -f '[f]d-holder --dir \(sandbox.stateDirectory)/ecid'").status == 0
        }

        /// Waits (at most `seconds`) for the holder to be gone: no process may be left behind.
        static func holderGone(_ sandbox: RuntimeSandbox, within seconds: Double) throws -> Bool {
            for _ in 0..<Int(seconds * 20) where try holderRunning(sandbox) { usleep(50_000) }
            return try !holderRunning(sandbox)
        }

        static func waitFor(_ path: String, seconds: Double = 10, _ condition: (String) -> Bool = { _ in true }) -> Bool {
            for _ in 0..<Int(seconds * 20) {
                if let text = try? String(contentsOfFile: path, encoding: .utf8), condition(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return true }
                usleep(50_000)
            }
            return false
        }

        /// A mount/umount loop until /out/stop, then attacks on the initial mounts and one own mount.
        static let mountLoop = """
            mkdir -p /mnt; i=0
            while [ ! -e /out/stop ] && [ $i -lt 100000 ]; do
                mount -t tmpfs none /mnt 2>>/out/errors || echo "mount $i" >> /out/fails
                umount /mnt 2>>/out/errors || echo "umount $i" >> /out/fails
                i=$((i+1)); echo $i > /out/progress
            done
            umount /proc 2>/dev/null; echo $? > /out/umount-proc
            umount -l /proc/kcore 2>/dev/null; echo $? > /out/umount-kcore
            mount -o remount,bind,rw /ro 2>/dev/null; echo $? > /out/remount-ro
            mount -t tmpfs none /proc/sys 2>/dev/null; echo $? > /out/cover-proc-sys
            mount -t tmpfs none /mnt && umount /mnt; echo $? > /out/own-tmpfs
            echo done > /out/done
            """

        static func privilegedWithReadOnlyBind(_ sandbox: RuntimeSandbox, _ config: inout [String: Any], locked: Bool = true) {
            if locked { RuntimeLocks.privileged(&config) } else { RuntimeLocks.privilegedWithoutSysAdmin(&config) }
            RuntimeLocks.addMount(&config, ["destination": "/ro", "type": "bind", "source": sandbox.directory + "/shared", "options": ["rbind", "ro"]])
        }

        /// The kernel's layer under ecid's traps (eci-init): a container that starts as root with
        /// CAP_SYS_ADMIN runs in a mount namespace owned by a nested user namespace, so every
        /// mount runc made is locked. Checked from the VM side with nsenter, which no seccomp
        /// filter of the container's covers: root of the container's user namespace, in its mount
        /// namespace, still cannot unmount a mask or /proc, or clear ro on a read-only bind
        /// (the kernel refuses; ecid never sees these calls), while a tmpfs of its own mounts
        /// and unmounts. Inside: the program is pid 1 (eci-init exec'd it), in the container's
        /// own user namespace (its ID map, its hostname and network devices still its own), a
        /// fresh procfs still gets its masks (ecid builds it outside the locked namespace) and
        /// they are locked as well (not unmounted, not bound away, not made writable), and
        /// `runc exec` joins the locked namespace.
        @Test func runtimeMountsAreLockedByTheKernel() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                tr '\\0' ' ' < /proc/1/cmdline > /out/cmdline
                cat /proc/self/uid_map | tr -s ' ' > /out/uid-map
                readlink /proc/1/ns/mnt > /out/mntns
                hostname locked-test; echo $? > /out/hostname
                ip link set lo up; echo $? > /out/link
                mkdir -p /fresh; mount -t proc proc /fresh; echo $? > /out/fresh
                if [ -c /fresh/keys ]; then echo masked; else echo unmasked; fi > /out/fresh-view
                touch /out/ready
                while [ ! -e /out/go ]; do sleep 0.05; done
                umount -l /fresh; echo $? > /out/fresh-umount
                """
            let bundle = try sandbox.makeBundle("locked", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-locked")
            // A failed expectation below must not leave it waiting for `go` forever.
            defer { _ = try? sandbox.runtime(["kill", "ecid-locked", "KILL"]) }
            container.waitFor("ready")
            #expect(try sandbox.output(bundle, "cmdline").hasPrefix("/bin/sh"), "pid 1 is not the program")
            let uidMap = try sandbox.output(bundle, "uid-map")
            #expect(uidMap.hasPrefix("0 "), "not the container's own ID map: \(uidMap)")
            #expect(try sandbox.output(bundle, "hostname") == "0")
            #expect(try sandbox.output(bundle, "link") == "0", "no longer admin of its network namespace")
            #expect(try sandbox.output(bundle, "fresh") == "0", "a fresh procfs: \(ecid.log())")
            #expect(try sandbox.output(bundle, "fresh-view") == "masked", "\(ecid.log())")
            let state = try sandbox.runtime(["state", "ecid-locked"])
            let pid = try #require(
                (try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [String: Any])?["pid"] as? Int, "runc state: \(state.stdout) \(state.stderr)")
            // nsenter -U makes it uid 0 of the container's user namespace, with every capability there
            // (-p: in its pid namespace, so /proc/self, and with it /proc/mounts, exist).
            func inside(_ command: String) throws -> TestSupport.Output {
                try TestSupport.run(["/usr/bin/nsenter", "-t", "\(pid)", "-U", "-m", "-p", "--", "/bin/sh", "-c", command])
            }
            // The fresh procfs ecid made: its masks are locked too (the helper's lock pass).
            for attack in [
                "umount /proc/keys", "umount -l /proc", "mount -o remount,bind,rw /ro", "umount -l /ro", "umount /fresh/keys",
                "mkdir -p /x && mount --bind /fresh /x", "mount -o remount,bind,rw /fresh/sys",
            ] {
                let result = try inside(attack)
                #expect(result.status != 0, "the kernel allowed `\(attack)`")
                // EINVAL (locked), EPERM (a locked flag); busybox words EPERM "permission denied".
                #expect(["Invalid argument", "Operation not permitted", "permission denied"].contains { result.stderr.contains($0) }, "\(attack): \(result.stderr)")
            }
            let own = try inside("mkdir -p /mnt && mount -t tmpfs none /mnt && umount /mnt && echo ok")
            #expect(own.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok", "\(own.stderr)")
            let exec = try sandbox.runtime(["exec", "ecid-locked", "readlink", "/proc/self/ns/mnt"])
            #expect(exec.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == (try sandbox.output(bundle, "mntns")), "runc exec: \(exec.stderr)")
            container.go()
            try container.waitUntilGone()
            #expect(try sandbox.output(bundle, "fresh-umount") == "0", "the fresh procfs unmounted whole")
            #expect(ecid.process.isRunning, "ecid died: \(ecid.log())")
            #expect(try Self.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
        }

        /// `runc start` (what containerd-shim runs for `docker start`) returns only once the
        /// container's first process runs locked: an exec sent right after joins the locked
        /// namespace, never the one eci-init is leaving.
        @Test func execRightAfterStartJoinsTheLockedNamespace() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle("locked-start", script: "sleep 30") { RuntimeLocks.privileged(&$0) }
            #expect(try sandbox.runtimeDetached(["create", "--bundle", bundle, "ecid-locked-start"]).status == 0)
            defer {
                _ = try? sandbox.runtime(["kill", "ecid-locked-start", "KILL"])
                for _ in 0..<100 where (try? sandbox.runtime(["delete", "ecid-locked-start"]))?.status != 0 { usleep(50_000) }
            }
            let started = try sandbox.runtime(["start", "ecid-locked-start"])
            #expect(started.status == 0, "\(started.stderr)")
            let exec = try sandbox.runtime(["exec", "ecid-locked-start", "sh", "-c", "readlink /proc/self/ns/mnt; readlink /proc/1/ns/mnt"])
            let links = exec.stdout.split(separator: "\n").map(String.init)
            #expect(links.count == 2 && links[0] == links[1], "exec: \(exec.stdout) \(exec.stderr)")
            // Pid 1's mount namespace is owned by a child of its user namespace (eci-init's copy).
            #expect(EciInitAttacks.isLocked(try Self.initPid(sandbox, "ecid-locked-start")), "pid 1 does not run in eci-init's copy")
            #expect(ecid.process.isRunning, "ecid died: \(ecid.log())")
        }

        /// Each rule both ways, in a container whose mounts eci-init locks (`locked`: unmounts
        /// and bind remounts are the kernel's to refuse and never reach ecid; the rest is
        /// trapped) and, not locked, from a `runc exec --cap CAP_SYS_ADMIN` into a container
        /// that started without it (every call trapped: ecid alone).
        @Test(arguments: [true, false])
        func initialMountsAreImmutableAndOwnMountsWork(locked: Bool) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            // Each attempt writes its exit status; the neighbours that must work write theirs too.
            let script = """
                mkdir -p /mnt
                grep Seccomp: /proc/self/status | tr -d '\\t' > /out/seccomp
                umount /proc 2>/dev/null; echo $? > /out/umount-proc
                umount -l /proc/kcore 2>/dev/null; echo $? > /out/umount-kcore
                mount -o remount,bind,rw /ro 2>/dev/null; echo $? > /out/remount-ro
                mount -t tmpfs none /proc/sys 2>/dev/null; echo $? > /out/cover-proc-sys
                mount --bind /proc /x 2>/dev/null; echo $? > /out/bind-proc
                mount -t tmpfs -o size=1m none /mnt && echo hi > /mnt/f && cat /mnt/f > /out/tmpfs-content
                mount -o remount,bind,ro /mnt; echo $? > /out/remount-own-ro
                touch /mnt/x 2>/dev/null; echo $? > /out/write-own-ro
                mount -o remount,bind,rw /mnt; echo $? > /out/remount-own-rw
                mount -o remount,ro /mnt; echo $? > /out/busybox-remount-ro
                mount -o remount,rw /mnt; echo $? > /out/busybox-remount-rw
                mkdir -p /mnt/a /mnt/b && mount --bind /mnt/a /mnt/b; echo $? > /out/bind-own
                umount /mnt/b; umount /mnt; echo $? > /out/umount-own
                su -s /bin/sh nobody -c 'mount -t tmpfs none /mnt 2>/dev/null; echo $?; id -u' > /out/nobody
                mount -t tmpfs none /mnt && umount /mnt; echo $? > /out/root-after-nobody
                mkdir -p /fp /fs /x
                mount -t proc proc /fp; echo $? > /out/fresh-proc
                grep -o ' /fp[^ ]* ' /proc/self/mountinfo | tr -d ' ' | sort | tr '\n' ' ' > /out/fresh-proc-mounts
                ls -d /fp/[0-9]* | wc -l > /out/fresh-proc-pids
                for p in kcore keys timer_list bus sys irq sysrq-trigger fs acpi; do [ -e /proc/$p ] && echo /fp/$p; done | tr '\n' ' ' > /out/fresh-proc-expected
                grep ' /fp/bus ' /proc/self/mountinfo | grep -c ' ro,' > /out/fresh-proc-bus-ro
                for p in keys timer_list bus sys; do umount -l /fp/$p 2>/dev/null; echo "$p $?"; done > /out/fresh-proc-umount-masks
                mount -t tmpfs none /fp/keys 2>/dev/null; echo $? > /out/fresh-proc-cover-keys
                mount --bind /fp /x 2>/dev/null; echo $? > /out/fresh-proc-bind
                mount --rbind /fp /x; echo $? > /out/fresh-proc-rbind
                grep -c ' /x/keys ' /proc/self/mountinfo > /out/fresh-proc-rbind-keys
                umount -l /x; umount -l /fp; echo $? > /out/fresh-proc-umount
                mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /fs; echo $? > /out/fresh-sysfs
                grep -c ' /fs/firmware ' /proc/self/mountinfo > /out/fresh-sysfs-firmware
                ls /fs/firmware | wc -l > /out/fresh-sysfs-firmware-entries
                umount -l /fs/firmware 2>/dev/null; echo $? > /out/fresh-sysfs-umount-firmware
                umount -l /fs; echo $? > /out/fresh-sysfs-umount
                echo done > /out/done
                """
            let bundle = try sandbox.makeBundle("ecid", script: locked ? script : "sleep 600") { Self.privilegedWithReadOnlyBind(sandbox, &$0, locked: locked) }
            if locked {
                let result = try sandbox.runtime(["run", "--bundle", bundle, "ecid-1"])
                #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
            } else {
                #expect(try sandbox.runtimeDetached(["create", "--bundle", bundle, "ecid-1"]).status == 0)
                defer {
                    _ = try? sandbox.runtime(["kill", "ecid-1", "KILL"])
                    for _ in 0..<100 where (try? sandbox.runtime(["delete", "ecid-1"]))?.status != 0 { usleep(50_000) }
                }
                #expect(try sandbox.runtime(["start", "ecid-1"]).status == 0)
                let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", "ecid-1", "sh", "-c", script])
                #expect(exec.status == 0, "runc exec failed: \(exec.stderr)")
                #expect(!EciInitAttacks.isLocked(try Self.initPid(sandbox, "ecid-1")), "started locked, though without CAP_SYS_ADMIN")
            }
            #expect(try sandbox.output(bundle, "done") == "done")
            #expect(try sandbox.output(bundle, "seccomp") == "Seccomp:2", "the trap filter is loaded (the spec had none)")
            for refused in ["umount-proc", "umount-kcore", "remount-ro", "cover-proc-sys", "bind-proc"] {
                #expect(try sandbox.output(bundle, refused) != "0", "\(refused) succeeded")
            }
            #expect(try sandbox.output(bundle, "tmpfs-content") == "hi")
            // busybox's plain `remount,ro` passes back the uid=/gid= /proc/mounts shows in the
            // VM's IDs: EINVAL under plain runc with a user namespace, works under ecid.
            for works in ["remount-own-ro", "remount-own-rw", "busybox-remount-ro", "busybox-remount-rw", "bind-own", "umount-own"] {
                #expect(try sandbox.output(bundle, works) == "0", "\(works) failed")
            }
            #expect(try sandbox.output(bundle, "write-own-ro") != "0", "the remount to read-only took")
            // The helper acts with each caller's credentials and returns to its own: an
            // unprivileged caller is refused by the kernel, root's next call works.
            let nobody = try sandbox.output(bundle, "nobody").split(separator: "\n")
            #expect(nobody.count == 2 && nobody[0] != "0" && nobody[1] == "65534", "a caller without CAP_SYS_ADMIN mounted: \(nobody)")
            #expect(try sandbox.output(bundle, "root-after-nobody") == "0")
            // A fresh procfs and sysfs: made, with the spec's masks and read-only paths on before
            // they were visible, showing the container's own processes; the masks stay.
            for works in ["fresh-proc", "fresh-proc-rbind", "fresh-proc-umount", "fresh-sysfs"] {
                #expect(try sandbox.output(bundle, works) == "0", "\(works) failed: \(ecid.log().split(separator: "\n").filter { $0.contains("refused") })")
            }
            let freshMounts = try sandbox.output(bundle, "fresh-proc-mounts")
            // The spec's masks and read-only paths the kernel has (this host may lack kcore).
            let expectedMasks = try sandbox.output(bundle, "fresh-proc-expected").split(separator: " ")
            #expect(expectedMasks.contains("/fp/keys") && expectedMasks.contains("/fp/timer_list"))
            for mask in expectedMasks {
                #expect(freshMounts.split(separator: " ").contains(Substring(mask)), "\(mask) is not masked: \(freshMounts)")
            }
            #expect(try sandbox.output(bundle, "fresh-proc-bus-ro") == "1", "/fp/bus is not read-only")
            #expect(Int(try sandbox.output(bundle, "fresh-proc-pids")) ?? 99 < 10, "the fresh procfs shows the VM's processes")
            #expect(try sandbox.output(bundle, "fresh-proc-umount-masks") == "keys 1\ntimer_list 1\nbus 1\nsys 1", "a mask came off")
            #expect(try sandbox.output(bundle, "fresh-proc-cover-keys") != "0")
            #expect(try sandbox.output(bundle, "fresh-proc-bind") != "0", "a bind without the masks")
            #expect(try sandbox.output(bundle, "fresh-proc-rbind-keys") == "1", "rbind carries the masks")
            #expect(try sandbox.output(bundle, "fresh-sysfs-firmware") == "1")
            #expect(try sandbox.output(bundle, "fresh-sysfs-firmware-entries") == "0")
            #expect(try sandbox.output(bundle, "fresh-sysfs-umount-firmware") != "0")
            let log = ecid.log()
            if locked {
                // The kernel refused the unmounts and the bind remount; ecid never saw them. A
                // fresh sysfs is the caller's to unmount whole (its masks stay, locked).
                #expect(try sandbox.output(bundle, "fresh-sysfs-umount") == "0")
                #expect(!log.contains("/proc is one of the container's protected mounts"), "an unmount reached ecid: \(log)")
                #expect(!log.contains("/ro started read-only"), "a bind remount reached ecid: \(log)")
            } else {
                // sysfs has one superblock per net namespace: a fresh one in the container's own
                // is the same file system and root as its /sys, so ecid counts it as a copy of
                // /sys and keeps it.
                #expect(try sandbox.output(bundle, "fresh-sysfs-umount") != "0")
                #expect(log.contains("/proc is one of the container's protected mounts"), "refused by ecid, not by chance: \(log)")
                #expect(log.contains("/ro started read-only"), "\(log)")
            }
            #expect(log.contains("a mount on /proc/sys would cover") || log.contains("/proc/sys is one of the container's protected mounts"), "covering refused by ecid: \(log)")
            #expect(log.contains("\"status\":\"creating\""), "runc's hand-over is logged")
            // Every call came from one pair of namespaces: one long-lived helper served them all,
            // and it ended with the container, while ecid runs on.
            #expect(log.components(separatedBy: "mount helper started").count - 1 == 1, "\(log)")
            #expect(Self.helpersGone(of: ecid), "a helper outlived its container")
            ecid.kill()
            #expect(try Self.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
            #expect(try TestSupport.sh("pgrep -f '[e]cid mount-helper'").status != 0, "a helper was left behind")
        }

        /// The VM pid of container `id`'s first process (runc state).
        static func initPid(_ sandbox: RuntimeSandbox, _ id: String) throws -> Int32 {
            let state = try sandbox.runtime(["state", id])
            let pid = try #require((try JSONSerialization.jsonObject(with: Data(state.stdout.utf8)) as? [String: Any])?["pid"] as? Int)
            return Int32(pid)
        }

        /// Whether ecid has no `mount-helper` child left, nor an unreaped child, waiting up to
        /// 3 s for them to exit.
        static func helpersGone(of ecid: Daemon) -> Bool {
            let pid = ecid.process.processIdentifier
            for _ in 0..<60 {
                let left = try? TestSupport.sh("ps -o stat=,args= --ppid \(pid) | grep -e '^Z' -e 'mount-helper'")
                if left?.status == 1 { return true }
                usleep(50_000)
            }
            return false
        }

        /// A helper killed between two calls: the next call gets a new one and works.
        @Test func aDeadHelperIsReplaced() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                mkdir -p /mnt; mount -t tmpfs none /mnt && umount /mnt && echo ok > /out/before
                while [ ! -e /out/go ]; do sleep 0.05; done
                mount -t tmpfs none /mnt; echo $? > /out/after
                umount /mnt; echo $? > /out/after-umount
                """
            let bundle = try sandbox.makeBundle("dead-helper", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-dead-helper")
            container.waitFor("before")
            #expect(try sandbox.output(bundle, "before") == "ok")
            let helpers = try TestSupport.sh("pgrep -P \(ecid.process.processIdentifier) -f '[e]cid mount-helper'").stdout.split(separator: "\n").compactMap { Int32($0) }
            #expect(helpers.count == 1, "one helper for the container: \(helpers)")
            for pid in helpers { Glibc.kill(pid, SIGKILL) }
            container.go()
            container.waitFor("after-umount")
            #expect(try sandbox.output(bundle, "after") == "0", "\(ecid.log())")
            #expect(try sandbox.output(bundle, "after-umount") == "0")
            try container.waitUntilGone()
            #expect(Self.helpersGone(of: ecid))
            #expect(ecid.process.isRunning)
        }

        /// A helper unused for ECI_ECID_HELPER_IDLE seconds is retired while its container runs
        /// (memory goes to containers that mount), and the container's next call starts one again.
        @Test func idleHelpersAreRetired() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox, environment: ["ECI_ECID_HELPER_IDLE": "0.5"])
            defer { ecid.kill() }
            let script = """
                mkdir -p /mnt; mount -t tmpfs none /mnt && umount /mnt && echo ok > /out/before
                while [ ! -e /out/go ]; do sleep 0.05; done
                mount -t tmpfs none /mnt; echo $? > /out/after
                umount /proc/kcore 2>/dev/null; echo $? > /out/after-attack
                umount /mnt; echo $? > /out/after-umount
                """
            let bundle = try sandbox.makeBundle("idle-helper", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-idle-helper")
            container.waitFor("before")
            #expect(try sandbox.output(bundle, "before") == "ok")
            func live() throws -> Int {
                try TestSupport.sh("pgrep -P \(ecid.process.processIdentifier) -f '[e]cid mount-helper'").stdout.split(separator: "\n").count
            }
            for _ in 0..<100 where try live() > 0 { usleep(50_000) }
            #expect(try live() == 0, "the idle helper was retired while its container runs")
            container.go()
            container.waitFor("after-umount")
            #expect(try sandbox.output(bundle, "after") == "0", "\(ecid.log())")
            #expect(try sandbox.output(bundle, "after-attack") != "0", "a new helper vets as the first did")
            #expect(try sandbox.output(bundle, "after-umount") == "0")
            #expect(ecid.log().components(separatedBy: "mount helper started").count - 1 == 2)
            try container.waitUntilGone()
            #expect(Self.helpersGone(of: ecid))
        }

        /// Each new mount namespace gets a helper of its own, in its own view (its tmpfs lands
        /// there, not in the container's); at most 8 live per container, the oldest closed first.
        @Test func helpersPerNamespaceAreBounded() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                mkdir -p /mnt
                for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
                  unshare -m sh -c 'mount -t tmpfs none /mnt && touch /mnt/in-$0 && umount /mnt && echo ok' $i
                done > /out/namespaces
                ls /mnt | wc -l > /out/leaked
                mount -t tmpfs none /mnt; echo $? > /out/own
                echo looped > /out/looped
                while [ ! -e /out/go ]; do sleep 0.05; done
                """
            let bundle = try sandbox.makeBundle("bounded", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-bounded")
            container.waitFor("looped", tries: 300)
            #expect(try sandbox.output(bundle, "namespaces").split(separator: "\n").count == 12, "\(ecid.log())")
            #expect(try sandbox.output(bundle, "leaked") == "0")
            #expect(try sandbox.output(bundle, "own") == "0")
            let live = try TestSupport.sh("pgrep -c -P \(ecid.process.processIdentifier) -f '[e]cid mount-helper'").stdout
            #expect((Int(live.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99) <= 8, "\(live) helpers")
            #expect(ecid.log().components(separatedBy: "mount helper started").count - 1 == 13)
            container.go()
            try container.waitUntilGone()
            #expect(Self.helpersGone(of: ecid))
        }

        /// The project's escape program, its mount attacks included, in a privileged container
        /// under ecid: every mount attack is blocked; the fresh procfs and sysfs it makes come
        /// with their masks (or are refused by the kernel), never showing what they hide.
        @Test func escapeProgramMountAttacks() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle("escape", script: "/bin/escape-attempts --mount-attacks /ro > /out/report 2>&1; echo done > /out/done") {
                Self.privilegedWithReadOnlyBind(sandbox, &$0)
            }
            let built = try TestSupport.run([
                "/usr/bin/cc", "-static", "-O2", "-o", bundle + "/rootfs/bin/escape-attempts", TestSupport.repositoryRoot + "/Tests/Fixtures/escape-attempts.c",
            ])
            #expect(built.status == 0, "cc: \(built.stderr)")
            let result = try sandbox.runtime(["run", "--bundle", bundle, "ecid-escape"])
            #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
            let report = try sandbox.output(bundle, "report")
            let mountAttacks = [
                "remount-ro-bind", "remount-ro-path", "cover-proc-sys", "bind-proc-without-masks", "unmask-kcore", "read-kcore", "unmask-keys", "unmask-timer-list",
                "unmask-sys-firmware", "fresh-procfs", "fresh-sysfs", "umount-sys", "umount-proc", "move-proc",
            ]
            for line in report.split(separator: "\n") where line.hasPrefix("ESCAPED") {
                let name = line.dropFirst("ESCAPED ".count).prefix { $0 != ":" }
                #expect(!mountAttacks.contains(String(name)), "\(line)")
            }
            #expect(report.contains("BLOCKED fresh-procfs: a new procfs, with kcore, keys, timer_list and sched_debug masked"), "\(report)")
            #expect(report.contains("BLOCKED fresh-sysfs"), "\(report)")
        }

        /// The read-only paths of a fresh procfs (ro binds the helper puts on) stay read-only,
        /// remounted in place or bound elsewhere first, as /proc/sys does; the fresh procfs's own
        /// root and own binds stay the caller's to remount and unmount.
        @Test func freshProcReadOnlyPathsStayReadOnly() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                mkdir -p /fp /x /y
                mount -t proc proc /fp; echo $? > /out/fresh
                grep ' /fp/sys ' /proc/self/mountinfo | grep -c ' ro,' > /out/fresh-sys-ro
                mount -o remount,bind,rw /fp/sys 2>/dev/null; echo $? > /out/remount-fresh-sys
                mount -o remount,rw /fp/sys 2>/dev/null; echo $? > /out/sb-remount-fresh-sys
                mount --bind /fp/sys /x; echo $? > /out/bind-fresh-sys
                mount -o remount,bind,rw /x 2>/dev/null; echo $? > /out/remount-bind-fresh-sys
                mount --bind /fp/sys/kernel /y; mount -o remount,bind,rw /y 2>/dev/null; echo $? > /out/remount-bind-fresh-sys-kernel
                grep -E ' /(fp/sys|x|y) ' /proc/self/mountinfo | grep -c ' rw,' > /out/rw-count
                mount -o remount,bind,nosuid,ro /x; echo $? > /out/remount-keeping-ro
                umount /x; umount /y; echo $? > /out/umount-own-binds
                mount -o remount,bind,ro /fp && mount -o remount,bind,rw /fp; echo $? > /out/remount-fresh-root
                umount -l /fp; echo $? > /out/umount-fresh
                """
            let bundle = try sandbox.makeBundle("freshro", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let result = try sandbox.runtime(["run", "--bundle", bundle, "ecid-freshro"])
            #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
            let expected = [
                "fresh": "0", "fresh-sys-ro": "1", "remount-fresh-sys": "1", "sb-remount-fresh-sys": "1", "bind-fresh-sys": "0",
                "remount-bind-fresh-sys": "1", "remount-bind-fresh-sys-kernel": "1", "rw-count": "0", "remount-keeping-ro": "0",
                "umount-own-binds": "0", "remount-fresh-root": "0", "umount-fresh": "0",
            ]
            for (name, value) in expected {
                #expect(try sandbox.output(bundle, name) == value, "\(name): \((try? sandbox.output(bundle, name)) ?? "missing")\n\(ecid.log().suffix(2000))")
            }
        }

        /// `Tests/Fixtures/ecid-jail.c`: container root chrooted below its root names the
        /// container's /proc and read-only bind through a cwd left outside the jail or a
        /// /proc/PID/root magic link, where the jail's mountinfo does not list them. Nothing is
        /// unmasked, made writable or covered; mounts inside the jail keep working.
        @Test func chrootedCallerCannotReachUnlistedMounts() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle("jail", script: "/bin/ecid-jail /ro > /out/report 2>&1; echo done > /out/done") {
                Self.privilegedWithReadOnlyBind(sandbox, &$0)
                // Docker's default set has CAP_SYS_CHROOT; --privileged has every capability.
                guard var process = $0["process"] as? [String: Any], var caps = process["capabilities"] as? [String: [String]] else { return }
                for set in ["bounding", "effective", "permitted"] { caps[set, default: []] += ["CAP_SYS_CHROOT", "CAP_SYS_PTRACE"] }
                process["capabilities"] = caps
                $0["process"] = process
            }
            let built = try TestSupport.run([
                "/usr/bin/cc", "-static", "-O2", "-pthread", "-o", bundle + "/rootfs/bin/ecid-jail", TestSupport.repositoryRoot + "/Tests/Fixtures/ecid-jail.c",
            ])
            #expect(built.status == 0, "cc: \(built.stderr)")
            let result = try sandbox.runtime(["run", "--bundle", bundle, "ecid-jail"])
            #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
            let report = try sandbox.output(bundle, "report")
            for name in ["jail-cwd-bind-proc", "jail-link-umount-timer-list", "jail-link-umount-keys", "jail-link-remount-ro-rw", "jail-link-cover-proc", "swap-race-cover-proc", "swap-race-remount-ro", "swap-race-fresh-proc", "rename-race-fresh-proc", "deeper-race-fresh-proc", "swap-race-overlay-layer", "pivot-root-unmask-firmware", "pivot-root-proc-sys-rw", "overlay-lower-proc", "overlay-lower-sys", "i386-mount-calls"] {
                #expect(report.contains("BLOCKED \(name):"), "\(name) in \(report)\n\(ecid.log().suffix(3000))")
            }
            #expect(report.contains("escaped 0"), "\(report)")
            for line in report.split(separator: "\n") where line.contains("race") { print("ecid-jail: \(line)") }
            #expect(report.contains("jail-own-tmpfs ok"), "\(report)")
            #expect(report.contains("pivot-own-dot ok") && report.contains("pivot-own-old ok"), "\(report)")
            #expect(report.contains("jail-released ok"), "\(report)")
            #expect(report.contains("overlay-own ok ok"), "\(report)")
            #expect(ecid.process.isRunning, "ecid died: \(ecid.log())")
        }

        /// `Tests/Fixtures/ecid-hostile.c`, no runc: its own user and mount namespaces, the
        /// traps, the fd handed over in runc's format; bad pointers, unterminated and huge
        /// strings, a thread racing the target between its own mount point and /proc, a caller
        /// killed mid-call. ecid answers each, never crashes or hangs, and /proc stays.
        @Test func hostileArgumentsAndRaces() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let program = sandbox.directory + "/ecid-hostile"
            let built = try TestSupport.run(["/usr/bin/cc", "-O2", "-pthread", "-o", program, TestSupport.repositoryRoot + "/Tests/Fixtures/ecid-hostile.c"])
            #expect(built.status == 0, "cc: \(built.stderr)")
            let scratch = sandbox.directory + "/scratch"
            try FileManager.default.createDirectory(atPath: scratch + "/m", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let run = try TestSupport.run(["/usr/bin/timeout", "120", program, sandbox.stateDirectory + "/ecid/ecid.sock", scratch])
            #expect(run.status == 0, "ecid-hostile: \(run.stderr)")
            var results: [String: String] = [:]
            for line in run.stdout.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1)
                if parts.count == 2 { results[String(parts[0])] = String(parts[1]) }
            }
            let expected = [
                "null-target": "EFAULT", "wild-target": "EFAULT", "unterminated-target": "EFAULT", "huge-target": "ENAMETOOLONG",
                "wild-fstype": "EFAULT", "wild-umount": "EFAULT", "missing-target": "ENOENT", "own-tmpfs": "ok", "own-umount": "ok",
                "umount-proc": "EPERM", "after-killed-caller": "ok", "final-umount": "ok",
            ]
            for (name, answer) in expected { #expect(results[name] == answer, "\(name): \(results[name] ?? "missing") in \(run.stdout)") }
            #expect(results["race"]?.hasSuffix("proc=intact") == true, "race: \(results["race"] ?? run.stdout)")
            #expect(ecid.process.isRunning, "ecid died: \(ecid.log())")
        }

        /// kill -9 of ecid in the middle of a container's mount loop, and a new ecid: the loop goes
        /// on (the call the dead ecid had received gets its exact answer, never left waiting),
        /// the calls made while ecid was down are answered after the re-attach, and
        /// every call after the restart is vetted: the attack on /proc is still refused.
        @Test func restartDuringMountLoopKeepsVetting() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            var ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = Self.mountLoop
            let bundle = try sandbox.makeBundle("loop", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-loop")
            #expect(Self.waitFor(bundle + "/out/progress", seconds: 30) { (Int($0) ?? 0) >= 3 }, "the loop did not start: \(ecid.log())")
            #expect(try Self.holderRunning(sandbox), "no fd holder")
            ecid.kill(SIGKILL)
            let firstLog = ecid.log()
            // Calls made while no ecid runs wait (the holder keeps the fd): the loop stalls.
            usleep(500_000)
            let stalled = Int(try sandbox.output(bundle, "progress")) ?? 0
            usleep(300_000)
            #expect(Int(try sandbox.output(bundle, "progress")) == stalled, "a trapped call was answered with no ecid")
            ecid = try Daemon(sandbox: sandbox, name: "ecid-2")
            #expect(Self.waitFor(bundle + "/out/progress", seconds: 30) { (Int($0) ?? 0) >= stalled + 5 }, "the loop did not go on after the restart: \(ecid.log())")
            // An exec after the restart: its fd joins the restored record (its initial mounts, not
            // the container's mounts of now).
            let exec = try sandbox.runtime(["exec", "ecid-loop", "sh", "-c", "umount -l /proc/kcore 2>/dev/null; echo kcore=$?; mkdir -p /out/e && mount -t tmpfs none /out/e && umount /out/e; echo own=$?"])
            #expect(exec.stdout.contains("kcore=") && !exec.stdout.contains("kcore=0"), "the exec unmasked /proc/kcore: \(exec.stdout) \(exec.stderr)")
            #expect(exec.stdout.contains("own=0"), "exec: \(exec.stdout) \(exec.stderr)")
            #expect(ecid.log().contains("\"status\":\"running\""), "the exec's hand-over reached the new ecid: \(ecid.log())")
            FileManager.default.createFile(atPath: bundle + "/out/stop", contents: nil)
            #expect(Self.waitFor(bundle + "/out/done", seconds: 30), "the container did not finish: \(ecid.log())")
            let fails = (try? sandbox.output(bundle, "fails")) ?? ""
            // Every call the dead ecid had in hand got its exact answer; only one it received
            // and had not yet recorded (a kill in those few instructions) may have failed.
            let unrecorded = ecid.log().components(separatedBy: "unanswered and unrecorded").count - 1
            #expect(fails.split(separator: "\n").count <= unrecorded, "a call failed across the restart: \(fails) \((try? sandbox.output(bundle, "errors")) ?? "")")
            for refused in ["umount-proc", "umount-kcore", "remount-ro", "cover-proc-sys"] {
                #expect(try sandbox.output(bundle, refused) != "0", "\(refused) succeeded after the restart")
            }
            #expect(try sandbox.output(bundle, "own-tmpfs") == "0")
            let log = ecid.log()
            // Whether the kill landed while the dead ecid had a call in hand, and how it was answered.
            let orphan = log.split(separator: "\n").first { $0.contains("left unanswered") }.map(String.init) ?? "none"
            print("ecid restart: \(fails.isEmpty ? "no call failed" : "failed: \(fails)"), orphan: \(orphan)")
            #expect(log.contains("re-attached"), "\(log)\nfirst ecid: \(firstLog)")
            // The container is locked: its unmounts and bind remounts are the kernel's to refuse;
            // the covering mount is trapped, and the new ecid refused it.
            #expect(log.contains("a mount on /proc/sys would cover") || log.contains("/proc/sys is one of the container's protected mounts"), "refused by the new ecid: \(log)")
            try container.waitUntilGone()
            ecid.kill()
            #expect(try Self.holderGone(sandbox, within: 5), "the fd holder was left behind")
            #expect(try Self.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
            #expect(try TestSupport.sh("pgrep -f '[e]cid mount-helper'").status != 0, "a helper was left behind")
            let records = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.stateDirectory + "/ecid/containers")) ?? []
            #expect(!records.contains { $0 == "ecid-loop.json" || $0.hasSuffix("-ecid-loop.json") }, "the record outlived its container: \(records)")
        }

        /// A privileged container running `script` to its end under a fresh ecid, its `out/`
        /// files handed to `check` (`out(NAME)`); then what every such test checks: ecid still
        /// runs and no mount is left behind. `edit` changes the spec (privileged already),
        /// `prepare` the bundle, before the run.
        static func runPrivileged(
            _ name: String, script: String, edit: (inout [String: Any]) -> Void = { _ in }, prepare: (String) throws -> Void = { _ in },
            check: (_ out: (String) throws -> String, _ ecid: Daemon) throws -> Void
        ) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle(name, script: script) { config in
                RuntimeLocks.privileged(&config)
                edit(&config)
            }
            try prepare(bundle)
            let run = try sandbox.runtime(["run", "--bundle", bundle, "ecid-" + name])
            #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
            try check({ try sandbox.output(bundle, $0) }, ecid)
            #expect(ecid.process.isRunning, "ecid died: \(ecid.log())")
            #expect(try Self.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
        }

        /// Renaming a directory moves the mounts below it without any mount event: a fresh
        /// procfs at /a/p is at /b/p after `mv /a /b`. A bind of it without its submounts must
        /// still be refused (judged against mount points read during the call, never a table
        /// kept from an earlier one), and its rbind neighbour still works, masks and all.
        @Test func renamedDirectoryDoesNotUnmaskAFreshProcfs() throws {
            let script = """
                mkdir -p /a/p /m /m2
                mount -t proc proc /a/p; echo $? > /out/fresh
                umount /proc 2>/dev/null; echo $? > /out/refused
                mv /a /b; echo $? > /out/mv
                mount --bind /b/p /m 2>/dev/null; echo $? > /out/bind
                if [ -f /m/keys ] || [ -f /m/timer_list ]; then echo revealed; else echo hidden; fi > /out/bind-view
                umount /m 2>/dev/null
                mount --rbind /b/p /m2; echo $? > /out/rbind
                if [ -c /m2/keys ] || [ -c /m2/timer_list ]; then echo masked; else echo unmasked; fi > /out/rbind-view
                umount -l /m2; umount -l /b/p; echo $? > /out/cleanup
                """
            try Self.runPrivileged("rename", script: script) { out, ecid throws in
                #expect(try out("fresh") == "0", "a fresh procfs: \(ecid.log())")
                #expect(try out("refused") != "0")
                #expect(try out("mv") == "0")
                #expect(try out("bind") != "0", "a bind of the renamed procfs without its masks was allowed")
                #expect(try out("bind-view") == "hidden")
                #expect(try out("rbind") == "0")
                #expect(try out("rbind-view") == "masked")
                #expect(try out("cleanup") == "0")
            }
        }

        /// A directory moved below a new directory of its own old name: the fresh procfs at /q/p
        /// is at /q/p/p afterwards. A table kept from before (no mount event since) still has the
        /// procfs at /q/p and its masks at /q/p/keys..., and the new name /q/p/p lies below the
        /// old point, so "every name at or below its mount's point" held while the masks, at
        /// their old places, were not below the bound directory: a bind without submounts
        /// showed /proc/keys. The legitimate neighbours: the same bind with its submounts, and a
        /// bind of a renamed plain directory, work.
        @Test func directoryMovedBelowItsOldNameDoesNotUnmaskAFreshProcfs() throws {
            let script = """
                mkdir -p /q/p /m /m2 /E /d/e /dm
                mount -t proc proc /q/p; echo $? > /out/fresh
                umount /proc 2>/dev/null; echo $? > /out/refused
                mv /q /E/p && mv /E /q; echo $? > /out/mv
                ls -d /q/p/p/self > /out/where 2>&1
                mount --bind /q/p/p /m 2>/dev/null; echo $? > /out/bind
                if [ -f /m/keys ] || [ -f /m/timer_list ]; then echo revealed; else echo hidden; fi > /out/bind-view
                umount /m 2>/dev/null
                mount --rbind /q/p/p /m2; echo $? > /out/rbind
                if [ -c /m2/keys ] || [ -c /m2/timer_list ]; then echo masked; else echo unmasked; fi > /out/rbind-view
                umount -l /m2
                mkdir -p /F/e && mv /d /F/e/d && mv /F /d; ls -d /d/e/d/e > /out/plain-where 2>&1
                mount --bind /d/e/d/e /dm; echo $? > /out/plain-bind
                umount /dm
                umount -l /q/p/p; echo $? > /out/cleanup
                """
            try Self.runPrivileged("rename-deeper", script: script) { out, ecid throws in
                #expect(try out("fresh") == "0", "a fresh procfs: \(ecid.log())")
                #expect(try out("refused") != "0")
                #expect(try out("mv") == "0")
                #expect(try out("where") == "/q/p/p/self")
                #expect(try out("bind") != "0", "a bind of the moved procfs without its masks was allowed")
                #expect(try out("bind-view") == "hidden")
                #expect(try out("rbind") == "0", "\(ecid.log())")
                #expect(try out("rbind-view") == "masked")
                #expect(try out("plain-bind") == "0", "\(ecid.log())")
                #expect(try out("cleanup") == "0")
            }
        }

        /// A fresh procfs stacked on a bind of a procfs subdirectory (/proc/sys/kernel at /x):
        /// two procfs mounts at one point. Its masks must be counted from the fresh procfs
        /// they sit on, not from the bind under it (`/proc/sys/kernel/acpi` is no spec path):
        /// its empty /x/acpi and read-only /x/sys stay. The neighbours: the stack itself, and
        /// unmounting the fresh procfs whole, work.
        @Test func freshProcfsStackedOnAProcBindKeepsItsMasks() throws {
            let script = """
                mkdir -p /x
                mount --bind /proc/sys/kernel /x; echo $? > /out/bind
                mount -t proc proc /x; echo $? > /out/fresh
                grep -c ' /x/' /proc/self/mountinfo > /out/masks
                umount -l /x/acpi 2>/dev/null; echo $? > /out/umount-acpi
                umount -l /x/sys 2>/dev/null; echo $? > /out/umount-sys
                if [ -w /x/sys/kernel/hostname ] && echo probe > /x/sys/kernel/domainname 2>/dev/null; then echo rw; else echo ro; fi > /out/sys-view
                umount -l /x; echo $? > /out/fresh-gone
                umount /x; echo $? > /out/bind-gone
                """
            try Self.runPrivileged("stacked", script: script) { out, ecid throws in
                #expect(try out("bind") == "0", "\(ecid.log())")
                #expect(try out("fresh") == "0", "\(ecid.log())")
                #expect(try out("umount-acpi") != "0", "a mask of the fresh procfs was unmounted")
                #expect(try out("umount-sys") != "0", "the read-only sys of the fresh procfs was unmounted")
                #expect(try out("sys-view") == "ro")
                #expect(try out("fresh-gone") == "0", "\(ecid.log())")
                #expect(try out("bind-gone") == "0", "\(ecid.log())")
            }
        }

        /// A spec-masked directory outside /proc and /sys (/srv/s/secret), its parent renamed
        /// after the helper kept its table: an overlay whose lower layer is the renamed parent
        /// or a bind without submounts of it would show the directory the mask hides unless the
        /// table's protected mounts on that file system are confirmed where they are now. The neighbours: the same
        /// overlay of a directory that holds no mask, and reading the mask (empty), work.
        @Test func renamedParentOfASpecMaskIsNoOverlayLayer() throws {
            let script = """
                ls /srv/s/secret | wc -l > /out/masked
                mkdir -p /o && mount -t tmpfs tmpfs /o && mkdir -p /o/u /o/w /o/m /o/u2 /o/w2 /o/m2
                umount /proc 2>/dev/null; echo $? > /out/refused
                mv /srv/s /srv/t; echo $? > /out/mv
                mount -t overlay overlay -o lowerdir=/srv/t,upperdir=/o/u,workdir=/o/w /o/m 2>/dev/null; echo $? > /out/overlay
                if [ -f /o/m/secret/file ]; then echo revealed; else echo hidden; fi > /out/overlay-view
                umount /o/m 2>/dev/null
                mkdir -p /o/b; umount /proc 2>/dev/null; mv /srv/t /srv/v
                mount --bind /srv/v /o/b 2>/dev/null; echo $? > /out/bind
                if [ -f /o/b/secret/file ]; then echo revealed; else echo hidden; fi > /out/bind-view
                umount /o/b 2>/dev/null
                mount -t overlay overlay -o lowerdir=/srv/plain,upperdir=/o/u2,workdir=/o/w2 /o/m2; echo $? > /out/plain
                umount /o/m2; umount -l /o; echo $? > /out/cleanup
                """
            try Self.runPrivileged("mask-layer", script: script, edit: { config in
                var linux = config["linux"] as? [String: Any] ?? [:]
                linux["maskedPaths"] = (linux["maskedPaths"] as? [String] ?? []) + ["/srv/s/secret"]
                config["linux"] = linux
            }, prepare: { bundle in
                for dir in ["/rootfs/srv/s/secret", "/rootfs/srv/plain"] {
                    try FileManager.default.createDirectory(atPath: bundle + dir, withIntermediateDirectories: true)
                }
                try "hidden by the spec".write(toFile: bundle + "/rootfs/srv/s/secret/file", atomically: true, encoding: .utf8)
            }) { out, ecid throws in
                #expect(try out("masked") == "0")
                #expect(try out("refused") != "0")
                #expect(try out("mv") == "0")
                #expect(try out("overlay") != "0", "an overlay of the renamed parent of a mask was allowed")
                #expect(try out("overlay-view") == "hidden")
                #expect(try out("bind") != "0", "a bind without submounts of the renamed parent of a mask was allowed")
                #expect(try out("bind-view") == "hidden")
                #expect(try out("plain") == "0", "\(ecid.log())")
                #expect(try out("cleanup") == "0")
            }
        }

        /// ecid dies holding a call its helper performed, after a call from another notify fd of
        /// the same container (a `runc exec`) went to the same helper meanwhile: the helper's
        /// record then names the later call, and the next ecid must still know the first one
        /// was performed, not perform it again (a second tmpfs stacked on /x).
        @Test func performedCallIsNotPerformedAgainAfterAnotherFdsCall() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let first = try Daemon(sandbox: sandbox, environment: ["ECI_ECID_CRASH_FOR_TEST": "after-helper-late"])
            defer { first.kill() }
            let script = """
                mkdir -p /x /y
                mount -t tmpfs none /x; echo $? > /out/status
                grep -c ' /x ' /proc/mounts > /out/count
                echo done > /out/done
                """
            let bundle = try sandbox.makeBundle("twice", script: script) { RuntimeLocks.privileged(&$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-twice")
            for _ in 0..<100 where !first.log().contains("mount helper started") { usleep(50_000) }
            usleep(300_000)
            let exec = try sandbox.runtime(["exec", "ecid-twice", "sh", "-c", "mount -t tmpfs none /y; echo y=$?"])
            #expect(exec.stdout.contains("y=0"), "\(exec.stdout) \(exec.stderr) \(first.log())")
            for _ in 0..<200 where first.process.isRunning { usleep(50_000) }
            #expect(!first.process.isRunning, "ecid did not stop: \(first.log())")
            #expect(!FileManager.default.fileExists(atPath: bundle + "/out/status"), "the call was answered without an ecid")
            let second = try Daemon(sandbox: sandbox, name: "ecid-2")
            defer { second.kill() }
            #expect(Self.waitFor(bundle + "/out/done", seconds: 30), "the container did not finish: \(second.log())")
            #expect(try sandbox.output(bundle, "status") == "0")
            #expect(try sandbox.output(bundle, "count") == "1", "the mount was performed twice: \(second.log())")
            try container.waitUntilGone()
            second.kill()
            #expect(try Self.holderGone(sandbox, within: 5), "the fd holder was left behind")
            #expect(try Self.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
        }

        /// ecid dies (as with kill -9, at a fixed point: `ECI_ECID_CRASH_FOR_TEST`) holding a
        /// container's call; the next ecid gives that call its exact answer, not EINTR: the
        /// result the helper recorded (a mount performed, a refusal), or, when no helper had
        /// started it, the call performed now.
        @Test(arguments: [
            ("after-receive", "mount -t tmpfs none /x", "0"),
            ("after-helper", "mount -t tmpfs none /x", "0"),
            ("after-helper", "mount -t tmpfs none /proc", "nonzero"),
        ])
        func callInHandWhenEcidDiesGetsItsExactAnswer(crash: String, command: String, expected: String) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let first = try Daemon(sandbox: sandbox, environment: ["ECI_ECID_CRASH_FOR_TEST": crash])
            defer { first.kill() }
            let script = """
                mkdir -p /x
                \(command) 2>/out/error; echo $? > /out/status
                if grep -q ' /x ' /proc/mounts; then echo yes > /out/mounted; else echo no > /out/mounted; fi
                grep ' /proc ' /proc/mounts | tail -n 1 | grep -q ' /proc proc ' && echo yes > /out/proc
                mount --bind /proc /x 2>/dev/null; echo $? > /out/bind-proc
                echo done > /out/done
                """
            let bundle = try sandbox.makeBundle("crash", script: script) { RuntimeLocks.privileged(&$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-crash")
            for _ in 0..<200 where first.process.isRunning { usleep(50_000) }
            #expect(!first.process.isRunning, "ecid did not stop at \(crash): \(first.log())")
            #expect(!FileManager.default.fileExists(atPath: bundle + "/out/status"), "the call was answered without an ecid")
            let second = try Daemon(sandbox: sandbox, name: "ecid-2")
            defer { second.kill() }
            #expect(Self.waitFor(bundle + "/out/done", seconds: 30), "the container did not finish: \(second.log())")
            let status = try sandbox.output(bundle, "status")
            if expected == "0" {
                #expect(status == "0", "\(command): \(status) \((try? sandbox.output(bundle, "error")) ?? "")")
                #expect(try sandbox.output(bundle, "mounted") == "yes")
            } else {
                #expect(status != "0" && status != "", "\(command) succeeded")
                #expect(try sandbox.output(bundle, "proc") == "yes", "/proc was covered")
            }
            #expect(try sandbox.output(bundle, "bind-proc") != "0", "the next call went unvetted")
            let how = crash == "after-receive" ? "performed now" : "the result its helper recorded"
            #expect(second.log().contains(how), "\(second.log())")
            #expect(!second.log().contains("EINTR"), "\(second.log())")
            try container.waitUntilGone()
            second.kill()
            #expect(try Self.holderGone(sandbox, within: 5), "the fd holder was left behind")
            #expect(try Self.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
            #expect(try TestSupport.sh("pgrep -f '[e]cid mount-helper'").status != 0, "a helper was left behind")
            let left = (try? FileSystem.listDirectory(sandbox.stateDirectory + "/ecid/inflight")) ?? []
            #expect(left.isEmpty, "in-flight files left: \(left)")
        }

        /// The holder killed with -9 while a container runs: ecid starts a new one and deposits
        /// every fd again, so a kill -9 of ecid after that still loses nothing.
        @Test func killedHolderIsReplaced() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            var ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle("loop", script: Self.mountLoop) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-holder")
            #expect(Self.waitFor(bundle + "/out/progress", seconds: 30) { (Int($0) ?? 0) >= 3 }, "the loop did not start: \(ecid.log())")
            let first = try TestSupport.sh("pgrep -f '[f]d-holder --dir \(sandbox.stateDirectory)/ecid'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Int32(first) != nil, "one holder: \(first)")
            if let pid = Int32(first) { kill(pid, SIGKILL) }
            // The second "fd holder started" in ecid's log.
            for _ in 0..<100 where ecid.log().components(separatedBy: "fd holder started").count < 3 { usleep(50_000) }
            #expect(ecid.log().contains("fd holder gone"), "\(ecid.log())")
            let second = try TestSupport.sh("pgrep -f '[f]d-holder --dir \(sandbox.stateDirectory)/ecid'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Int32(second) != nil && second != first, "a new holder: \(second)")
            usleep(200_000)
            ecid.kill(SIGKILL)
            ecid = try Daemon(sandbox: sandbox, name: "ecid-2")
            let resumed = Int(try sandbox.output(bundle, "progress")) ?? 0
            #expect(Self.waitFor(bundle + "/out/progress", seconds: 30) { (Int($0) ?? 0) >= resumed + 5 }, "the loop did not go on: \(ecid.log())")
            FileManager.default.createFile(atPath: bundle + "/out/stop", contents: nil)
            #expect(Self.waitFor(bundle + "/out/done", seconds: 30), "the container did not finish: \(ecid.log())")
            #expect(try sandbox.output(bundle, "umount-proc") != "0", "umount /proc succeeded after the restart")
            #expect(ecid.log().contains("re-attached"), "\(ecid.log())")
            try container.waitUntilGone()
            ecid.kill()
            #expect(try Self.holderGone(sandbox, within: 5), "the fd holder was left behind")
        }

        /// ecid killed and not restarted: a new container is refused at once; a trapped call
        /// waits no longer than the holder's grace period, then fails with ENOSYS (the holder
        /// closed its fds and exited), never hangs.
        @Test func killedEcidFailsClosedAfterGrace() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let grace = 2.0
            let ecid = try Daemon(sandbox: sandbox, holderGrace: grace)
            defer { ecid.kill() }
            let script = """
                mkdir -p /mnt; mount -t tmpfs none /mnt && umount /mnt && echo ok > /out/before
                while [ ! -e /out/go ]; do sleep 0.05; done
                mount -t tmpfs none /mnt 2>/out/after-error; echo $? > /out/after
                mount -t tmpfs none /mnt 2>/out/later-error; echo $? > /out/later
                echo done > /out/done
                """
            let bundle = try sandbox.makeBundle("killed", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "ecid-killed")
            #expect(Self.waitFor(bundle + "/out/before", seconds: 10), "\(ecid.log())")
            ecid.kill(SIGKILL)
            let killed = Date()
            container.go()
            // A new container is refused while ecid's socket is dead (connection refused).
            let next = try sandbox.makeBundle("next", script: "true") { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let refused = try sandbox.runtime(["run", "--bundle", next, "ecid-next"])
            #expect(refused.status != 0, "a container started with ecid dead")
            #expect(Self.waitFor(bundle + "/out/done", seconds: grace + 10), "the trapped call hung after ecid died")
            let waited = Date().timeIntervalSince(killed)
            #expect(waited >= grace - 0.5, "answered before the grace period ended (\(waited) s)")
            #expect(try sandbox.output(bundle, "after") != "0")
            #expect(try sandbox.output(bundle, "after-error").contains("Function not implemented"))
            #expect(try sandbox.output(bundle, "later-error").contains("Function not implemented"))
            #expect(try Self.holderGone(sandbox, within: 2), "the fd holder outlived its grace period")
            try container.waitUntilGone()
        }

        /// A record of a container that is gone (its init dead, no fd held) and an orphaned
        /// in-flight slot are reconciled away by the next ecid, as the range store reclaims.
        @Test func staleRecordIsReconciledAway() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            var ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            ecid.kill(SIGKILL)
            let directory = sandbox.stateDirectory + "/ecid"
            try FileManager.default.createDirectory(atPath: directory + "/inflight", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/containers", withIntermediateDirectories: true)
            let ghost = #"{"id":"ghost","initPID":2147483646,"initStart":1,"initial":{"protected":[],"mounts":[]}}"#
            FileManager.default.createFile(atPath: directory + "/containers/ghost.json", contents: Data(ghost.utf8))
            FileManager.default.createFile(atPath: directory + "/inflight/1234", contents: Data(count: 8))
            ecid = try Daemon(sandbox: sandbox, name: "ecid-2")
            #expect(!FileManager.default.fileExists(atPath: directory + "/containers/ghost.json"), "the stale record stayed")
            #expect(!FileManager.default.fileExists(atPath: directory + "/inflight/1234"), "the orphaned slot stayed")
            #expect(ecid.log().contains("reconciled away"), "\(ecid.log())")
            ecid.kill()
            #expect(try Self.holderGone(sandbox, within: 2), "the fd holder was left behind")
        }
    }
}
