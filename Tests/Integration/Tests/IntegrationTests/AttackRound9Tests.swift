import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on 8b0da4a (`MountCallPolicy.freshReplacesWhole`: a fresh procfs or sysfs
    /// made by ecid's helper may cover a whole one in any mount namespace of the container, pid
    /// 1's included, where the covered mount is in no peer group and at most four stand at that
    /// point). Each test states what must hold next to the legitimate neighbour (`unshare -pfm
    /// --mount-proc`); the outcome against 8b0da4a is in its doc comment.
    @Suite struct AttackRound9 {
        typealias A = EciInitAttacks

        /// The round's C fixture (static, in the container's /bin/r9): `chroot N` (N fresh
        /// procfs mounts on "/" from a process chrooted at /proc), `late K` (K calls whose
        /// helper child is stopped until after ecid answered), `swap` (the mount under the
        /// checked one takes its place between check and act). Every line is NAME=VALUE.
        static let source = #"""
// Attack round 9 fixture (embedded in AttackRound9Tests.swift): MountCallPolicy.freshReplacesWhole.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int err(int rc) { return rc < 0 ? errno : 0; }

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

static const char *keys(const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) return "absent";
    return S_ISCHR(st.st_mode) ? "masked" : "REAL";
}

// Every process of the container when a call starts: anything new is ecid's helper's child.
static int known[65536];
static void snapshot(void) {
    memset(known, 0, sizeof known);
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int p = atoi(e->d_name);
        if (p > 0 && p < 65536) known[p] = 1;
    }
    if (d) closedir(d);
}

static char state_of(int pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    return paren && paren[1] ? paren[2] : '?';
}

static pid_t caller;
static int caller_done, caller_status;
// Stops the first process that appears in the container besides the caller (the helper's child
// for a fresh procfs is born in the caller's pid namespace), within `ms`. Its pid, or 0.
static int stop_new(int ms) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int p = atoi(e->d_name);
            if (p <= 0 || p >= 65536 || p == caller || known[p]) continue;
            known[p] = 1;
            if (kill(p, SIGSTOP) == 0) {
                closedir(d);
                return p;
            }
        }
        if (d) closedir(d);
        if (!caller_done && waitpid(caller, &caller_status, WNOHANG) == caller) caller_done = 1;
        if (caller_done) return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > ms) return 0;
    }
}

// A fresh procfs over /proc from a child, `tag` its result.
static void call_in_child(const char *tag) {
    caller_done = 0;
    caller = fork();
    if (caller == 0) {
        int rc = mount("proc", "/proc", "proc", 0, NULL);
        printf("%s=%d\n", tag, err(rc));
        _exit(0);
    }
}

static void wait_caller(void) {
    if (!caller_done) waitpid(caller, &caller_status, 0);
    caller_done = 1;
}

