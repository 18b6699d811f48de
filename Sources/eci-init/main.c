// eci-init: the first program of a container whose process starts as root with CAP_SYS_ADMIN.
// It makes the kernel lock every mount the runtime made, then becomes the container's program.
//
// runc makes a container's mounts inside the container's user namespace, so they are not
// locked: root there may unmount a mask, remount a read-only path read-write, move /proc away.
// ecid's traps refuse that; this adds the kernel's own refusal under them. A mount namespace
// copied into another user namespace has every mount locked (MNT_LOCKED and the MNT_LOCK_*
// flags), and then no one, whatever their capabilities, may unmount or move one alone, clear
// ro/nosuid/nodev/noexec on it, bind a tree without its submounts, or mount a fresh procfs or
// sysfs while a mask hides part of /proc or /sys (mount_too_revealing). So: a child enters a
// new, unmapped user namespace with a copy of the mount namespace (every mount locked by that
// copy), this process joins the copy and at once copies it again into a mount namespace of its
// own user namespace (the locks are kept: the kernel locks on every copy across user namespaces,
// in either direction, and never unlocks). The namespace the program runs in is then owned by
// the container's user namespace, as runc's was: the owner of a user namespace holds every
// capability in it, so a namespace owned by the nested one would give every process with the
// owner's uid CAP_SYS_ADMIN over the container's mounts, whatever capabilities it had dropped
// (an attack round: root without CAP_SYS_ADMIN bound over /etc). The nested user namespace dies
// with the child and the first copy. This process stays in the container's user namespace,
// keeping every capability it had over the container's network, UTS and IPC namespaces;
// `runc exec` joins pid 1's namespaces, so exec'd processes land in the locked one too.
// Docs: docs/ecid.md, "Locked initial mounts".
//
// eci-runc starts it as `/proc/self/fd/N --status-fd=S [--nproc=SOFT:HARD]
// [--drop-caps=SET:N+N,...] -- PROGRAM ARGS...` (runc's --preserve-fds keeps fd N, the open
// eci-init binary of the VM, so nothing of ECI appears in the container's files, and fd S, a
// file in ECI's directory of the container where eci-init writes "locked" once it is done:
// `eci-runc start` waits for that, and exec is refused before it). --nproc: the spec's
// RLIMIT_NPROC, set after the fork (a limit of 1 would fail it; runc's own start needs none).
// --drop-caps: the capabilities the spec granted only for this program, by set (bounding,
// inheritable, permitted, effective, ambient) and number: setns and unshare need CAP_SYS_ADMIN
// and CAP_SYS_CHROOT, and dropping a bounding capability needs CAP_SETPCAP. Taken back after
// locking and checked, so the program starts with the sets runc alone would have given it.
// Fail closed: when anything fails it prints why and exits 125; the program never runs with
// its mounts unlocked. Single-threaded C, static: it runs in any image.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NS_GET_USERNS
#define NS_GET_USERNS 0xb701
#endif
#ifndef NS_GET_PARENT
#define NS_GET_PARENT 0xb702
#endif

static void fail(const char *what, int err) {
    fprintf(stderr, "eci-init: cannot lock the container's mounts: %s: %s\n", what, strerror(err));
    exit(125);
}

static int same_file(int a, int b) {
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// The child: a new user namespace (no ID mapped: it owns the copy and nothing else) and a copy
// of the mount namespace into it, every mount locked by the copy. It hands the copy to the
// parent as an open descriptor (SCM_RIGHTS), which keeps it alive, and exits.
static int copy_child(int channel) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return errno;
    int copy = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (copy < 0) return errno;
    char c = 'x';
    struct iovec iov = { &c, 1 };
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &copy, sizeof(int));
    if (sendmsg(channel, &message, 0) != 1) return errno ? errno : EIO;
    return 0;
}

