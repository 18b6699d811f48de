import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// One ecid, several runc roots: dockerd, containerd's namespaces and Podman each keep
    /// their containers under a root of their own, and a container ID is unique only within
    /// one. ecid knows a container by ECI's directory of it (`HandOver.key`: the root's hash
    /// and the ID), so two containers with one ID are two containers.
    @Suite struct RuncRoots {
        typealias A = EciInitAttacks

        /// Container A (root A) has a `nosuid,nodev,noexec` tmpfs volume at /data and runs
        /// unlocked (no CAP_SYS_ADMIN at start: every mount call of an exec with CAP_SYS_ADMIN is
        /// ecid's to judge, and the kernel would let it clear the flags). Container B, same ID
        /// under root B, has no /data. An exec into A that remounts /data `suid` must be judged
        /// by A's initial mounts: refused, /data stays nosuid. The neighbour: the same exec
        /// makes and remounts a tmpfs of its own.
        /// Against 0e5614e (records keyed by ID): B's create replaced A's record, and A's exec was
        /// judged by B's mounts, where /data is no initial mount: nosuid was cleared.
        @Test func sameIDUnderTwoRootsKeepsTwoRecords() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let id = "same-id"
            let bundleA = try sandbox.makeBundle("root-a", script: "exec sleep 4893") {
                Integration.RuntimeLocks.privilegedWithoutSysAdmin(&$0)
                Integration.RuntimeLocks.addMount(&$0, ["destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec"]])
            }
            let bundleB = try sandbox.makeBundle("root-b", script: "exec sleep 4894") { Integration.RuntimeLocks.privilegedWithoutSysAdmin(&$0) }
            let started = try sandbox.runtimeDetached(["run", "-d", "--bundle", bundleA, id])
            defer { A.delete(sandbox, id) }
            #expect(started.status == 0, "\(started.stderr)")
            _ = try #require(try A.pid(of: "sleep 4893"))
            let rootB = sandbox.directory + "/runc-root-b"
            let startedB = try TestSupport.runDetached([sandbox.eciRunc, "--root", rootB, "run", "-d", "--bundle", bundleB, id], environment: sandbox.environment)
            defer {
                _ = try? TestSupport.run([sandbox.eciRunc, "--root", rootB, "kill", id, "KILL"], environment: sandbox.environment)
                for _ in 0..<100 where (try? TestSupport.run([sandbox.eciRunc, "--root", rootB, "delete", "-f", id], environment: sandbox.environment))?.status != 0 { usleep(50_000) }
            }
            #expect(startedB.status == 0, "\(startedB.stderr)")
            _ = try #require(try A.pid(of: "sleep 4894"))
            let script = """
                mount -o remount,suid /data 2>/dev/null; echo remount-suid=$?
                grep ' /data ' /proc/self/mountinfo | grep -q nosuid && echo data-nosuid
                mkdir -p /tmp/own && mount -t tmpfs none /tmp/own && mount -o remount,ro /tmp/own && mount -o remount,rw /tmp/own && touch /tmp/own/x; echo own=$?
                """
            let exec = try sandbox.runtime(["exec", "--cap", "CAP_SYS_ADMIN", id, "sh", "-c", script])
            print("RuncRoots.sameIDUnderTwoRootsKeepsTwoRecords: \(exec.stdout) \(exec.stderr)")
            #expect(exec.stdout.contains("own=0"), "the neighbour, a tmpfs of its own: \(exec.stdout) \(exec.stderr) \(ecid.log().suffix(1500))")
            #expect(exec.stdout.contains("remount-suid=") && !exec.stdout.contains("remount-suid=0"), "A's exec was judged by B's mounts: nosuid cleared: \(exec.stdout)")
            #expect(exec.stdout.contains("data-nosuid"), "A's /data lost nosuid: \(exec.stdout)")
            let records = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.stateDirectory + "/ecid/containers")) ?? []
            #expect(records.filter { $0.hasSuffix("-\(id).json") }.count == 2, "one record per container: \(records)")
        }
    }
}