static void reap(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "chroot") && argc >= 3) {  // chroot N
        int n = atoi(argv[2]);
        printf("before-root-proc-rows=%d\n", rows("/", "proc"));
        pid_t child = fork();
        if (child == 0) {
            if (chroot("/proc") < 0 || chdir("/") < 0) {
                printf("chroot=%d\n", errno);
                _exit(1);
            }
            int made = 0;
            for (int i = 0; i < n; i++) made += mount("proc", "/", "proc", 0, NULL) == 0;
            printf("chrooted-mounts=%d\n", made);
            printf("chrooted-proc-rows-at-root=%d\n", rows("/", "proc"));
            _exit(0);
        }
        waitpid(child, NULL, 0);
        printf("root-proc-rows=%d\n", rows("/", "proc"));
        printf("proc-rows=%d\n", rows("/proc", "proc"));
        printf("keys=%s\n", keys("/proc/keys"));
        return 0;
    }
    if (!strcmp(argv[1], "late") && argc >= 3) {  // late K
        int k = atoi(argv[2]), stopped[16], nstopped = 0;
        printf("late-rows-start=%d\n", rows("/proc", "proc"));
        for (int i = 0; i < k && i < 16; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "late-call-%d", i);
            snapshot();
            call_in_child(tag);
            int s = stop_new(15000);
            printf("late-stopped-%d=%c\n", i, s ? state_of(s) : '-');
            if (s) stopped[nstopped++] = s;
            wait_caller();
            printf("late-rows-%d=%d\n", i, rows("/proc", "proc"));
        }
        // The neighbour: an ordinary call while the stack is below the bound.
        printf("late-ordinary=%d\n", err(mount("proc", "/proc", "proc", 0, NULL)));
        printf("late-rows-ordinary=%d\n", rows("/proc", "proc"));
        for (int i = 0; i < nstopped; i++) kill(stopped[i], SIGCONT);
        sleep(3);
        reap();
        printf("late-rows-released=%d\n", rows("/proc", "proc"));
        printf("late-keys=%s\n", keys("/proc/keys"));
        return 0;
    }
    if (!strcmp(argv[1], "swap")) {
        printf("swap-rprivate=%d\n", err(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
        printf("swap-f1=%d\n", err(mount("proc", "/proc", "proc", 0, NULL)));
        printf("swap-x=%d\n", err(mount("proc", "/proc", "proc", 0, NULL)));
        // Every mount shared, the covered ones included; then the top (X) private again.
        printf("swap-rshared=%d\n", err(mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL)));
        printf("swap-x-private=%d\n", err(mount(NULL, "/proc", NULL, MS_PRIVATE, NULL)));
        printf("swap-pid1-rows-before=%d\n", rows("/proc", "proc"));
        pid_t nested = fork();
        if (nested == 0) {
            // A copy: runc's /proc and F1 peers of pid 1's, X a private copy on top.
            if (unshare(CLONE_NEWNS) < 0) _exit(3);
            printf("swap-nested-rows-before=%d\n", rows("/proc", "proc"));
            snapshot();
            call_in_child("swap-call");
            int s = stop_new(15000);
            printf("swap-stopped=%c\n", s ? state_of(s) : '-');
            // Untrapped in a locked container: X (the checked, private top) goes.
            printf("swap-umount=%d\n", err(umount2("/proc", MNT_DETACH)));
            if (s) kill(s, SIGCONT);
            wait_caller();
            sleep(1);
            reap();
            printf("swap-nested-rows-after=%d swap-nested-keys=%s\n", rows("/proc", "proc"), keys("/proc/keys"));
            _exit(0);
        }
        waitpid(nested, NULL, 0);
        reap();
        printf("swap-pid1-rows-after=%d swap-pid1-keys=%s\n", rows("/proc", "proc"), keys("/proc/keys"));
        return 0;
    }
    return 2;
}
"""#

        static func compile(into bundle: String) throws {
            try GrantAttacks.compile(source, into: bundle, at: "/bin/r9")
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

        /// The neighbour every test runs first: `unshare -pfm --mount-proc` (a fresh procfs of a
        /// nested pid namespace over the /proc of a private copy), masked.
        static let neighbour = #"unshare -p -f -m --mount-proc sh -c 'if [ -c /proc/keys ]; then echo neighbour-keys=masked; else echo neighbour-keys=other; fi; echo neighbour-pid1=$(cat /proc/1/comm)'"#

        /// A caller chrooted at a whole procfs (`chroot /proc`, the container's own /proc,
        /// private) mounts a fresh procfs on its "/". The helper's table is the caller's: from a
        /// root at /proc, mountinfo shows only that procfs (at "/") and its masks, so the policy
        /// sees a whole procfs replaced at "/", one deep. The helper names the target as
        /// parent "/" and name "/", and its fresh child moves the tree onto `name` after
        /// setns() into the caller's mount namespace, which resets root and cwd to that
        /// namespace's root: an absolute "/" is the container's root, not the caller's.
        /// Must hold: the container's "/" (protected, no procfs) is never covered, and nothing
        /// stacks past four. The neighbour: `unshare -pfm --mount-proc`, masked.
        /// Against 8b0da4a: ESCAPED (rule misjudged; nothing revealed): all six calls succeed
        /// (`chrooted-mounts=6`, ecid's log: six `mount(proc, "/")` "performed": the chroot's
        /// table never shows them), and pid 1's namespace then has six masked procfs mounts on
        /// its root `/` (`root-proc-rows=6`, `proc-rows=1`), past the bound and on a protected
        /// mount. `runc exec` (setns puts its root on the topmost mount at the namespace's root)
        /// then lands in a procfs and fails, status 255: "error closing exec fds: open
        /// /proc/self/fd: no such file or directory". Fix idea: never name the target by an absolute path after setns: move
        /// onto the checked fd itself (`move_mount(tree, "", target_fd, "",
        /// MOVE_MOUNT_T_EMPTY_PATH)`, or the parent fd with a relative name and "." for a root),
        /// and refuse a fresh mount whose target is the caller's root when that root is not its
        /// namespace's (the table seen from a chroot hides everything below it).
        @Test func chrootedAtProcCoversTheContainerRoot() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r9-chroot"
            let script = """
                {
                \(Self.neighbour)
                /bin/r9 chroot 6
                } > /out/report 2>&1; echo done > /out/done; exec sleep 4991
                """
            let bundle = try sandbox.makeBundle(id, script: script) { Integration.RuntimeLocks.privileged(&$0) }
            try Self.compile(into: bundle)
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            defer { A.delete(sandbox, id) }
            #expect(started.status == 0, "\(started.stderr)")
            _ = try #require(try A.pid(of: "sleep 4991"), "the script did not finish: \((try? sandbox.output(bundle, "report")) ?? "")")
            let exec = try sandbox.runtime(["exec", id, "sh", "-c", "echo exec-ok; ls / | head -3"])
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound9.chrootedAtProcCoversTheContainerRoot: \(report)\nexec (\(exec.status)): \(exec.stdout) \(exec.stderr)\necid: \(ecid.log().split(separator: "\n").filter { $0.contains("proc") }.suffix(6))")
            let got = Self.results(report)
            #expect(got["neighbour-keys"] == "masked" && got["neighbour-pid1"] == "sh", "the neighbour, unshare --mount-proc: \(report)")
            #expect(got["before-root-proc-rows"] == "0", "setup: \(report)")
            #expect(got["root-proc-rows"] == "0", "a fresh procfs from a chroot at /proc covered the container's root: \(report)")
            #expect(got["proc-rows"].flatMap { Int($0) }.map { $0 <= 4 } == true, "\(report)")
            #expect(got["keys"] == "masked", "\(report)")
            #expect(exec.status == 0 && exec.stdout.contains("exec-ok"), "runc exec after the chrooted calls: \(exec.stdout) \(exec.stderr)")
        }

        /// ecid's helper makes a fresh procfs in a child born in the caller's pid namespace
        /// (`eci_fresh_masked_mount`), with the caller's uid: the container sees it and may
        /// signal it. The fixture (`late 2`) starts with three whole procfs mounts on /proc (pid
        /// 1's own, after two fresh ones) and twice calls for a fourth from a child, SIGSTOPping
        /// the helper's child as soon as it appears (after the check, before its move_mount).
        /// The helper times out (10 s) and is killed, the call is refused, the stopped child
        /// lives on with the checked parent fd and the namespace fd. Then an ordinary call (the
        /// neighbour: below the bound, allowed) makes four, and the stopped children are
        /// continued. Must hold: no mount made after ecid's answer, at most four procfs mounts
        /// on /proc. (The same stopped child can be continued after anything: a /proc made
        /// shared meanwhile, a peer of pid 1's.)
        /// Against 8b0da4a: ESCAPED (bound and check bypassed; masked): both calls refused after
        /// 10 s (ecid: "helper gave no answer ...; replaced", EPERM, `late-rows-0=3`,
        /// `late-rows-1=3`), the ordinary call makes 4, and on SIGCONT both stopped children
        /// attach: `late-rows-released=6`; /proc/keys stays masked. Fix idea:
        /// the child must not outlive the call: PR_SET_PDEATHSIG(SIGKILL) in it and in
        /// locked_clone's grandchild, with the helper killed on timeout, or better, kill the
        /// child (it is the helper's) before answering; and make it unsignalable by the
        /// container: fork in the caller's pid namespace only the short-lived grandchild that
        /// mounts the procfs (procfs needs the mounter's pid namespace), with a uid the
        /// container does not share, or a pidfd-checked SIGKILL of every child at the end of a
        /// call, whatever it answers.
        @Test func stoppedHelperChildAttachesAfterTheRefusal() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r9-late"
            let script = """
                {
                \(Self.neighbour)
                mount -t proc proc /proc; mount -t proc proc /proc
                /bin/r9 late 2
                } > /out/report 2>&1; echo done > /out/done
                """
            let bundle = try sandbox.makeBundle(id, script: script) { Integration.RuntimeLocks.privileged(&$0) }
            try Self.compile(into: bundle)
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound9.stoppedHelperChildAttachesAfterTheRefusal: \(report)\necid: \(ecid.log().split(separator: "\n").filter { $0.contains("proc") || $0.contains("helper") }.suffix(8))")
            let got = Self.results(report)
            #expect(got["neighbour-keys"] == "masked" && got["neighbour-pid1"] == "sh", "the neighbour, unshare --mount-proc: \(report)")
            #expect(got["late-rows-start"] == "3", "setup: \(report)")
            #expect(got["late-ordinary"] == "0" && got["late-rows-ordinary"] == "4", "the neighbour, a fourth procfs: \(report)")
            #expect(got["late-rows-released"].flatMap { Int($0) }.map { $0 <= 4 } == true, "a stopped helper child attached after ecid's answer: \(report)")
            #expect(got["late-keys"] == "masked", "\(report)")
        }

        /// The claim "calls of one container are serialized, so nothing changes what was
        /// checked" does not cover untrapped calls: in a locked container umount is the engine's
        /// (allowed) and the kernel alone decides. Setup (the fixture's `swap`, in pid 1's
        /// namespace): /proc holds runc's procfs, a fresh F1 and on it a fresh X (all private
        /// when mounted); `mount --make-rshared /` makes all three shared (covered ones too),
        /// `--make-private /proc` makes X private again. A nested namespace (unshare(2),
        /// propagation unchanged) then has copies: runc's /proc and F1 peers of pid 1's, X a
        /// private copy on top. There a fresh procfs is asked for /proc: the checked target is
        /// X (private, three deep: allowed). When the helper's child appears (SIGSTOPped to
        /// widen the window: it makes the race deterministic, nothing more), X is unmounted
        /// (untrapped) and the child continued: its move_mount by name lands on F1's copy, a
        /// peer of pid 1's F1, which copies the fresh procfs into pid 1's /proc.
        /// (Before: naming F1 through a cwd at its root, under X, to make it shared is refused:
        /// ". is not reachable from the caller's root as /proc".)
        /// Must hold: no fresh mount propagates (the peer rule): pid 1's /proc keeps three.
        /// The neighbour: `unshare -pfm --mount-proc`, masked; the setup's calls all work.
        /// Against 8b0da4a: ESCAPED (peer rule bypassed, past the check; masked): the call
        /// returns 0 (`swap-call=0`), the nested /proc keeps 3 rows, and pid 1's /proc goes from
        /// 3 to 4 (`swap-pid1-rows-after=4`): a new procfs row `227 229 /proc shared:18` sits on
        /// F1 (229, shared:10), pid 1's X (237) tucked on top of it; /proc/keys masked. Without
        /// the SIGSTOP the same race is a tight loop of umount against the helper's child. Fix
        /// idea: attach on the checked mount only: move the tree onto the checked target fd
        /// (MOVE_MOUNT_T_EMPTY_PATH) and then verify the new mount's parent is the checked mount
        /// id, detaching it (and answering EAGAIN) when not; or trap umount of whole procfs and
        /// sysfs tops (the only untrapped call that can change the stack) while such a call is
        /// in flight, e.g. by taking the helper's fresh mount onto a private, checked clone.
        @Test func untrappedUnmountMovesTheFreshMountOntoAPeer() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "r9-swap"
            let lines = #"awk '$5 == "/proc" { s = ""; for (i = 7; $i != "-"; i++) s = s " " $i; print "row", $1, $2, $5, $4, s }' /proc/self/mountinfo"#
            let script = """
                {
                \(Self.neighbour)
                /bin/r9 swap
                \(lines)
                } > /out/report 2>&1; echo done > /out/done
                """
            let bundle = try sandbox.makeBundle(id, script: script) { Integration.RuntimeLocks.privileged(&$0) }
            try Self.compile(into: bundle)
            let run = try sandbox.runtime(["run", "--bundle", bundle, id])
            A.delete(sandbox, id)
            #expect(run.status == 0, "\(run.stderr)")
            let report = (try? sandbox.output(bundle, "report")) ?? "(not run)"
            print("AttackRound9.untrappedUnmountMovesTheFreshMountOntoAPeer: \(report)\necid: \(ecid.log().split(separator: "\n").filter { $0.contains("proc") || $0.contains("peer") }.suffix(8))")
            let got = Self.results(report)
            #expect(got["neighbour-keys"] == "masked" && got["neighbour-pid1"] == "sh", "the neighbour, unshare --mount-proc: \(report)")
            for step in ["swap-rprivate", "swap-f1", "swap-x", "swap-rshared", "swap-x-private"] {
                #expect(got[step] == "0", "setup \(step): \(report)")
            }
            #expect(got["swap-pid1-rows-before"] == "3" && got["swap-nested-rows-before"] == "3", "setup: \(report)")
            #expect(got["swap-pid1-rows-after"] == "3", "a fresh procfs asked for in a nested namespace landed in pid 1's /proc: \(report)")
            #expect(got["swap-pid1-keys"] == "masked" && got["swap-nested-keys"] != "REAL", "\(report)")
        }
    }
}
