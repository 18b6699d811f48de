import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// ECI's syscall floor (`SyscallFloorPolicy`): eci-runc starts runc under a filter of its
    /// own, by number, which every container process inherits whatever its profile. A call
    /// runc's libseccomp cannot name (open_tree_attr, Linux 6.15) or that ECI has not reviewed
    /// fails with ENOSYS; reviewed calls next to it work. Each is checked against plain runc with
    /// the same bundle: what the kernel itself says of the call.
    @Suite struct SyscallFloor {
        typealias A = Integration.Ecid.EciInitAttacks

        /// `probe N...` makes each call N (native ABI; `i386:N` through int 0x80, the i386 ABI
        /// of a 64-bit process) with harmless arguments and prints `N=errno` (0: it returned).
        static let probeSource = #"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static long i386_call(long n) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(-1L), "c"(0L), "d"(0L) : "memory");
    return r;
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        int err;
        if (!strncmp(argv[i], "i386:", 5)) {
            long r = i386_call(strtol(argv[i] + 5, NULL, 0));
            err = r < 0 && r > -4096 ? (int)-r : 0;
        } else {
            errno = 0;
            long r = syscall(strtol(argv[i], NULL, 0), -1L, 0L, 0L, 0L, 0L, 0L);
            err = r < 0 ? errno : 0;
        }
        printf("%s=%d\n", argv[i], err);
    }
    return 0;
}
"""#

        /// 467 open_tree_attr (unnameable), 470 and 1000 (above the review); the neighbours:
        /// 468 file_getattr and 457 statmount (reviewed, new), 428 open_tree (the profile's
        /// ENOSYS when ecid traps; here no profile), getpid.
        static let calls = ["467", "470", "1000", "i386:467", "468", "457", "39", "i386:20"]

        static func results(_ text: String) -> [String: Int] {
            var results: [String: Int] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=")
                if parts.count == 2, let value = Int(parts[1]) { results[String(parts[0])] = value }
            }
            return results
        }

        /// A container with no seccomp profile at all (`--privileged`, `seccomp=unconfined`),
        /// unlocked (no CAP_SYS_ADMIN at start), and `runc exec --cap CAP_SYS_ADMIN` into it:
        /// the two shapes round 7 found open_tree_attr untrapped in. Under runc alone the kernel
        /// runs the call; under ECI neither the program nor the exec'd process gets it.
        @Test func unnameableAndUnreviewedCallsFailWithENOSYS() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let id = "floor"
            let probe = "/bin/probe \(Self.calls.joined(separator: " ")) > /out/report 2>&1"
            func bundle(_ name: String, script: String) throws -> String {
                let bundle = try sandbox.makeBundle(name, script: script) {
                    Integration.RuntimeLocks.privilegedWithoutSysAdmin(&$0)
                    if var linux = $0["linux"] as? [String: Any] {
                        linux.removeValue(forKey: "seccomp")
                        $0["linux"] = linux
                    }
                }
                try Integration.Ecid.GrantAttacks.compile(Self.probeSource, into: bundle, at: "/bin/probe")
                return bundle
            }

            // The kernel's own answers: the same container under plain runc.
            let plainBundle = try bundle("floor-plain", script: probe)
            let plain = try TestSupport.run(["/usr/sbin/runc", "--root", sandbox.directory + "/plain-runc", "run", "--bundle", plainBundle, "floor-plain"])
            let kernel = Self.results((try? sandbox.output(plainBundle, "report")) ?? "")
            print("SyscallFloor: plain runc (status \(plain.status)): \(kernel)")
            #expect(kernel["39"] == 0, "the probe did not run under plain runc: \(plain.stderr)")

            let bundle = try bundle(id, script: probe + "; exec sleep 4883")

            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundle, id])
            defer { A.delete(sandbox, id) }
            #expect(started.status == 0, "\(started.stderr)")
            _ = try #require(try A.pid(of: "sleep 4883"))
            let program = Self.results(try sandbox.output(bundle, "report"))
            let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", id, "/bin/probe"] + Self.calls)
            let execed = Self.results(exec.stdout)
            print("SyscallFloor: eci-runc: program \(program), exec \(execed) \(exec.stderr)")
            for (who, got) in [("the program", program), ("runc exec", execed)] {
                for refused in ["467", "470", "1000"] {
                    #expect(got[refused] == Int(ENOSYS), "\(who): call \(refused) was not refused with ENOSYS: \(got)")
                }
                for passed in ["468", "457", "39"] {
                    #expect(got[passed] != nil && got[passed] == kernel[passed], "\(who): reviewed call \(passed) answered \(got[passed] ?? -1), the kernel \(kernel[passed] ?? -1)")
                }
                if kernel["i386:20"] == 0 {
                    #expect(got["i386:467"] == Int(ENOSYS) && got["i386:20"] == 0, "\(who): the i386 ABI: \(got)")
                } else {
                    print("SyscallFloor: LOUD: this kernel has no i386 ABI for 64-bit processes (int 0x80 getpid: \(kernel["i386:20"] ?? -1)); the i386 half is checked by the unit tests only")
                }
            }
            // What the floor takes away must be there to take: the kernel runs open_tree_attr
            // (6.15+). On an older kernel the refusal above is the kernel's, and says nothing.
            if kernel["467"] == Int(ENOSYS) {
                print("SyscallFloor: LOUD: this kernel lacks open_tree_attr (467): the refusal is the kernel's own here")
            } else {
                #expect(kernel["467"] != nil, "the probe did not report 467 under plain runc")
            }
        }
    }
}
