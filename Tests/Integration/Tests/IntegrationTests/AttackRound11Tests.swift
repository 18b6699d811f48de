import ECICore
import ECIProcFS
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on fresh-emulation (f24dea4) against ecid's procfs emulation: the FUSE
    /// server, what ContainerProcView reads, the binds and a fresh procfs's clones, from inside
    /// locked (`--privileged` shape), unlocked (`runc exec --cap CAP_SYS_ADMIN`) and default
    /// containers. Each test states what must hold next to the legitimate neighbour; the outcome
    /// against f24dea4 is in its doc comment.
    @Suite struct AttackRound11 {
        typealias A = EciInitAttacks

        /// The round's C fixture (static, in the container's /bin/r11): `send SOCK FILE` (hands
        /// an fd of FILE to SOCK), `hold SOCK GOT GO THREADS SECONDS` (receives one, then reads it
        /// from THREADS threads), `time FILE N` (the slowest of N reads), `odd FILE` (huge offsets
        /// and sizes, mmap, sendfile, O_DIRECT, file handles), `comm PROGRAM...` (an init whose comm
        /// looks like /proc/PID/stat fields). Every field is NAME=VALUE.
        static let source = #"""
// Attack round 11 fixture (embedded in AttackRound11Tests.swift): ecid's emulated /proc files.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int unix_socket(const char *path, int listening) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    if (listening) {
        unlink(path);
        if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || chmod(path, 0777) < 0 || listen(s, 1) < 0) return -1;
        return s;
    }
    for (int i = 0; i < 200; i++) {
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) return s;
        usleep(50000);
    }
    return -1;
}

// The fd flooded by `hold`'s threads, and their tallies.
static int flood_fd;
static volatile int flooding = 1;
static long ok_reads, eio_reads, other_reads;
static pthread_mutex_t tally = PTHREAD_MUTEX_INITIALIZER;
static void *flood(void *arg) {
    (void)arg;
    char buf[4096];
    while (flooding) {
        ssize_t n = pread(flood_fd, buf, sizeof buf, 0);
        pthread_mutex_lock(&tally);
        if (n >= 0) ok_reads++; else if (errno == EIO) eio_reads++; else other_reads++;
        pthread_mutex_unlock(&tally);
    }
    return NULL;
}