// The copy the child sends, or -1.
static int receive_copy(int channel) {
    char c;
    struct iovec iov = { &c, 1 };
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    ssize_t n;
    do n = recvmsg(channel, &message, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
    struct cmsghdr *header = n == 1 ? CMSG_FIRSTHDR(&message) : NULL;
    if (!header || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS || header->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof(int));
    return fd;
}

static void lock_mounts(void) {
    // Where the program starts: setns resets root and working directory to the copy's root.
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) fail("getcwd", errno);
    int root_before = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_before < 0) fail("open /", errno);
    // Not dumpable (nor the child, which inherits it) until the program's exec resets it: no
    // other process of the container may open these namespaces meanwhile (and no exec into the
    // container runs before eci-init has said "locked").
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) fail("PR_SET_DUMPABLE", errno);

    int channel[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, channel) < 0) fail("socketpair", errno);
    pid_t self = getpid();
    pid_t child = fork();
    if (child < 0) fail("fork", errno);
    if (child == 0) {
        // A filter that fakes fork's success returns 0 here, in this very process.
        if (getpid() == self) fail("fork returned 0 without a child", ECHILD);
        close(channel[0]);
        _exit(copy_child(channel[1]));
    }
    close(channel[1]);
    int copy = receive_copy(channel[0]);
    close(channel[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (copy < 0) {
        // unshare(CLONE_NEWUSER) is refused to a chrooted process (runc --no-pivot) and by
        // seccomp profiles without it: either way the mounts cannot be locked.
        fail("unshare(CLONE_NEWUSER|CLONE_NEWNS) in a child", WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : EIO);
    }
    int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    int user = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (mnt < 0 || user < 0) fail("open /proc/self/ns", errno);
    // Verify, not trust: the copy is owned by a child of this user namespace (so it was made
    // across user namespaces, and every mount in it came locked).
    int owner = ioctl(copy, NS_GET_USERNS);
    if (owner < 0) fail("NS_GET_USERNS", errno);
    int parent = ioctl(owner, NS_GET_PARENT);
    if (parent < 0) fail("NS_GET_PARENT", errno);
    if (same_file(owner, user) || !same_file(parent, user)) fail("the copy's owner", EPERM);
    close(owner), close(parent);
    if (setns(copy, CLONE_NEWNS) < 0) fail("setns into the copy", errno);
    int joined = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (joined < 0 || !same_file(joined, copy)) fail("setns into the copy", EPERM);
    close(joined);
    // The copy again, now owned by this user namespace. `mnt` (the namespace runc made) and
    // `copy` stay open until it exists: three namespaces alive at once, three identities.
    if (unshare(CLONE_NEWNS) < 0) fail("unshare(CLONE_NEWNS) of the copy", errno);
    int own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (own < 0) fail("open /proc/self/ns/mnt", errno);
    owner = ioctl(own, NS_GET_USERNS);
    if (owner < 0) fail("NS_GET_USERNS", errno);
    if (same_file(own, copy) || same_file(own, mnt) || !same_file(owner, user)) fail("the second copy", EPERM);
    close(own), close(owner), close(copy), close(mnt), close(user);

    // The same root as before (the copy of the mount it was on), then the same directory.
    int root_after = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_after < 0 || !same_file(root_before, root_after)) fail("the root after setns", EXDEV);
    close(root_before), close(root_after);
    if (chdir(cwd) < 0) fail(cwd, errno);
}

enum { SET_BOUNDING, SET_INHERITABLE, SET_PERMITTED, SET_EFFECTIVE, SET_AMBIENT, SET_COUNT };
static const char *const set_names[SET_COUNT] = { "bounding", "inheritable", "permitted", "effective", "ambient" };

// "SET:N+N,SET:N" into one mask per set. 0 when well formed.
static int parse_drop_caps(const char *text, uint64_t masks[SET_COUNT]) {
    char copy[256];
    if (strlen(text) >= sizeof copy) return -1;
    strcpy(copy, text);
    char *items = NULL;
    for (char *item = strtok_r(copy, ",", &items); item; item = strtok_r(NULL, ",", &items)) {
        char *colon = strchr(item, ':');
        if (!colon) return -1;
        *colon = '\0';
        int set = -1;
        for (int i = 0; i < SET_COUNT; i++) if (strcmp(item, set_names[i]) == 0) set = i;
        if (set < 0) return -1;
        char *numbers = NULL;
        int any = 0;
        for (char *n = strtok_r(colon + 1, "+", &numbers); n; n = strtok_r(NULL, "+", &numbers)) {
            char *end = NULL;
            long cap = strtol(n, &end, 10);
            if (!end || *end != '\0' || cap < 0 || cap > 63) return -1;
            masks[set] |= 1ULL << cap;
            any = 1;
        }
        if (!any) return -1;
    }
    return 0;
}

