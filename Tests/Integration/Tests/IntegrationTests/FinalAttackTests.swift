import ECICore
import ECIOCI
import ECITestSupport
import Foundation
import Testing

extension Integration.Ecid {
    /// An attack round on d7478f3 and da9cc94 (a locked container's profile may not answer any
    /// call with errno 0; config.json keys read as Go reads them). Each test states what must
    /// hold, next to the legitimate neighbour that must keep working; the outcome against
    /// e39a85b is in its doc comment. Both are fixed since: in a locked container's profile an
    /// errno must be 1...4095, and a container with startContainer or createContainer hooks
    /// keeps every trap (`SeccompTraps.coverage`).
    @Suite struct FinalAttacks {
        typealias A = EciInitAttacks

        // The errnoRet 65536 forgery of this round is `GrantAttacks2.forgedCapabilityCallsDoNotKeepGrants`
        // with that value (runc truncates the errno to 16 bits; refused since: 1...4095 only).

        /// runc runs `hooks.startContainer` inside the container, in its namespaces, after the
        /// masks are in place and the container's seccomp filter is loaded, and before it execs
        /// process.args: that is, before eci-init has made the locked copy. A locked container's
        /// filter leaves umount to the kernel (`Coverage.kernelLocked`), and in runc's own mount
        /// namespace nothing is locked yet: the hook, root with CAP_SYS_ADMIN, unmounts the mask
        /// of /proc/keys, and eci-init then copies and locks the unmasked tree. Only whoever
        /// writes config.json can add hooks (Docker, containerd's CRI and Podman send none of
        /// their users'), as for the "Args" attack of the previous round. Fix idea: refuse
        /// startContainer (and createContainer) hooks for a locked container, or keep every
        /// trap when the spec has any.
        @Test func startContainerHookCannotUnmaskBeforeTheLock() throws {
            let sandbox = try RuntimeSandbox()
            defer { sandbox.cleanup() }
            let ecid = try Daemon(sandbox: sandbox)
            defer { ecid.kill() }
            let all = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_SYS_CHROOT", "CAP_SYS_ADMIN"]
            let probe = "grep -c ' /proc/keys ' /proc/self/mountinfo > /out/masks; umount /proc/keys 2>/dev/null; echo $? > /out/umount"
            // The neighbour: root with CAP_SYS_ADMIN and a harmless startContainer hook: locked,
            // the mask is there, and the kernel refuses the program's unmount.
            let plain = try sandbox.makeBundle("hook-plain", script: probe) {
                A.capabilities(&$0, all)
                $0["hooks"] = ["startContainer": [["path": "/bin/sh", "args": ["sh", "-c", "echo hook > /out/hook"]]]]
            }
            let plainRun = try sandbox.runtime(["run", "--bundle", plain, "hook-plain"])
            A.delete(sandbox, "hook-plain")
            if plainRun.status == 0 {
                #expect(try sandbox.output(plain, "hook") == "hook")
                #expect(try sandbox.output(plain, "masks") == "1")
                #expect(try sandbox.output(plain, "umount") != "0", "root unmasked /proc/keys in a locked container")
            } else {
                print("FinalAttacks.startContainerHook: the harmless hook was refused: \(plainRun.stderr)")
            }

            let bundle = try sandbox.makeBundle("hook-unmask", script: probe) {
                A.capabilities(&$0, all)
                $0["hooks"] = ["startContainer": [["path": "/bin/sh", "args": ["sh", "-c", "umount /proc/keys; echo $? > /out/hook"]]]]
            }
            let run = try sandbox.runtime(["run", "--bundle", bundle, "hook-unmask"])
            A.delete(sandbox, "hook-unmask")
            print("FinalAttacks.startContainerHook: status \(run.status), hook umount \((try? sandbox.output(bundle, "hook")) ?? "(not run)"), masks \((try? sandbox.output(bundle, "masks")) ?? "(not run)") \(run.stderr)")
            guard run.status == 0 else { return }  // refused: fine
            let masks = (try? sandbox.output(bundle, "masks")) ?? "(not run)"
            #expect(masks != "0", "a startContainer hook unmounted the mask of /proc/keys before eci-init locked the namespace (untrapped umount); the program sees it unmasked")
        }
    }
}
