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

            init(sandbox: RuntimeSandbox) throws {
                logPath = sandbox.directory + "/ecid.log"
                FileManager.default.createFile(atPath: logPath, contents: nil)
                let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
                process.executableURL = URL(fileURLWithPath: try TestSupport.binary("ecid"))
                process.arguments = ["--state-dir", sandbox.stateDirectory, "--debug"]
                process.standardInput = FileHandle.nullDevice
                process.standardOutput = log
                process.standardError = log
                try process.run()
                try log.close()
                let socket = sandbox.stateDirectory + "/ecid/ecid.sock"
                for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(50_000) }
                guard FileManager.default.fileExists(atPath: socket) else { throw TestFailure("ecid did not listen at \(socket): \(self.log())") }
            }

            func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

            func kill(_ signal: Int32 = SIGTERM) {
                guard process.isRunning else { return }
                Glibc.kill(process.processIdentifier, signal)
                process.waitUntilExit()
            }
        }

        static func privilegedWithReadOnlyBind(_ sandbox: RuntimeSandbox, _ config: inout [String: Any]) {
            RuntimeLocks.privileged(&config)
            RuntimeLocks.addMount(&config, ["destination": "/ro", "type": "bind", "source": sandbox.directory + "/shared", "options": ["rbind", "ro"]])
        }

        @Test func initialMountsAreImmutableAndOwnMountsWork() throws {
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
                mount --bind /proc /mnt 2>/dev/null; echo $? > /out/bind-proc
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
            let bundle = try sandbox.makeBundle("ecid", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let result = try sandbox.runtime(["run", "--bundle", bundle, "ecid-1"])
            #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
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
            // sysfs has one superblock per net namespace: a fresh one in the container's own is
            // the same file system and root as its /sys, so it counts as a copy of /sys and stays.
            #expect(try sandbox.output(bundle, "fresh-sysfs-umount") != "0")
            let log = ecid.log()
            #expect(log.contains("/proc is one of the container's protected mounts"), "refused by ecid, not by chance: \(log)")
            #expect(log.contains("/ro started read-only"), "\(log)")
            #expect(log.contains("\"status\":\"creating\""), "runc's hand-over is logged")
            // Every call came from one pair of namespaces: one long-lived helper served them all,
            // and it ended with the container, while ecid runs on.
            #expect(log.components(separatedBy: "mount helper started").count - 1 == 1, "\(log)")
            #expect(Self.helpersGone(of: ecid), "a helper outlived its container")
            ecid.kill()
            #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
            #expect(try TestSupport.sh("pgrep -f '[e]cid mount-helper'").status != 0, "a helper was left behind")
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
            let runner = Thread { _ = try? sandbox.runtime(["run", "--bundle", bundle, "ecid-dead-helper"]) }
            runner.start()
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: bundle + "/out/before") { usleep(50_000) }
            #expect(try sandbox.output(bundle, "before") == "ok")
            let helpers = try TestSupport.sh("pgrep -P \(ecid.process.processIdentifier) -f '[e]cid mount-helper'").stdout.split(separator: "\n").compactMap { Int32($0) }
            #expect(helpers.count == 1, "one helper for the container: \(helpers)")
            for pid in helpers { Glibc.kill(pid, SIGKILL) }
            FileManager.default.createFile(atPath: bundle + "/out/go", contents: nil)
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: bundle + "/out/after-umount") { usleep(50_000) }
            #expect(try sandbox.output(bundle, "after") == "0", "\(ecid.log())")
            #expect(try sandbox.output(bundle, "after-umount") == "0")
            for _ in 0..<100 where try sandbox.runtime(["state", "ecid-dead-helper"]).status == 0 { usleep(50_000) }
            #expect(Self.helpersGone(of: ecid))
            #expect(ecid.process.isRunning)
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
            let runner = Thread { _ = try? sandbox.runtime(["run", "--bundle", bundle, "ecid-bounded"]) }
            runner.start()
            for _ in 0..<300 where !FileManager.default.fileExists(atPath: bundle + "/out/looped") { usleep(50_000) }
            #expect(try sandbox.output(bundle, "namespaces").split(separator: "\n").count == 12, "\(ecid.log())")
            #expect(try sandbox.output(bundle, "leaked") == "0")
            #expect(try sandbox.output(bundle, "own") == "0")
            let live = try TestSupport.sh("pgrep -c -P \(ecid.process.processIdentifier) -f '[e]cid mount-helper'").stdout
            #expect((Int(live.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99) <= 8, "\(live) helpers")
            #expect(ecid.log().components(separatedBy: "mount helper started").count - 1 == 13)
            FileManager.default.createFile(atPath: bundle + "/out/go", contents: nil)
            for _ in 0..<100 where try sandbox.runtime(["state", "ecid-bounded"]).status == 0 { usleep(50_000) }
            #expect(Self.helpersGone(of: ecid))
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

        @Test func killedEcidFailsClosed() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                mkdir -p /mnt; mount -t tmpfs none /mnt && umount /mnt && echo ok > /out/before
                while [ ! -e /out/go ]; do sleep 0.05; done
                mount -t tmpfs none /mnt 2>/out/after-error; echo $? > /out/after
                echo done > /out/done
                """
            let bundle = try sandbox.makeBundle("killed", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let runner = Thread { _ = try? sandbox.runtime(["run", "--bundle", bundle, "ecid-killed"]) }
            runner.start()
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: bundle + "/out/before") { usleep(50_000) }
            #expect(try sandbox.output(bundle, "before") == "ok")
            ecid.kill(SIGKILL)
            FileManager.default.createFile(atPath: bundle + "/out/go", contents: nil)
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: bundle + "/out/done") { usleep(50_000) }
            // Today: the notify fd's only holder is gone, so the kernel answers every trapped
            // call with ENOSYS at once. Fail closed, never a hang; restart safety (an fd holder)
            // is the next step.
            #expect(try sandbox.output(bundle, "done") == "done", "the trapped call hung after ecid died")
            #expect(try sandbox.output(bundle, "after") != "0")
            #expect(try sandbox.output(bundle, "after-error").contains("Function not implemented"))
            // A new container is refused while ecid's socket is dead (connection refused).
            let next = try sandbox.makeBundle("next", script: "true") { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
            let refused = try sandbox.runtime(["run", "--bundle", next, "ecid-next"])
            #expect(refused.status != 0, "a container started with ecid dead")
            for _ in 0..<100 where try sandbox.runtime(["state", "ecid-killed"]).status == 0 { usleep(50_000) }
        }
    }
}