static int in(const uint64_t mask, int cap) { return (int)(mask >> cap & 1); }

// The same, read back from /proc/self/status: a text a seccomp profile cannot forge (a faked
// read returns no bytes, a faked open or fstatfs no procfs), where capget and prctl answers can
// be faked with errno 0 (eci-runc refuses such profiles; this is the second check).
static void verify_status(const uint64_t masks[SET_COUNT]) {
    static const char *const fields[SET_COUNT] = { "CapBnd:", "CapInh:", "CapPrm:", "CapEff:", "CapAmb:" };
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open /proc/self/status", errno);
    struct statfs fs;
    memset(&fs, 0, sizeof fs);
    if (fstatfs(fd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC) fail("/proc/self/status is not procfs", EPERM);
    char text[16384];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, text + used, sizeof text - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("read /proc/self/status", errno);
        if (n == 0 || (used += (size_t)n) == sizeof text - 1) break;
    }
    close(fd);
    text[used] = '\0';
    for (int set = 0; set < SET_COUNT; set++) {
        const char *line = strstr(text, fields[set]);
        if (!line || (line != text && line[-1] != '\n')) fail("no capability line in /proc/self/status", EPERM);
        char *end = NULL;
        unsigned long long held = strtoull(line + strlen(fields[set]), &end, 16);
        if (!end || (*end != '\n' && *end != '\0')) fail("a capability line of /proc/self/status", EPERM);
        if (held & masks[set]) fail("a capability granted for eci-init is still held (/proc/self/status)", EPERM);
    }
}

// Takes back what the spec granted only for lock_mounts, then reads every set again.
static void drop_caps(const uint64_t masks[SET_COUNT]) {
    for (int cap = 0; cap < 64; cap++)
        if (in(masks[SET_AMBIENT], cap) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap, 0, 0) < 0) fail("lower an ambient capability", errno);
    // CAP_SETPCAP last: dropping from the bounding set needs it effective.
    for (int pass = 0; pass < 2; pass++)
        for (int cap = 0; cap < 64; cap++)
            if (in(masks[SET_BOUNDING], cap) && (cap == CAP_SETPCAP) == (pass == 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                fail("drop a bounding capability", errno);
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) < 0) fail("capget", errno);
    for (int i = 0; i < 2; i++) {
        data[i].inheritable &= ~(uint32_t)(masks[SET_INHERITABLE] >> (32 * i));
        data[i].permitted &= ~(uint32_t)(masks[SET_PERMITTED] >> (32 * i));
        // Effective stays within permitted (capset's rule): what leaves one leaves both.
        data[i].effective &= ~(uint32_t)(masks[SET_EFFECTIVE] >> (32 * i)) & data[i].permitted;
    }
    if (syscall(SYS_capset, &header, data) < 0) fail("capset", errno);
    if (syscall(SYS_capget, &header, data) < 0) fail("capget", errno);
    for (int cap = 0; cap < 64; cap++) {
        uint32_t bit = 1u << (cap % 32);
        const struct __user_cap_data_struct *d = &data[cap / 32];
        if ((in(masks[SET_INHERITABLE], cap) && (d->inheritable & bit)) || (in(masks[SET_PERMITTED], cap) && (d->permitted & bit))
            || (in(masks[SET_EFFECTIVE], cap) && (d->effective & bit)) || (in(masks[SET_BOUNDING], cap) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
            || (in(masks[SET_AMBIENT], cap) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) != 0))
            fail("a capability granted for eci-init is still held", EPERM);
    }
    verify_status(masks);
}

// Runs `program` as runc would have run it without eci-init in front (Go's exec.LookPath, then
// execve): a name with a slash as it is; any other searched for in the PATH of the program's
// own environment (runc sets it before the look-up; an empty element means "."), taking the
// first regular file with an execute bit; no PATH, no search. Unlike execvp: no default
// search path when PATH is unset, and a file the kernel cannot execute (a script without
// `#!`) is an error, not a /bin/sh script. Returns the errno when nothing was executed.
static int exec_as_runc(char **program) {
    extern char **environ;
    const char *name = program[0];
    if (name[0] == '\0') return ENOENT;
    if (strchr(name, '/')) {
        execve(name, program, environ);
        return errno;
    }
    const char *path = getenv("PATH");
    if (!path) return ENOENT;
    char candidate[PATH_MAX];
    for (const char *dir = path;; ) {
        const char *end = strchrnul(dir, ':');
        int length = (int)(end - dir);
        int n = length == 0 ? snprintf(candidate, sizeof candidate, "./%s", name)
                            : snprintf(candidate, sizeof candidate, "%.*s/%s", length, dir, name);
        struct stat st;
        if (n > 0 && n < (int)sizeof candidate && stat(candidate, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111)) {
            execve(candidate, program, environ);
            return errno;
        }
        if (*end == '\0') return ENOENT;
        dir = end + 1;
    }
}

