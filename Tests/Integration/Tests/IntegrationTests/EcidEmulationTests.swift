import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// procfs emulation: ecid serves /proc/uptime, meminfo, cpuinfo, stat and swaps per
    /// container from its FUSE file system, and eci-runc binds them over the container's /proc.
    @Suite struct Emulation {
        /// A memory limit and a one-CPU cpuset, as `docker run --memory 64m --cpuset-cpus 0` asks.
        static func limited(_ config: inout [String: Any], memory: Int) {
            var linux = config["linux"] as? [String: Any] ?? [:]
            var resources = linux["resources"] as? [String: Any] ?? [:]
            resources["memory"] = ["limit": memory]
            resources["cpu"] = ["cpus": "0"]
            linux["resources"] = resources
            config["linux"] = linux
        }

        static let readEverything = """
            cat /proc/uptime > /out/uptime
            read -r line < /proc/uptime; echo "$line" > /out/uptime-read
            cat /proc/meminfo > /out/meminfo
            grep -c ^processor /proc/cpuinfo > /out/nproc
            grep ^cpu /proc/stat > /out/stat
            cat /proc/swaps > /out/swaps
            grep -c ' /proc/[a-z]* .* fuse.eci ' /proc/self/mountinfo > /out/binds
            dd if=/proc/meminfo bs=7 count=1 skip=1 2>/dev/null > /out/meminfo-piece
            """

        /// Two containers with different limits each see their own numbers, not the VM's; the
        /// binds are protected like every mount below /proc (locked container: the kernel;
        /// ecid: a tmpfs over one); and nothing is left mounted.
        @Test func eachContainerSeesItsOwnNumbers() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let ecid = try Integration.Ecid.Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let hostUptime = Double(try String(contentsOfFile: "/proc/uptime", encoding: .utf8).split(separator: " ")[0]) ?? 0

            let attacks = """
                umount /proc/uptime 2>/dev/null; echo $? > /out/umount-uptime
                umount -l /proc/meminfo 2>/dev/null; echo $? > /out/umount-meminfo
                mount -t tmpfs none /proc/stat 2>/dev/null; echo $? > /out/cover-stat
                echo 1 > /proc/uptime 2>/dev/null; echo $? > /out/write-uptime
                """
            var bundles: [(bundle: String, megabytes: Int)] = []
            for (name, megabytes) in [("small", 64), ("large", 96)] {
                let bundle = try sandbox.makeBundle("emulated-\(name)", script: Self.readEverything + "\n" + attacks) {
                    Integration.RuntimeLocks.privileged(&$0)
                    Self.limited(&$0, memory: megabytes << 20)
                }
                let run = try sandbox.runtime(["run", "--bundle", bundle, "emulated-\(name)"])
                #expect(run.status == 0, "\(run.stderr) \(ecid.log())")
                bundles.append((bundle, megabytes))
            }
            for (bundle, megabytes) in bundles {
                let uptime = try sandbox.output(bundle, "uptime")
                let fields = uptime.split(separator: " ").compactMap { Double($0) }
                #expect(fields.count == 2, "/proc/uptime: \(uptime) \(ecid.log())")
                #expect((fields.first ?? 1e9) < 60, "the container's uptime, not the VM's (\(hostUptime) s): \(uptime)")
                // busybox cat reads with sendfile (the page cache, up to the file's size), read with read(2).
                #expect(try sandbox.output(bundle, "uptime-read").split(separator: " ").count == 2, "read(2) of /proc/uptime")
                let meminfo = try sandbox.output(bundle, "meminfo")
                #expect(meminfo.contains("MemTotal:") && meminfo.split(separator: "\n").first?.hasSuffix(" \(megabytes * 1024) kB") == true, "MemTotal: \(meminfo.prefix(200))")
                #expect(try sandbox.output(bundle, "nproc") == "1", "cpuinfo shows the cpuset only")
                let stat = try sandbox.output(bundle, "stat").split(separator: "\n").map { String($0.split(separator: " ")[0]) }
                #expect(stat == ["cpu", "cpu0"], "/proc/stat: \(stat)")
                #expect(try sandbox.output(bundle, "swaps").hasPrefix("Filename"), "/proc/swaps")
                #expect(try sandbox.output(bundle, "binds") == "5", "five emulated files bound")
                // A read at an offset gets that part of the same file (a piece of "MemTotal: ").
                let piece = (String(meminfo.utf8.dropFirst(7).prefix(7)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try sandbox.output(bundle, "meminfo-piece") == piece, "pread")
                for attack in ["umount-uptime", "umount-meminfo", "cover-stat", "write-uptime"] {
                    #expect(try sandbox.output(bundle, attack) != "0", "\(attack) succeeded")
                }
            }
            #expect(!ecid.log().contains("error"), "\(ecid.log())")
            #expect(ecid.process.isRunning)

            // Without the file system, a container ecid supervises is not created.
            let mountPoint = sandbox.stateDirectory + "/emulation"
            #expect(try TestSupport.run(["/bin/umount", "-l", mountPoint]).status == 0)
            let refused = try sandbox.makeBundle("emulation-gone", script: "true")
            let result = try sandbox.runtime(["run", "--bundle", refused, "emulation-gone"])
            #expect(result.status != 0 && result.stderr.contains("emulated /proc files are not served"), "\(result.stderr)")
            ecid.kill()
            #expect(try Integration.Ecid.holderGone(sandbox, within: 15), "the fd holder outlived its grace")
            #expect(try TestSupport.mountPoints() == mountsBefore, "a mount was left behind")
        }

        /// A procfs the container mounts itself (a nested runtime's, `unshare --mount-proc`) gets
        /// the container's emulated files from ecid's helper, with the masks, and they are
        /// protected there too: locked (the kernel) and unlocked (`runc exec --cap
        /// CAP_SYS_ADMIN` into a container started without it: ecid alone).
        @Test(arguments: [true, false]) func aFreshProcfsCarriesTheEmulatedFiles(locked: Bool) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let mountsBefore = try TestSupport.mountPoints()
            let ecid = try Integration.Ecid.Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                mkdir -p /fresh && mount -t proc proc /fresh; echo $? > /out/fresh
                cat /fresh/uptime > /out/fresh-uptime
                grep MemTotal /fresh/meminfo > /out/fresh-meminfo
                grep -c ^processor /fresh/cpuinfo > /out/fresh-nproc
                if [ -c /fresh/keys ]; then echo masked; else echo unmasked; fi > /out/fresh-keys
                umount /fresh/uptime 2>/dev/null; echo $? > /out/umount-fresh-uptime
                umount -l /fresh/meminfo 2>/dev/null; echo $? > /out/umount-fresh-meminfo
                mount -t tmpfs none /fresh/stat 2>/dev/null; echo $? > /out/cover-fresh-stat
                grep MemTotal /fresh/meminfo > /out/fresh-meminfo-after
                unshare -pfm --mount-proc sh -c 'grep MemTotal /proc/meminfo; cat /proc/uptime' > /out/mount-proc 2>&1
                """
            let id = "emulated-fresh-\(locked ? "locked" : "unlocked")"
            let bundle = try sandbox.makeBundle(id, script: locked ? script : "touch /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done") {
                if locked { Integration.RuntimeLocks.privileged(&$0) } else { Integration.RuntimeLocks.privilegedWithoutSysAdmin(&$0) }
                Self.limited(&$0, memory: 64 << 20)
            }
            if locked {
                let run = try sandbox.runtime(["run", "--bundle", bundle, id])
                #expect(run.status == 0, "\(run.stderr) \(ecid.log())")
            } else {
                let container = Integration.Ecid.BackgroundContainer(sandbox, bundle: bundle, id: id)
                defer { _ = try? sandbox.runtime(["kill", id, "KILL"]) }
                container.waitFor("ready")
                let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", id, "sh", "-c", script])
                #expect(exec.status == 0, "\(exec.stderr)")
                container.go()
                try container.waitUntilGone()
            }
            #expect(try sandbox.output(bundle, "fresh") == "0", "a fresh procfs: \(ecid.log())")
            let uptime = Double(try sandbox.output(bundle, "fresh-uptime").split(separator: " ").first ?? "") ?? 1e9
            #expect(uptime < 60, "the fresh procfs' uptime is the container's: \(uptime)")
            #expect(try sandbox.output(bundle, "fresh-meminfo").hasSuffix(" 65536 kB"), "the fresh procfs' meminfo")
            #expect(try sandbox.output(bundle, "fresh-nproc") == "1")
            #expect(try sandbox.output(bundle, "fresh-keys") == "masked")
            for attack in ["umount-fresh-uptime", "umount-fresh-meminfo", "cover-fresh-stat"] {
                #expect(try sandbox.output(bundle, attack) != "0", "\(attack) succeeded")
            }
            #expect(try sandbox.output(bundle, "fresh-meminfo-after").hasSuffix(" 65536 kB"))
            let mountProc = try sandbox.output(bundle, "mount-proc")
            #expect(mountProc.hasPrefix("MemTotal:") && mountProc.contains(" 65536 kB"), "unshare --mount-proc: \(mountProc)")
            #expect(!ecid.log().contains("error"), "\(ecid.log())")
            ecid.kill()
            #expect(try Integration.Ecid.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
        }

        /// A container whose seccomp profile refuses every call ecid vets (Docker's default
        /// profile without CAP_SYS_ADMIN) gets no trap, so runc never hands it to ecid: its
        /// emulated files come from runc's state under the root eci-runc recorded it with (the
        /// VM end-to-end case found `docker run` reading EIO).
        @Test func aContainerNeverHandedToEcidSeesItsOwnNumbers() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Integration.Ecid.Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let bundle = try sandbox.makeBundle("emulated-unhanded", script: Self.readEverything) {
                Self.limited(&$0, memory: 64 << 20)
                var linux = $0["linux"] as? [String: Any] ?? [:]
                linux["seccomp"] = [
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [["names": ["mount", "umount", "umount2", "pivot_root"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1]],
                ] as [String: Any]
                $0["linux"] = linux
            }
            let run = try sandbox.runtime(["run", "--bundle", bundle, "emulated-unhanded"])
            #expect(run.status == 0, "\(run.stderr) \(ecid.log())")
            #expect(!ecid.log().contains("emulated-unhanded pid="), "the container was handed to ecid after all: the test shows nothing")
            let uptime = Double(try sandbox.output(bundle, "uptime").split(separator: " ").first ?? "") ?? 1e9
            #expect(uptime < 60, "\(uptime) \(ecid.log())")
            #expect(try sandbox.output(bundle, "meminfo").split(separator: "\n").first?.hasSuffix(" 65536 kB") == true)
            #expect(try sandbox.output(bundle, "nproc") == "1")
            #expect(try sandbox.output(bundle, "swaps").hasPrefix("Filename"))
        }

        /// ecid killed and started again: the container's emulated files go on answering (the fd
        /// holder kept the FUSE connection; the new ecid adopts it without a new INIT).
        @Test func emulationSurvivesAnEcidRestart() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            var ecid = try Integration.Ecid.Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                cat /proc/uptime > /out/before
                touch /out/ready
                while [ ! -e /out/go ]; do sleep 0.05; done
                cat /proc/uptime > /out/after 2>/out/after-error
                grep MemTotal /proc/meminfo > /out/after-meminfo
                """
            let bundle = try sandbox.makeBundle("emulated-restart", script: script) { Self.limited(&$0, memory: 64 << 20) }
            let container = Integration.Ecid.BackgroundContainer(sandbox, bundle: bundle, id: "emulated-restart")
            defer { _ = try? sandbox.runtime(["kill", "emulated-restart", "KILL"]) }
            container.waitFor("ready")
            #expect(try sandbox.output(bundle, "before").split(separator: " ").count == 2, "\(ecid.log())")
            ecid.kill(SIGKILL)
            ecid = try Integration.Ecid.Daemon(sandbox: sandbox, name: "ecid-2")
            #expect(ecid.log().contains("adopted"), "\(ecid.log())")
            container.go()
            try container.waitUntilGone()
            #expect(try sandbox.output(bundle, "after").split(separator: " ").count == 2, "after the restart: \((try? sandbox.output(bundle, "after-error")) ?? "") \(ecid.log())")
            #expect(try sandbox.output(bundle, "after-meminfo").hasSuffix(" 65536 kB"))
        }
    }
}
