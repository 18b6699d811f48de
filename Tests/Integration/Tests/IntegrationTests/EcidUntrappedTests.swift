import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// A container under eci-init keeps only the traps the kernel cannot replace: its unmounts
    /// and bind remounts run untrapped (`SeccompTraps.Coverage.kernelLocked`). Through the
    /// container's own filter, with ecid running: every unmount and flag-clearing bind remount
    /// of a runtime mount is refused by the kernel (also from a nested mount namespace, whose
    /// copies keep the locks), and ecid never hears of them; next to them, what must work: a
    /// tmpfs of its own remounted both ways and unmounted, and the sequence LXC and other
    /// nested runtimes use (pivot_root into a mount of their own, then `umount -l` of the old
    /// root, which ecid's rules refused: "/ is protected"), after which a fresh procfs still
    /// gets its masks from ecid.
    @Test func lockedContainerLeavesUnmountsAndBindRemountsToTheKernel() throws {
        let sandbox = try RuntimeSandbox()
        defer { sandbox.cleanup() }
        let mountsBefore = try TestSupport.mountPoints()
        try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
        let ecid = try Daemon(sandbox: sandbox)
        defer { ecid.kill() }
        let script = """
            mkdir -p /mnt
            {
            for p in /proc /proc/kcore /proc/keys /proc/timer_list /proc/sys /sys /sys/firmware /ro /dev /; do
                umount "$p" 2>/dev/null; echo "umount $p $?"
                umount -l "$p" 2>/dev/null; echo "umount-lazy $p $?"
            done
            mount -o remount,bind,rw /ro 2>/dev/null; echo "remount-rw /ro $?"
            mount -o remount,bind,rw /proc/sys 2>/dev/null; echo "remount-rw /proc/sys $?"
            mount -o remount,bind,rw /sys/firmware 2>/dev/null; echo "remount-rw /sys/firmware $?"
            mount -o remount,bind,suid /dev 2>/dev/null; echo "remount-suid /dev $?"
            mount -o remount,bind,exec /sys 2>/dev/null; echo "remount-exec /sys $?"
            mount -o remount,bind,dev /sys 2>/dev/null; echo "remount-dev /sys $?"
            unshare -m sh -c 'umount -l /proc/keys' 2>/dev/null; echo "nested-umount /proc/keys $?"
            unshare -m sh -c 'mount -o remount,bind,rw /ro' 2>/dev/null; echo "nested-remount-rw /ro $?"
            } > /out/attacks
            grep -c ' /proc/keys ' /proc/self/mountinfo > /out/keys-masked
            mount -t tmpfs -o size=1m,nosuid none /mnt && mount -o remount,bind,ro /mnt && ! touch /mnt/x 2>/dev/null \\
              && mount -o remount,bind,rw,suid /mnt && touch /mnt/x && grep " /mnt " /proc/self/mountinfo | grep -vq nosuid \\
              && umount /mnt && echo ok > /out/own
            unshare -m sh -c '
                mount --make-rprivate / && mount -t tmpfs -o size=4m none /mnt && mkdir -p /mnt/old /mnt/bin /mnt/proc /mnt/dev \\
                  && cp /bin/busybox /mnt/bin/ && cd /mnt && pivot_root . old || exit 1
                /bin/busybox umount -l /old || exit 2
                /bin/busybox mount -t proc proc /proc || exit 3
                /bin/busybox grep -c " /proc/keys " /proc/self/mountinfo
            ' > /out/nested-runtime 2>&1; echo $? >> /out/nested-runtime
            echo done > /out/done
            """
        let bundle = try sandbox.makeBundle("untrapped", script: script) { Self.privilegedWithReadOnlyBind(sandbox, &$0) }
        let result = try sandbox.runtime(["run", "--bundle", bundle, "ecid-untrapped"])
        #expect(result.status == 0, "eci-runc run failed: \(result.stderr)")
        #expect(try sandbox.output(bundle, "done") == "done")
        let attacks = try sandbox.output(bundle, "attacks").split(separator: "\n")
        #expect(attacks.count == 28, "\(attacks)")
        for line in attacks where line.hasSuffix(" 0") { Issue.record("the kernel let it through: \(line)") }
        #expect(try sandbox.output(bundle, "keys-masked") == "1")
        #expect(try sandbox.output(bundle, "own") == "ok", "a tmpfs of its own: remount and unmount")
        #expect(try sandbox.output(bundle, "nested-runtime") == "1\n0", "pivot_root, umount -l of the old root, a masked fresh procfs")
        let log = ecid.log()
        #expect(!log.contains("umount(target:"), "an unmount reached ecid: \(log)")
        #expect(log.contains("pivotRoot(newRoot:"), "pivot_root stays trapped: \(log)")
        #expect(ecid.process.isRunning, "ecid died: \(log)")
        ecid.kill()
        #expect(try Integration.Ecid.mountPoints(besidesEcidOf: sandbox) == mountsBefore, "a mount was left behind")
    }
}