int main(int argc, char **argv) {
    // argv[0] is /proc/self/fd/N: the fd has done its work (this binary is mapped) and must
    // not reach the program.
    const char *prefix = "/proc/self/fd/";
    if (argc < 3 || strncmp(argv[0], prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "eci-init: started by eci-runc only (as /proc/self/fd/N [OPTIONS] -- PROGRAM ARGS...)\n");
        return 125;
    }
    char *end = NULL;
    long self = strtol(argv[0] + strlen(prefix), &end, 10);
    if (!end || *end != '\0' || self < 3 || self > INT_MAX) {
        fprintf(stderr, "eci-init: bad argv[0] %s\n", argv[0]);
        return 125;
    }
    close((int)self);
    int has_nproc = 0, has_drop = 0, status_fd = -1;
    struct rlimit nproc = { 0, 0 };
    uint64_t drop[SET_COUNT] = { 0 };
    int arg = 1;
    for (; arg < argc && strcmp(argv[arg], "--") != 0; arg++) {
        char *soft_end = NULL, *hard_end = NULL;
        if (strncmp(argv[arg], "--status-fd=", 12) == 0 && status_fd < 0) {
            char *fd_end = NULL;
            long fd = strtol(argv[arg] + 12, &fd_end, 10);
            if (!fd_end || *fd_end != '\0' || fd < 3 || fd > INT_MAX || fd == self) {
                fprintf(stderr, "eci-init: bad option %s\n", argv[arg]);
                return 125;
            }
            status_fd = (int)fd;
            continue;
        }
        if (strncmp(argv[arg], "--drop-caps=", 12) == 0 && !has_drop) {
            if (parse_drop_caps(argv[arg] + 12, drop) != 0) {
                fprintf(stderr, "eci-init: bad option %s\n", argv[arg]);
                return 125;
            }
            has_drop = 1;
            continue;
        }
        if (strncmp(argv[arg], "--nproc=", 8) == 0) {
            nproc.rlim_cur = strtoull(argv[arg] + 8, &soft_end, 10);
            if (soft_end && *soft_end == ':') nproc.rlim_max = strtoull(soft_end + 1, &hard_end, 10);
        }
        if (!hard_end || *hard_end != '\0' || nproc.rlim_cur > nproc.rlim_max) {
            fprintf(stderr, "eci-init: bad option %s\n", argv[arg]);
            return 125;
        }
        has_nproc = 1;
    }
    if (arg + 1 >= argc) {
        fprintf(stderr, "eci-init: no program after --\n");
        return 125;
    }
    // The status file: written to, never read from, and never the program's.
    struct stat status_file;
    if (status_fd < 0 || fstat(status_fd, &status_file) < 0 || !S_ISREG(status_file.st_mode) || (fcntl(status_fd, F_GETFL) & O_ACCMODE) != O_WRONLY
        || fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "eci-init: no status file (--status-fd=N, a regular file open for writing)\n");
        return 125;
    }
    lock_mounts();
    if (has_drop) drop_caps(drop);
    if (has_nproc && setrlimit(RLIMIT_NPROC, &nproc) < 0) fail("setrlimit(RLIMIT_NPROC)", errno);
    static const char locked[] = "locked\n";
    if (write(status_fd, locked, sizeof locked - 1) != (ssize_t)(sizeof locked - 1)) fail("write the status file", errno ? errno : EIO);
    if (close(status_fd) < 0) fail("close the status file", errno);
    char **program = argv + arg + 1;
    int err = exec_as_runc(program);
    // As runc reports a program it cannot start, with the shell's exit codes.
    fprintf(stderr, "eci-init: exec %s: %s\n", program[0], err == ENOENT && !strchr(program[0], '/') ? "executable file not found in $PATH" : strerror(err));
    return err == ENOENT ? 127 : 126;
}
