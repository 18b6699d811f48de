import ECICore
import ECITestSupport
import Foundation
import Testing

extension Integration {
    /// Kernel behaviour that ECI's next design step builds on, checked on every machine the suite
    /// runs on (docs/ecid.md, "Locked initial mounts"): not ECI code, the kernel's.
    @Suite struct KernelFacts {
        /// `Tests/Fixtures/locked-mounts.c`: a runc-like container in its own user namespace;
        /// its runtime's mounts can be undone there, but once its root joins a copy of the mount
        /// namespace owned by a nested user namespace and copies that back into its own (what
        /// eci-init does) they are locked, the copy is owned by the container's user namespace
        /// (root without CAP_SYS_ADMIN binds nothing there, where in the first copy it binds as
        /// the owner), the root keeps its capabilities over its network and UTS namespaces, and the kernel
        /// refuses every way of undoing the mounts (unmount,
        /// remount, move, a bind without the masks, a fresh procfs or sysfs, an overlay over a
        /// masked layer, pivot_root into a mask) while tmpfs, remounts of one's own mounts and a
        /// nested runtime's pivot_root still work.
        @Test func mountsCopiedIntoANestedUserNamespaceAreLocked() throws {
            try TestSupport.requireRoot()
            let dir = try TestSupport.temporaryDirectory("locked-mounts")
            defer { try? FileSystem.removeTree(dir) }
            let mountsBefore = try TestSupport.mountPoints()
            let program = dir + "/locked-mounts"
            let built = try TestSupport.run(["/usr/bin/cc", "-static", "-O2", "-o", program, TestSupport.repositoryRoot + "/Tests/Fixtures/locked-mounts.c"])
            #expect(built.status == 0, "cc: \(built.stderr)")
            try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
            let run = try TestSupport.run(["/usr/bin/timeout", "60", program, dir + "/root"])
            #expect(run.status == 0, "locked-mounts (exit \(run.status)):\n\(run.stdout)\(run.stderr)")
            let lines = run.stdout.split(separator: "\n")
            #expect(lines.count == 34, "\(run.stdout)")
            #expect(lines.allSatisfy { $0.contains(" ok ") }, "\(run.stdout)")
            #expect(try TestSupport.mountPoints() == mountsBefore, "the program's namespaces died with it")
        }
    }
}
