import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// Who holds power over a locked container's mount namespace (docs/ecid.md, "Locked initial
    /// mounts"). The kernel asks for CAP_SYS_ADMIN over the user namespace that owns the mount
    /// namespace, and the owner of a user namespace holds every capability in it from the parent
    /// namespace. Until this suite, pid 1 stayed in the copy owned by eci-init's nested user
    /// namespace, whose owner was the container's root: every root process of the container,
    /// whatever capabilities it had dropped (a systemd unit's CapabilityBoundingSet, a `runc
    /// exec` naming fewer), could unmount, remount and bind there. Now the copy the container
    /// runs in is owned by the container's own user namespace, as under runc alone.
    @Suite struct LockedNamespaceOwner {
        typealias A = EciInitAttacks

        /// A process spec for `runc exec`: root, running `script` with `capabilities` in every set.
        static func rootProcess(_ script: String, capabilities: [String]) throws -> Data {
            let sets: [String: Any] = ["bounding": capabilities, "effective": capabilities, "permitted": capabilities]
            let process: [String: Any] = [
                "args": ["/bin/sh", "-c", script], "cwd": "/", "user": ["uid": 0, "gid": 0], "env": ["PATH=/bin"], "capabilities": sets,
            ]
            return try JSONSerialization.data(withJSONObject: process)
        }

        static let withoutAdmin = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT"]
        static let withAdmin = withoutAdmin + ["CAP_SYS_ADMIN"]

        /// A root process without CAP_SYS_ADMIN in a locked container tries what runc alone
        /// refuses it: a new tmpfs and a bind over /etc (trapped: ecid performs them with its
        /// credentials), unmounting root's tmpfs and making root's read-only bind writable
        /// (untrapped in a locked container: the kernel alone answers), and joining the owner of
        /// its mount namespace (GrantAttacks.joinOwnerSource). Every one is refused; next to it,
        /// a root process with CAP_SYS_ADMIN does each. Against 85fa38d: ESCAPED (all four).
        @Test func rootWithoutSysAdminCannotMount() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "owner-root"
            let bundle = try sandbox.makeBundle(id, script: "exec sleep 4511") { A.capabilities(&$0, Self.withAdmin) }
            try GrantAttacks.compile(GrantAttacks.joinOwnerSource, into: bundle, at: "/bin/join-owner")
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            #expect(started.status == 0, "\(started.stderr)")
            defer { A.delete(sandbox, id) }
            let pid = try #require(try A.pid(of: "sleep 4511"))
            #expect(A.isLocked(pid), "the program runs unlocked")

            func exec(_ script: String, _ capabilities: [String]) throws -> TestSupport.Output {
                let process = bundle + "/exec-process.json"
                try Self.rootProcess(script, capabilities: capabilities).write(to: URL(fileURLWithPath: process))
                return try sandbox.runtime(["exec", "--process", process, id])
            }
            let setup = try exec(
                "mkdir -p /tmp/m /tmp/rootmnt /tmp/rootro /tmp/fake-etc && echo 'root::0:0:not the image:/root:/bin/sh' > /tmp/fake-etc/passwd"
                    + " && mount -t tmpfs none /tmp/rootmnt && mount --bind /tmp/rootro /tmp/rootro && mount -o remount,bind,ro /tmp/rootro",
                Self.withAdmin)
            #expect(setup.status == 0, "root's set-up: \(setup.stdout) \(setup.stderr)")

            let attempts = """
                mount -t tmpfs none /tmp/m 2>/dev/null; echo tmpfs=$?
                mount --bind /tmp/fake-etc /etc 2>/dev/null; echo bind=$?
                umount /tmp/rootmnt 2>/dev/null; echo umount=$?
                mount -o remount,bind,rw /tmp/rootro 2>/dev/null; echo remount=$?
                /bin/join-owner; true
                """
            let attack = try exec(attempts, Self.withoutAdmin)
            #expect(attack.status == 0 && attack.stdout.contains("remount="), "the attempts did not run: \(attack.stdout) \(attack.stderr)")
            for refused in ["tmpfs=0", "bind=0", "umount=0", "remount=0", "joined"] {
                #expect(!attack.stdout.contains(refused), "root without CAP_SYS_ADMIN: \(refused): \(attack.stdout) \(attack.stderr) \(ecid.log().suffix(1500))")
            }
            let passwd = try TestSupport.run(["/usr/bin/nsenter", "-t", "\(pid)", "-m", "--", "/bin/cat", "/etc/passwd"])
            #expect(!passwd.stdout.contains("not the image"), "/etc was covered for every process of the container: \(passwd.stdout)")

            // The neighbour: with CAP_SYS_ADMIN, root does each (the bind over a directory of its
            // own, not /etc, which later tests of this container read).
            let legit = try exec(
                "mount -t tmpfs none /tmp/m; echo tmpfs=$?; mount --bind /tmp/fake-etc /tmp/m; echo bind=$?; umount /tmp/rootmnt; echo umount=$?; mount -o remount,bind,rw /tmp/rootro; echo remount=$?",
                Self.withAdmin)
            #expect(legit.stdout == "tmpfs=0\nbind=0\numount=0\nremount=0\n", "root with CAP_SYS_ADMIN: \(legit.stdout) \(legit.stderr) \(ecid.log().suffix(1500))")
        }
    }
}
