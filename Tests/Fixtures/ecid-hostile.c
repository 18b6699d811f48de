// Hostile callers of ecid, without runc: this program makes its own user and mount namespaces,
// installs a filter that notifies mount and umount2 (as eci-runc's traps do), hands the
// listener fd to ecid's socket in runc's format, then attacks with bad arguments and a racing
// thread. Each line of output is "name result" for the test to check.
//   usage: ecid-hostile ECID_SOCKET SCRATCH_DIR
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) { perror(path); exit(2); }
    close(fd);
}

static const char *result(long rc) {
    static char buf[64];
    if (rc == 0) return "ok";
    snprintf(buf, sizeof buf, "%s", strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
    return buf;
}

static int hand_over(const char *socket_path) {
    struct sock_filter insns[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mount, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_umount2, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog prog = { .len = sizeof insns / sizeof insns[0], .filter = insns };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0) return -1;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, socket_path, sizeof a.sun_path - 1);
    if (connect(s, (void *)&a, sizeof a) < 0) return -1;
    char json[512];
    int n = snprintf(json, sizeof json,
        "{\"ociVersion\":\"1.0.2\",\"fds\":[\"seccompFd\"],\"pid\":%d,\"metadata\":\"eci\","
        "\"state\":{\"ociVersion\":\"1.0.2\",\"id\":\"hostile-%d\",\"status\":\"creating\",\"pid\":%d}}",
        getpid(), getpid(), getpid());
    struct iovec iov = { json, (size_t)n };
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(s, &m, 0) < 0) return -1;
    close(fd);
    return s;  // kept open, as runc 1.1 does
}

static char *volatile racy;
static volatile int racing = 1;

static void *flipper(void *arg) {
    const char *scratch = arg;
    char own[4096];
    snprintf(own, sizeof own, "%s/m", scratch);
    size_t len = strlen(own) > 5 ? strlen(own) : 5;
    while (racing) {
        memcpy(racy, own, strlen(own) + 1);
        memcpy(racy, "/proc", 6);
        (void)len;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s SOCKET SCRATCH\n", argv[0]); return 2; }
    const char *scratch = argv[2];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) { perror("unshare"); return 2; }
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", gid);
    write_file("/proc/self/gid_map", map);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) { perror("make-rprivate"); return 2; }
    if (hand_over(argv[1]) < 0) { perror("hand over"); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);

    char target[4096];
    snprintf(target, sizeof target, "%s/m", scratch);
    long page = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(pages + page, page);
    memset(pages, 'a', page);

    printf("null-target %s\n", result(mount("none", NULL, "tmpfs", 0, NULL)));
    printf("wild-target %s\n", result(mount("none", (char *)1, "tmpfs", 0, NULL)));
    printf("unterminated-target %s\n", result(mount("none", pages, "tmpfs", 0, NULL)));
    char *huge = malloc(8192);
    memset(huge, 'b', 8191);
    huge[8191] = 0;
    printf("huge-target %s\n", result(mount("none", huge, "tmpfs", 0, NULL)));
    printf("wild-fstype %s\n", result(mount("none", target, (char *)-4096L, 0, NULL)));
    printf("wild-umount %s\n", result(umount2((char *)0xdead0000, 0)));
    printf("missing-target %s\n", result(mount("none", "/nonexistent/ecid/x", "tmpfs", 0, NULL)));
    printf("own-tmpfs %s\n", result(mount("none", target, "tmpfs", 0, "size=1m")));
    printf("own-umount %s\n", result(umount2(target, 0)));
    printf("umount-proc %s\n", result(umount2("/proc", MNT_DETACH)));

    // A thread rewrites the target between an own mount point and /proc while the call is
    // checked: whatever ecid read is what it checks and acts on; /proc is never unmounted.
    racy = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    strcpy(racy, target);
    pthread_t t;
    pthread_create(&t, NULL, flipper, (void *)scratch);
    int mounted = 0, unmounted = 0;
    for (int i = 0; i < 40; i++) {
        if (mount("none", racy, "tmpfs", 0, NULL) == 0) mounted++;
        if (umount2(racy, MNT_DETACH) == 0) unmounted++;
    }
    racing = 0;
    pthread_join(t, NULL);
    while (umount2(target, MNT_DETACH) == 0) {}
    FILE *mi = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int proc_present = 0, proc_covered = 0;
    while (mi && fgets(line, sizeof line, mi)) {
        int is_proc_type = strstr(line, " - proc ") != NULL;
        char *fields[6] = {0};
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 6; i++, tok = strtok_r(NULL, " ", &save)) fields[i] = tok;
        if (fields[4] && strcmp(fields[4], "/proc") == 0) {
            if (is_proc_type) proc_present = 1;
            else proc_covered = 1;
        }
    }
    printf("race mounted=%d unmounted=%d proc=%s\n", mounted, unmounted, !proc_present ? "gone" : proc_covered ? "covered" : "intact");

    // A caller killed while ecid handles its call: ecid answers into the void and goes on.
    pid_t child = fork();
    if (child == 0) {
        mount("none", target, "tmpfs", 0, NULL);
        _exit(0);
    }
    usleep(2000);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    while (umount2(target, MNT_DETACH) == 0) {}
    printf("after-killed-caller %s\n", result(mount("none", target, "tmpfs", 0, NULL)));
    printf("final-umount %s\n", result(umount2(target, 0)));
    return 0;
}