static int wait_file(const char *path, int seconds) {
    for (int i = 0; i < seconds * 20; i++) {
        if (access(path, F_OK) == 0) return 0;
        usleep(50000);
    }
    return -1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "send") && argc == 4) {
        // Opens a file of this container's /proc and hands the fd to whoever listens at SOCK.
        int fd = open(argv[3], O_RDONLY | O_CLOEXEC);
        int s = unix_socket(argv[2], 0);
        if (fd < 0 || s < 0) { printf("sent=%d\n", errno); return 1; }
        char byte = 'x';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        char control[CMSG_SPACE(sizeof(int))] = {0};
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        printf("sent=%d\n", sendmsg(s, &m, 0) == 1 ? 0 : errno);
        return 0;
    }
    if (!strcmp(argv[1], "hold") && argc == 7) {
        // hold SOCK GOT GO THREADS SECONDS: receives an fd, says so (GOT), waits for GO, then
        // THREADS threads read it for SECONDS.
        int l = unix_socket(argv[2], 1);
        int s = l < 0 ? -1 : accept4(l, NULL, NULL, SOCK_CLOEXEC);
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        char control[CMSG_SPACE(sizeof(int))];
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
        if (s < 0 || recvmsg(s, &m, 0) != 1 || !CMSG_FIRSTHDR(&m)) { printf("received=%d\n", errno); return 1; }
        memcpy(&flood_fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
        printf("received=0\n");
        close(open(argv[3], O_CREAT | O_WRONLY, 0644));
        if (wait_file(argv[4], 60) < 0) return 1;
        int threads = atoi(argv[5]);
        pthread_t t[256];
        for (int i = 0; i < threads && i < 256; i++) pthread_create(&t[i], NULL, flood, NULL);
        sleep(atoi(argv[6]));
        flooding = 0;
        for (int i = 0; i < threads && i < 256; i++) pthread_join(t[i], NULL);
        printf("flood-ok=%ld flood-eio=%ld flood-other=%ld\n", ok_reads, eio_reads, other_reads);
        return 0;
    }
    if (!strcmp(argv[1], "time") && argc == 4) {
        // time PATH N: N reads of PATH (open, read, close); the slowest in ms.
        double worst = 0;
        int errors = 0;
        char buf[8192];
        for (int i = 0; i < atoi(argv[3]); i++) {
            double start = now_ms();
            int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
            ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
            if (n <= 0) errors++;
            if (fd >= 0) close(fd);
            double took = now_ms() - start;
            if (took > worst) worst = took;
        }
        printf("time-worst-ms=%d time-errors=%d\n", (int)worst, errors);
        return 0;
    }
    if (!strcmp(argv[1], "odd") && argc == 3) {
        // Odd reads of one emulated file: a huge offset, a huge size, mmap (private and shared),
        // sendfile of a huge count, O_DIRECT, a file handle. Each prints NAME=errno-or-bytes.
        const char *p = argv[2];
        char *big = malloc(16 << 20);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        printf("open=%d\n", fd < 0 ? errno : 0);
        ssize_t n = pread(fd, big, 4096, (off_t)1 << 62);
        printf("far-offset=%zd\n", n < 0 ? -errno : n);
        n = pread(fd, big, 16 << 20, 0);
        printf("huge-size=%zd\n", n < 0 ? -errno : n);
        void *map = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
        printf("mmap-private=%d mmap-private-first=%d\n", map == MAP_FAILED ? errno : 0, map == MAP_FAILED ? -1 : ((char *)map)[0]);
        if (map != MAP_FAILED) munmap(map, 8192);
        map = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
        printf("mmap-shared=%d\n", map == MAP_FAILED ? errno : 0);
        if (map != MAP_FAILED) munmap(map, 8192);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        off_t off = 0;
        n = sendfile(null, fd, &off, (size_t)1 << 40);
        printf("sendfile=%zd\n", n < 0 ? -errno : n);
        int direct = open(p, O_RDONLY | O_DIRECT | O_CLOEXEC);
        n = direct < 0 ? -1 : read(direct, big, 4096);
        printf("odirect-open=%d odirect-read=%zd\n", direct < 0 ? errno : 0, n < 0 ? -errno : n);
        struct { struct file_handle h; unsigned char b[128]; } fh = { .h.handle_bytes = 128 };
        int mount_id = 0;
        int named = name_to_handle_at(AT_FDCWD, p, &fh.h, &mount_id, 0);
        int byhandle = named < 0 ? -1 : open_by_handle_at(fd, &fh.h, O_RDONLY);
        printf("handle-name=%d handle-open=%d\n", named < 0 ? errno : 0, named < 0 ? -1 : (byhandle < 0 ? errno : 0));
        n = pread(fd, big, 4096, 0);
        printf("read-after=%zd\n", n < 0 ? -errno : n);
        return 0;
    }
    if (!strcmp(argv[1], "sysinfo")) {
        // What sysinfo(2) tells (busybox uptime and free ask it, not /proc).
        struct sysinfo si;
        if (sysinfo(&si) < 0) { printf("sysinfo=%d\n", errno); return 1; }
        printf("sysinfo-uptime=%ld sysinfo-totalram-kb=%llu\n", si.uptime, (unsigned long long)si.totalram * si.mem_unit / 1024);
        return 0;
    }
    if (!strcmp(argv[1], "comm") && argc >= 3) {
        // As the container's init: a comm that looks like /proc/PID/stat's fields ("x) 1 2 3"),
        // kept for the container's life while a child runs the rest.
        prctl(PR_SET_NAME, ") 1 2 3 4 5 6 7", 0, 0, 0);
        pid_t pid = fork();
        if (pid == 0) {
            execv(argv[2], argv + 2);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    return 2;
}
"""#

        static func compile(into bundle: String) throws {
            try GrantAttacks.compile(source, into: bundle, at: "/bin/r11")
        }

        static func results(_ text: String) -> [String: String] { AttackRound10.results(text) }

        /// The VM-side PID of a container's init, from `runc state`.
        static func initPID(_ sandbox: RuntimeSandbox, _ id: String) throws -> Int32? {
            let state = try sandbox.runtime(["state", id])
            guard let data = state.stdout.data(using: .utf8), let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return (json["pid"] as? NSNumber)?.int32Value
        }

        /// A container's emulated file read by a process of another container through an fd
        /// handed over a unix socket on a shared volume (two containers of one user: `docker run
        /// -v vol:/v` twice), after the first container is gone. ecid no longer knows its key, and
        /// a read for a key ecid does not know waited up to 2 s (`registrationWait`, meant for a
        /// container whose notify fd is still on its way) *on one of the FUSE server's two threads*.
        /// Sixteen threads reading that fd keep both threads asleep, and every other container's
        /// read, every LOOKUP of runc creating a container (its bind sources) and every fresh
        /// procfs (ecid's open_tree of the files) queues behind them.
        /// Must hold: the neighbour's reads of its own /proc/uptime stay fast (< 1 s) during the
        /// flood, and the flood reads fail (EIO), never another container's numbers.
        /// Against f24dea4: ESCAPED (DoS of every container's emulated files): the neighbour's
        /// slowest read took many seconds (see the printed time-worst-ms).
        @Test func deadContainersFileStallsNoOtherContainer() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let shared = sandbox.directory + "/shared"
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o1777])
            func share(_ config: inout [String: Any]) {
                Integration.RuntimeLocks.addMount(&config, ["destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]])
            }
            let holder = try sandbox.makeBundle("r11-holder", script: "/bin/r11 hold /shared/sock /out/got /out/go 16 6 > /out/hold 2>&1") { share(&$0) }
            let neighbour = try sandbox.makeBundle(
                "r11-neighbour", script: "touch /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done; /bin/r11 time /proc/uptime 3 > /out/time 2>&1"
            ) { Emulation.limited(&$0, memory: 64 << 20) }
            let sender = try sandbox.makeBundle("r11-sender", script: "/bin/r11 send /shared/sock /proc/meminfo > /out/send 2>&1") { share(&$0) }
            for bundle in [holder, neighbour, sender] { try Self.compile(into: bundle) }

            let held = BackgroundContainer(sandbox, bundle: holder, id: "r11-holder")
            defer { A.delete(sandbox, "r11-holder") }
            let victim = BackgroundContainer(sandbox, bundle: neighbour, id: "r11-neighbour")
            defer { A.delete(sandbox, "r11-neighbour") }
            victim.waitFor("ready")
            let sent = try sandbox.runtime(["run", "--bundle", sender, "r11-sender"])
            #expect(sent.status == 0 && (try? sandbox.output(sender, "send")) == "sent=0", "\(sent.stderr) \((try? sandbox.output(sender, "send")) ?? "")")
            held.waitFor("got")
            // The sender is gone: ecid forgets its key when its notify fd hangs up.
            usleep(500_000)
            held.go()
            usleep(1_000_000)
            victim.go()
            #expect(Integration.Ecid.waitFor(neighbour + "/out/time", seconds: 90) { $0.contains("time-errors") }, "the neighbour's reads never finished")
            let timing = Self.results((try? sandbox.output(neighbour, "time")) ?? "")
            try held.waitUntilGone()
            let flood = Self.results((try? sandbox.output(holder, "hold")) ?? "")
            print("AttackRound11.deadContainersFileStallsNoOtherContainer: \(timing) \(flood)")
            #expect(timing["time-errors"] == "0", "the neighbour's own reads: \(timing)")
            #expect((Int(timing["time-worst-ms"] ?? "") ?? 99_999) < 1000, "the neighbour's read waited behind a dead container's reads: \(timing)")
            #expect(flood["flood-ok"] == "0" && (Int(flood["flood-eio"] ?? "") ?? 0) > 0, "the dead container's file: \(flood)")
            #expect(ecid.process.isRunning)
        }

        /// ContainerProcView read the init's cgroup files by absolute path: a cgroup path near
        /// PATH_MAX (a container whose cgroup is delegated nests sub-cgroups, long names, and
        /// moves its init in: cgroup v2 in the VM, where runc hands the container its cgroup)
        /// makes `/sys/fs/cgroup/memory` + path + `/memory.usage_in_bytes` ENAMETOOLONG while
        /// /proc/PID/cgroup still names it; usage unknown, and meminfo fell back to the VM's
        /// file whole. Deep nesting also made every read walk every ancestor by full path
        /// (quadratic). On this v1 host the test, as the VM's root, makes the chain and moves the
        /// init (what a delegated container does itself on v2).
        /// Must hold: MemTotal stays the container's 64 MiB. The neighbour: the same read
        /// before the move.
        /// Against f24dea4: ESCAPED (the VM's MemTotal).
        @Test func deepCgroupPathNeverShowsTheVMsMeminfo() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                grep MemTotal /proc/meminfo > /out/before
                touch /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done
                grep MemTotal /proc/meminfo > /out/after 2>&1
                cat /proc/uptime > /out/uptime 2>&1
                """
            let bundle = try sandbox.makeBundle("r11-deep", script: script) { Emulation.limited(&$0, memory: 64 << 20) }
            let container = BackgroundContainer(sandbox, bundle: bundle, id: "r11-deep")
            defer { A.delete(sandbox, "r11-deep") }
            container.waitFor("ready")
            let pid = try #require(try Self.initPID(sandbox, "r11-deep"))
            let cgroups = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
            let memoryLine = try #require(cgroups.split(separator: "\n").first { $0.split(separator: ":", maxSplits: 2).dropFirst().first == "memory" })
            let path = String(memoryLine.split(separator: ":", maxSplits: 2)[2])
            let base = "/sys/fs/cgroup/memory"
            // base + path + "/cgroup.procs" fits PATH_MAX (the move), "/memory.usage_in_bytes" does not.
            let target = 4096 - base.count - 18
            var deep = path == "/" ? "" : path
            var made: [String] = []
            while deep.count < target {
                let length = min(200, target - deep.count - 1)
                guard length > 0 else { break }
                deep += "/" + String(repeating: "d", count: length)
                made.append(base + deep)
            }
            defer { for directory in made.reversed() { rmdir(directory) } }
            for directory in made { #expect(mkdir(directory, 0o755) == 0 || errno == EEXIST, "mkdir \(directory.count): \(errno)") }
            let moved = (try? "\(pid)".write(toFile: base + deep + "/cgroup.procs", atomically: false, encoding: .utf8)) != nil
            #expect(moved, "the move into \(deep.count) bytes of cgroup path")
            container.go()
            try container.waitUntilGone()
            let before = try sandbox.output(bundle, "before")
            let after = try sandbox.output(bundle, "after")
            print("AttackRound11.deepCgroupPathNeverShowsTheVMsMeminfo: path \(deep.count) bytes; before \(before); after \(after)")
            #expect(before.hasSuffix(" 65536 kB"), "the neighbour: \(before)")
            #expect(after.hasSuffix(" 65536 kB"), "a deep cgroup path showed the VM's meminfo: \(after)")
            #expect(try sandbox.output(bundle, "uptime").split(separator: " ").count == 2)
            #expect(ecid.process.isRunning)
        }

        /// cgroup v2 (the VM): a container whose cgroup is delegated (rw cgroupfs under
        /// `--privileged`, systemd as init does it at boot: PID 1 into /init.scope) moves its
        /// init into a child cgroup without the memory controller (its cgroup.subtree_control is
        /// empty). memory.current is absent there, usage unknown, and meminfo was the VM's file.
        /// This host is cgroup v1, so the reader is run over a v2 tree of that shape on a tmpfs
        /// (the container cgroup `c` with its 64 MiB limit and counters, `c/init.scope` with
        /// cpu.stat only).
        /// Must hold: MemTotal 65536 kB, usage the container's. The neighbour: the init in `c`.
        /// Against f24dea4: ESCAPED (the VM's meminfo whole).
        @Test func initInAMemorylessChildCgroupNeverShowsTheVMsMeminfo() throws {
            let root = try TestSupport.temporaryDirectory("r11-cgroup")
            defer { _ = try? TestSupport.run(["/bin/rm", "-rf", root]) }
            let files: [String: String] = [
                "/memory.max": "max\n", "/cpu.stat": "usage_usec 1\n",
                "/c/memory.max": "67108864\n", "/c/memory.current": "16777216\n", "/c/memory.stat": "anon 8388608\nfile 4194304\n",
                "/c/memory.swap.max": "0\n", "/c/memory.swap.current": "0\n", "/c/cpu.stat": "usage_usec 2000000\n",
                "/c/cpuset.cpus.effective": "0\n", "/c/init.scope/cpu.stat": "usage_usec 1000\n",
            ]
            try FileManager.default.createDirectory(atPath: root + "/c/init.scope", withIntermediateDirectories: true)
            for (path, text) in files { try text.write(toFile: root + path, atomically: false, encoding: .utf8) }
            let host = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
            for (name, path) in [("neighbour", "/c"), ("moved", "/c/init.scope")] {
                let reader = CgroupReader(location: try CgroupLocation(unifiedPath: path), root: root)
                let meminfo = MeminfoView.render(host: host, memory: reader.memory())
                let total = meminfo.split(separator: "\n").first.map(String.init) ?? ""
                print("AttackRound11.initInAMemorylessChildCgroupNeverShowsTheVMsMeminfo (\(name)): \(total)")
                #expect(total.hasSuffix(" 65536 kB"), "\(name): \(total)")
                #expect(reader.memory().usage == 16_777_216, "\(name): usage \(String(describing: reader.memory().usage))")
                #expect(reader.cpus() == [0], "\(name)")
            }
        }

        /// The emulated /proc/uptime and MemTotal are the container's, but the VM's uptime and
        /// memory still show through interfaces the emulation leaves alone: the emulated
        /// /proc/stat copies the VM's `btime` (now - btime = the VM's uptime), and sysinfo(2),
        /// which busybox `uptime` and `free` and many runtimes ask instead of /proc, answers with
        /// the VM's uptime and total RAM (the kernel's; so does clock_gettime(CLOCK_BOOTTIME)).
        /// Must hold (by the promise "never the VM's numbers"): all agree with the container's
        /// /proc/uptime and MemTotal. The neighbour: /proc/uptime and /proc/meminfo themselves.
        /// Against f24dea4 (and after this round's fixes): REVEALED, a known issue. Not fixed
        /// here: `btime` shifted to the container's start would put every process's start time
        /// (ps: btime + field 22) in the future by that much, a trade the lead decides; sysinfo
        /// needs a trap of its own (ecid, SeccompTraps) or a time namespace with a boottime offset
        /// (which /proc/uptime itself honours), outside this round's files.
        @Test func vmUptimeAndMemoryShowThroughOtherInterfaces() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let script = """
                cut -d. -f1 /proc/uptime > /out/uptime
                grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2 > /out/memtotal
                echo $(( $(date +%s) - $(awk '/^btime/ {print $2}' /proc/stat) )) > /out/btime-uptime
                /bin/r11 sysinfo > /out/sysinfo
                """
            let bundle = try sandbox.makeBundle("r11-other", script: script) { Emulation.limited(&$0, memory: 64 << 20) }
            try Self.compile(into: bundle)
            let run = try sandbox.runtime(["run", "--bundle", bundle, "r11-other"])
            #expect(run.status == 0, "\(run.stderr)")
            let uptime = Int(try sandbox.output(bundle, "uptime")) ?? -1
            let memTotal = Int(try sandbox.output(bundle, "memtotal")) ?? -1
            let btimeUptime = Int(try sandbox.output(bundle, "btime-uptime")) ?? -1
            let sysinfo = Self.results(try sandbox.output(bundle, "sysinfo"))
            print("AttackRound11.vmUptimeAndMemoryShowThroughOtherInterfaces: uptime \(uptime) MemTotal \(memTotal) btime-uptime \(btimeUptime) \(sysinfo)")
            #expect(uptime >= 0 && uptime < 60 && memTotal == 65536, "the neighbour: the emulated files")
            withKnownIssue("the VM's uptime and RAM through /proc/stat's btime and sysinfo(2): not emulated") {
                #expect(abs(btimeUptime - uptime) < 5, "/proc/stat btime gives the VM's uptime: \(btimeUptime) s")
                #expect((Int(sysinfo["sysinfo-uptime"] ?? "") ?? -1) < 60, "sysinfo(2) uptime: \(sysinfo)")
                #expect(Int(sysinfo["sysinfo-totalram-kb"] ?? "") == 65536, "sysinfo(2) total RAM: \(sysinfo)")
            }
        }

        /// Cheap attacks that held, on the binds and the files, each next to the container's
        /// own read: unmount (plain, lazy), move, bind and tmpfs over a bound file and over /proc,
        /// a bind of /proc without its submounts, a remount read-write, a procfs of a nested
        /// user namespace (`unshare -Urmpf --mount-proc`, the default container's way), odd reads
        /// (an offset of 2^62, 16 MiB at once, mmap private and shared, sendfile of 2^40 bytes,
        /// O_DIRECT, `open_by_handle_at` of the FUSE file's handle: CAP_DAC_READ_SEARCH of the
        /// VM's user namespace), an init whose comm mimics /proc/PID/stat fields. In locked,
        /// unlocked and default containers.
        /// Against f24dea4: HELD (see the printed values).
        @Test(arguments: ["locked", "unlocked", "default"])
        func bindsAndFilesHold(kind: String) throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let attacks = """
                mkdir -p /tmp/a /tmp/b /tmp/p; echo fake > /tmp/fake
                umount /proc/uptime 2>/dev/null; echo "umount=$?"
                umount -l /proc/meminfo 2>/dev/null; echo "umount-lazy=$?"
                mount --move /proc/stat /tmp/a 2>/dev/null; echo "move=$?"
                mount --bind /tmp/fake /proc/swaps 2>/dev/null; echo "bind-over=$?"
                mount -t tmpfs none /proc/cpuinfo 2>/dev/null; echo "tmpfs-over=$?"
                mount -o remount,bind,rw /proc/uptime 2>/dev/null; echo "remount-rw=$?"
                mount --bind /proc /tmp/p 2>/dev/null; echo "bind-proc=$?"
                grep MemTotal /tmp/p/meminfo 2>/dev/null | tr -s ' ' | tr ' ' '_' | sed 's/^/bind-proc-meminfo=/'
                umount -l /tmp/p 2>/dev/null
                unshare -Urmpf --mount-proc sh -c 'grep MemTotal /proc/meminfo' 2>&1 | tr -s ' ' | tr ' ' '_' | sed 's/^/userns-procfs=/'
                grep MemTotal /proc/meminfo | tr -s ' ' | tr ' ' '_' | sed 's/^/own-meminfo=/'
                grep -c ^processor /proc/cpuinfo | sed 's/^/own-nproc=/'
                /bin/r11 odd /proc/meminfo
                """
            let id = "r11-binds-\(kind)"
            let script = "/bin/r11 comm /bin/sh -c 'touch /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done'"
            let bundle = try sandbox.makeBundle(id, script: script) {
                switch kind {
                case "locked": Integration.RuntimeLocks.privileged(&$0)
                case "unlocked": Integration.RuntimeLocks.privilegedWithoutSysAdmin(&$0)
                default: break
                }
                Emulation.limited(&$0, memory: 64 << 20)
            }
            try Self.compile(into: bundle)
            let container = BackgroundContainer(sandbox, bundle: bundle, id: id)
            defer { A.delete(sandbox, id) }
            container.waitFor("ready")
            let exec = try sandbox.runtime(["exec"] + (kind == "default" ? [] : ["--cap", "CAP_SYS_ADMIN"]) + [id, "sh", "-c", attacks])
            container.go()
            try container.waitUntilGone()
            print("AttackRound11.bindsAndFilesHold (\(kind)): \(exec.stdout) \(exec.stderr)")
            let got = Self.results(exec.stdout)
            #expect(got["own-meminfo"] == "MemTotal:_65536_kB", "\(kind): the container's own meminfo (its init's comm is ') 1 2 3 ...'): \(exec.stdout)")
            #expect(got["own-nproc"] == "1", "\(kind): \(exec.stdout)")
            for attack in ["umount", "umount-lazy", "move", "bind-over", "tmpfs-over"] {
                #expect(got[attack] != nil && got[attack] != "0", "\(kind): \(attack) succeeded: \(exec.stdout)")
            }
            if got["bind-proc"] == "0" { #expect(got["bind-proc-meminfo"] == "MemTotal:_65536_kB", "\(kind): a bind of /proc: \(exec.stdout)") }
            if let userns = got["userns-procfs"], userns.hasPrefix("MemTotal") { #expect(userns == "MemTotal:_65536_kB", "\(kind): a nested user namespace's procfs: \(exec.stdout)") }
            #expect(got["open"] == "0" && got["read-after"].flatMap { Int($0) }.map { $0 > 0 } == true, "\(kind): \(exec.stdout)")
            #expect(got["handle-open"] != "0", "\(kind): open_by_handle_at: \(exec.stdout)")
            #expect(ecid.process.isRunning)
        }
    }
}
