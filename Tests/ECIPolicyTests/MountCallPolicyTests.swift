import Foundation
import Testing

@testable import ECIPolicy

/// ecid's mount rules, each both ways: the attack refused next to the neighbour that works.
@Suite struct MountCallPolicyTests {
    typealias P = MountCallPolicy

    static func m(_ point: String, _ type: String, _ device: String, _ root: String = "/", _ options: String = "rw") -> P.Mount {
        P.Mount(device: device, root: root, mountPoint: point, fsType: type, options: options.split(separator: ",").map(String.init))
    }

    /// A busybox container as runc leaves it (Docker's masks), with a read-only volume at /data.
    static let initialList: [P.Mount] = [
        m("/", "overlay", "0:50"),
        m("/proc", "proc", "0:60", "/", "rw,nosuid,nodev,noexec"),
        m("/dev", "tmpfs", "0:62", "/", "rw,nosuid"),
        m("/sys", "sysfs", "0:61", "/", "ro,nosuid,nodev,noexec"),
        m("/sys/fs/cgroup", "cgroup2", "0:30", "/docker/abc", "ro,nosuid,nodev,noexec"),
        m("/data", "ext4", "8:1", "/srv/vol", "ro"),
        m("/etc/hosts", "ext4", "8:1", "/var/lib/docker/containers/abc/hosts", "rw"),
        m("/proc/kcore", "devtmpfs", "0:5", "/null", "rw,nosuid"),
        m("/proc/sys", "proc", "0:60", "/sys", "ro,nosuid,nodev,noexec"),
        m("/sys/firmware", "tmpfs", "0:70", "/", "ro"),
        m("/secret", "tmpfs", "0:71", "/", "ro"),
    ]
    static let initial = P.InitialMounts(mounts: initialList, maskedPaths: ["/proc/kcore", "/secret"], readonlyPaths: ["/proc/sys"])

    static func facts(_ target: String, root: Bool = true, mount: P.Mount? = nil, source: String? = nil, sourceMount: P.Mount? = nil,
                      extra: [P.Mount] = []) -> P.Facts {
        let visible = initialList + extra
        let targetMount = mount ?? visible.last { $0.mountPoint == target }
        return P.Facts(targetPath: target, targetMount: targetMount, targetIsMountRoot: root && targetMount != nil, sourcePath: source,
                       sourceMount: sourceMount ?? source.flatMap { s in visible.last { $0.mountPoint == s } },
                       sourceIsMountRoot: source.map { s in visible.contains { $0.mountPoint == s } } ?? false, visible: visible)
    }

    static func denied(_ d: P.Decision) -> Bool { if case .deny(1, _) = d { return true } else { return false } }

    static let tmpfsAtMnt = m("/mnt", "tmpfs", "0:90")

    @Test func protectedMountsStayMountedOwnMountsDoNot() {
        for point in ["/", "/proc", "/sys", "/proc/kcore", "/proc/sys", "/sys/firmware", "/sys/fs/cgroup", "/secret"] {
            let d = P.decide(.umount(target: point, flags: 0), initial: Self.initial, facts: Self.facts(point))
            #expect(Self.denied(d), "umount \(point): \(d)")
            let lazy = P.decide(.umount(target: point, flags: 2), initial: Self.initial, facts: Self.facts(point))
            #expect(Self.denied(lazy), "umount -l \(point)")
        }
        let own = P.decide(.umount(target: "/mnt", flags: 0), initial: Self.initial, facts: Self.facts("/mnt", extra: [Self.tmpfsAtMnt]))
        #expect(own == .perform)
        // An ordinary initial mount (a volume, the engine's files) may go: systemd unmounts
        // everything at shutdown, and nothing is hidden beneath it.
        #expect(P.decide(.umount(target: "/data", flags: 0), initial: Self.initial, facts: Self.facts("/data")) == .perform)
        // Not a mount root: the kernel answers EINVAL itself.
        #expect(P.decide(.umount(target: "/etc", flags: 0), initial: Self.initial, facts: Self.facts("/etc", root: false, mount: Self.initialList[0])) == .perform)
    }

    @Test func copiesInOtherNamespacesAreProtectedToo() {
        // After unshare -m and pivot_root, the mask is the same file system and root elsewhere.
        let copy = Self.m("/oldroot/proc/kcore", "devtmpfs", "0:5", "/null", "rw,nosuid")
        let d = P.decide(.umount(target: copy.mountPoint, flags: 2), initial: Self.initial, facts: Self.facts(copy.mountPoint, extra: [copy]))
        #expect(Self.denied(d))
        let procCopy = Self.m("/x/proc", "proc", "0:60")
        #expect(Self.denied(P.decide(.umount(target: "/x/proc", flags: 0), initial: Self.initial, facts: Self.facts("/x/proc", extra: [procCopy]))))
    }

    @Test func readOnlyStaysReadOnly() {
        let remount = P.msRemount | P.msBind
        let rw = P.decide(.mount(source: nil, target: "/data", fsType: nil, flags: remount, data: nil), initial: Self.initial, facts: Self.facts("/data"))
        #expect(Self.denied(rw), "remount,bind,rw of a read-only volume")
        let plainRW = P.decide(.mount(source: nil, target: "/data", fsType: nil, flags: P.msRemount | 0xC0ED_0000, data: nil), initial: Self.initial, facts: Self.facts("/data"))
        #expect(Self.denied(plainRW), "remount,rw with the historical magic")
        let ro = P.decide(.mount(source: nil, target: "/data", fsType: nil, flags: remount | P.msRdonly, data: nil), initial: Self.initial, facts: Self.facts("/data"))
        #expect(ro == .perform)
        // A bind of a subdirectory of the volume, made by the container, inherits the lock.
        let sub = Self.m("/x", "ext4", "8:1", "/srv/vol/sub", "ro")
        #expect(Self.denied(P.decide(.mount(source: nil, target: "/x", fsType: nil, flags: remount, data: nil), initial: Self.initial, facts: Self.facts("/x", extra: [sub]))))
        // The same file system's writable initial mount (the engine's hosts file) stays writable.
        let hosts = P.decide(.mount(source: nil, target: "/etc/hosts", fsType: nil, flags: remount, data: nil), initial: Self.initial, facts: Self.facts("/etc/hosts"))
        #expect(hosts == .perform)
        // The container's own tmpfs may go ro and back.
        let own = P.decide(.mount(source: nil, target: "/mnt", fsType: nil, flags: P.msRemount, data: "size=1m"), initial: Self.initial, facts: Self.facts("/mnt", extra: [Self.tmpfsAtMnt]))
        #expect(own == .perform)
    }

    @Test func nosuidNodevNoexecCannotBeCleared() {
        let lose = P.decide(.mount(source: nil, target: "/dev", fsType: nil, flags: P.msRemount | P.msBind, data: nil), initial: Self.initial, facts: Self.facts("/dev"))
        #expect(Self.denied(lose))
        let keep = P.decide(.mount(source: nil, target: "/dev", fsType: nil, flags: P.msRemount | P.msBind | P.msNosuid, data: nil), initial: Self.initial, facts: Self.facts("/dev"))
        #expect(keep == .perform)
        let proc = P.decide(.mount(source: nil, target: "/proc", fsType: nil, flags: P.msRemount | P.msNosuid | P.msNodev, data: "hidepid=2"), initial: Self.initial, facts: Self.facts("/proc"))
        #expect(Self.denied(proc), "noexec dropped")
        let procOK = P.decide(.mount(source: nil, target: "/proc", fsType: nil, flags: P.msRemount | P.msNosuid | P.msNodev | P.msNoexec, data: "hidepid=2"), initial: Self.initial, facts: Self.facts("/proc"))
        #expect(procOK == .perform)
    }

    @Test func newMountsWorkExceptOverProtectedOnes() {
        func new(_ type: String, at target: String, root: Bool = false) -> P.Decision {
            P.decide(.mount(source: "none", target: target, fsType: type, flags: 0, data: nil), initial: Self.initial,
                     facts: Self.facts(target, root: root, mount: Self.initialList[0]))
        }
        #expect(new("tmpfs", at: "/mnt") == .perform)
        #expect(new("overlay", at: "/var/lib/docker/overlay2/x/merged") == .perform)
        for target in ["/proc", "/proc/sys", "/sys", "/", "/secret", "/sys/fs"] {
            #expect(Self.denied(new("tmpfs", at: target)), "tmpfs over \(target)")
        }
        #expect(new("proc", at: "/mnt/proc") == .perform, "fresh procfs: made with its masks")
        // This container's /sys is read-only: a fresh sysfs must be too (the kernel's rule in a
        // user namespace, which the helper's staging namespace, with the VM's rw /sys, would
        // not apply). Its /proc is read-write: a fresh procfs may be.
        #expect(Self.denied(new("sysfs", at: "/mnt/sys")), "a read-write fresh sysfs where /sys is read-only")
        let readOnlySysfs = P.decide(.mount(source: "none", target: "/mnt/sys", fsType: "sysfs", flags: P.msRdonly, data: nil), initial: Self.initial,
                                     facts: Self.facts("/mnt/sys", mount: Self.initialList[0]))
        #expect(readOnlySysfs == .perform, "fresh sysfs, read-only: made with its masks")
        #expect(Self.denied(new("proc", at: "/proc")), "a fresh procfs over /proc still covers it")
        #expect(P.needsMasks(fsType: "proc") && P.needsMasks(fsType: "sysfs"))
        #expect(!P.needsMasks(fsType: "tmpfs") && !P.needsMasks(fsType: nil))
    }

    /// `unshare -pfm --mount-proc` and `ip netns exec`: a fresh procfs or sysfs (ecid's, masked)
    /// over a whole /proc or /sys that is private or a slave, in any mount namespace, up to
    /// `maximumStack` deep; refused on a mount in a peer group (it would propagate), on anything
    /// but a whole procfs, and when anything it would cover is neither procfs nor a mask. sysfs
    /// may also hide the cgroup mounts below /sys/fs/cgroup.
    @Test func freshProcfsReplacesAWholeOneWhereNothingPropagatesAFewDeep() {
        func shared(_ mount: P.Mount, _ value: Bool?) -> P.Mount {
            var mount = mount
            mount.shared = value
            return mount
        }
        func decide(
            _ type: String, over target: String, flags: UInt64 = 0, peer: Bool? = false, visible: [P.Mount] = Self.initialList,
            initial: P.InitialMounts = Self.initial
        ) -> P.Decision {
            let visible = visible.map { $0.mountPoint == target ? shared($0, peer) : $0 }
            let mount = visible.last { $0.mountPoint == target }
            let facts = P.Facts(targetPath: target, targetMount: mount, targetIsMountRoot: mount != nil, visible: visible)
            return P.decide(.mount(source: "proc", target: target, fsType: type, flags: flags, data: nil), initial: initial, facts: facts)
        }
        #expect(decide("proc", over: "/proc") == .perform, "unshare --mount-proc: a private /proc")
        #expect(Self.denied(decide("proc", over: "/proc", peer: true)), "a /proc in a peer group: the fresh one would propagate")
        #expect(Self.denied(decide("proc", over: "/proc", peer: nil)), "not known to be private: taken as shared")
        func reason(_ d: P.Decision) -> String { if case let .deny(_, why) = d { return why } else { return "" } }
        #expect(reason(decide("proc", over: "/proc", peer: true)).contains("peer group"))
        #expect(Self.denied(decide("tmpfs", over: "/proc")), "only a fresh procfs replaces a procfs")
        #expect(Self.denied(decide("sysfs", over: "/proc", flags: P.msRdonly)), "a sysfs does not replace a procfs")
        #expect(Self.denied(decide("proc", over: "/proc/sys")), "a bind of a part of procfs is no whole procfs")
        // An initial mount below /proc that is neither procfs nor a spec mask (a user's LXCFS
        // file, say): the fresh procfs does not bring it, so it may not be covered.
        let lxcfs = Self.m("/proc/meminfo", "fuse.lxcfs", "0:99", "/proc/meminfo")
        let withLxcfs = P.InitialMounts(mounts: Self.initialList + [lxcfs], maskedPaths: ["/proc/kcore", "/secret"], readonlyPaths: ["/proc/sys"])
        #expect(Self.denied(decide("proc", over: "/proc", visible: Self.initialList + [lxcfs], initial: withLxcfs)), "covering a protected FUSE file")
        // The container's own mount there is no protected one: it may be covered.
        #expect(decide("proc", over: "/proc", visible: Self.initialList + [lxcfs]) == .perform, "covering its own mount")
        // ECI's own emulated files: their procfs counterparts are unmasked, so a fresh procfs
        // may hide them (it shows the VM's numbers there; docs/ecid.md).
        let emulated = Self.m("/proc/uptime", P.emulationFileSystemType, "0:98", "/0123456789ab-c/proc/uptime")
        let withEmulated = P.InitialMounts(mounts: Self.initialList + [emulated], maskedPaths: ["/proc/kcore", "/secret"], readonlyPaths: ["/proc/sys"])
        #expect(decide("proc", over: "/proc", visible: Self.initialList + [emulated], initial: withEmulated) == .perform, "covering an emulated file")
        #expect(Self.denied(decide("tmpfs", over: "/proc/uptime", visible: Self.initialList + [emulated], initial: withEmulated)), "an emulated file stays protected")
        #expect(withEmulated.hasEmulatedFiles && !Self.initial.hasEmulatedFiles, "its fresh procfs mounts get the emulated files")
        // On a fresh procfs (ecid's helper put them there), an emulated file is protected like a mask.
        let freshProc = Self.m("/mnt/p", "proc", "0:80", "/", "rw,nosuid,nodev,noexec")
        let onFresh = Self.m("/mnt/p/uptime", P.emulationFileSystemType, "0:98", "/0123456789ab-c/proc/uptime")
        #expect(P.isMask(onFresh, visible: Self.initialList + [freshProc, onFresh], initial: withEmulated), "an emulated file on a fresh procfs")
        let ownFuse = Self.m("/mnt/p/version", P.emulationFileSystemType, "0:97", "/")
        #expect(!P.isMask(ownFuse, visible: Self.initialList + [freshProc, ownFuse], initial: withEmulated), "not at an emulated file's place")
        // The nested namespace's /proc already replaced once (its masks ecid's): again.
        let fresh = [Self.m("/proc", "proc", "0:80", "/", "rw,nosuid,nodev,noexec"), Self.m("/proc/kcore", "devtmpfs", "0:5", "/null"),
                     Self.m("/proc/sys", "proc", "0:80", "/sys", "ro,nosuid,nodev,noexec")]
        #expect(decide("proc", over: "/proc", visible: Self.initialList + fresh) == .perform, "a fresh procfs over a fresh procfs")
        // A few deep, no more: four whole procfs mounts at /proc already.
        let deep = Self.initialList + fresh + fresh.prefix(1) + fresh.prefix(1)
        #expect(decide("proc", over: "/proc", visible: Self.initialList + fresh + fresh.prefix(1)) == .perform, "the fourth")
        #expect(Self.denied(decide("proc", over: "/proc", visible: deep)), "a fifth")
        #expect(reason(decide("proc", over: "/proc", visible: deep)).contains("at most 4"))
        // sysfs: this container's /sys is read-only (so must the fresh one be); its cgroup
        // mount below /sys covers an empty sysfs directory, which is what the fresh one shows.
        let withCgroup = P.InitialMounts(mounts: Self.initialList, maskedPaths: ["/proc/kcore", "/sys/firmware"], readonlyPaths: ["/proc/sys"])
        #expect(decide("sysfs", over: "/sys", flags: P.msRdonly, initial: withCgroup) == .perform, "ip netns exec: covering /sys/fs/cgroup with the whole /sys")
        #expect(Self.denied(decide("sysfs", over: "/sys", flags: P.msRdonly)), "/sys/firmware covered where the spec does not mask it: not replaced")
        // cgroup v1: a tmpfs at /sys/fs/cgroup with a hierarchy below it.
        let v1 = Self.initialList.filter { $0.fsType != "cgroup2" } + [
            Self.m("/sys/fs/cgroup", "tmpfs", "0:46", "/", "rw"), Self.m("/sys/fs/cgroup/cpu", "cgroup", "0:29", "/", "ro"),
        ]
        let v1Spec = P.InitialMounts(mounts: v1, maskedPaths: ["/proc/kcore", "/sys/firmware"], readonlyPaths: ["/proc/sys"])
        #expect(decide("sysfs", over: "/sys", flags: P.msRdonly, visible: v1, initial: v1Spec) == .perform, "cgroup v1 below /sys")
        let elsewhere = v1 + [Self.m("/sys/kernel/security", "securityfs", "0:7", "/", "ro")]
        let elsewhereSpec = P.InitialMounts(mounts: elsewhere, maskedPaths: ["/proc/kcore", "/sys/firmware"], readonlyPaths: ["/proc/sys"])
        #expect(Self.denied(decide("sysfs", over: "/sys", flags: P.msRdonly, visible: elsewhere, initial: elsewhereSpec)), "a protected mount outside fs/cgroup")
        let noCgroup = Self.initialList.filter { $0.fsType != "cgroup2" }
        let sysSpec = P.InitialMounts(mounts: noCgroup, maskedPaths: ["/proc/kcore", "/sys/firmware"], readonlyPaths: ["/proc/sys"])
        #expect(decide("sysfs", over: "/sys", flags: P.msRdonly, visible: noCgroup, initial: sysSpec) == .perform, "ip netns exec: sysfs over a whole /sys")
        #expect(Self.denied(decide("sysfs", over: "/sys", visible: noCgroup, initial: sysSpec)), "read-write where /sys is read-only")
        #expect(Self.denied(decide("sysfs", over: "/sys", flags: P.msRdonly, peer: true, visible: noCgroup, initial: sysSpec)), "a shared /sys")
    }

    /// A fresh procfs at /mnt/p and sysfs at /mnt/s as ecid's helper leaves them: the spec's
    /// masks and read-only paths put on relative to each file system's root.
    static let spec = P.InitialMounts(
        mounts: initialList, maskedPaths: ["/proc/kcore", "/proc/acpi", "/sys/firmware", "/secret"], readonlyPaths: ["/proc/sys", "/proc/bus/"])
    static let fresh: [P.Mount] = [
        m("/mnt/p", "proc", "0:80", "/", "rw,nosuid,nodev,noexec"),
        m("/mnt/p/sys", "proc", "0:80", "/sys", "ro,nosuid,nodev,noexec"),
        m("/mnt/p/kcore", "devtmpfs", "0:5", "/null", "rw,nosuid"),
        m("/mnt/p/acpi", "tmpfs", "0:81", "/", "ro"),
        m("/mnt/s", "sysfs", "0:82", "/", "rw"),
        m("/mnt/s/firmware", "tmpfs", "0:83", "/", "ro"),
        m("/mnt/p/self-made", "tmpfs", "0:84", "/", "rw"),
    ]

    @Test func initialMountsRecordsRoundTripAndOldOnesRead() throws {
        let data = try JSONEncoder().encode(Self.spec)
        #expect(try JSONDecoder().decode(P.InitialMounts.self, from: data) == Self.spec)
        let old = try JSONDecoder().decode(P.InitialMounts.self, from: Data(#"{"protected":[],"mounts":[]}"#.utf8))
        #expect(old.maskedPaths.isEmpty && old.readonlyPaths.isEmpty && old.mounts.isEmpty)
    }

    @Test func freshProcAndSysfsGetTheMasksWhichStay() {
        let (masked, readonly) = P.freshMasks(fsType: "proc", initial: Self.spec)
        #expect(masked == ["kcore", "acpi"])
        #expect(readonly == ["sys", "bus"])
        #expect(P.freshMasks(fsType: "sysfs", initial: Self.spec) == (["firmware"], []))
        #expect(P.freshMasks(fsType: "tmpfs", initial: Self.spec) == ([], []))
        func facts(_ target: String, source: String? = nil) -> P.Facts {
            let visible = Self.initialList + Self.fresh
            let mount = visible.last { $0.mountPoint == target }
            return P.Facts(targetPath: target, targetMount: mount ?? Self.initialList[0], targetIsMountRoot: mount != nil, sourcePath: source,
                           sourceMount: source.flatMap { s in visible.last { $0.mountPoint == s } }, sourceIsMountRoot: source != nil, visible: visible)
        }
        for mask in ["/mnt/p/kcore", "/mnt/p/acpi", "/mnt/p/sys", "/mnt/s/firmware"] {
            for flags: UInt64 in [0, 2] {
                #expect(Self.denied(P.decide(.umount(target: mask, flags: flags), initial: Self.spec, facts: facts(mask))), "umount \(mask)")
            }
            let cover = P.decide(.mount(source: "none", target: mask, fsType: "tmpfs", flags: 0, data: nil), initial: Self.spec, facts: facts(mask))
            #expect(Self.denied(cover), "cover \(mask)")
            let move = P.decide(.mount(source: mask, target: "/x", fsType: nil, flags: P.msMove, data: nil), initial: Self.spec, facts: facts("/x", source: mask))
            #expect(Self.denied(move), "move \(mask)")
        }
        // Binding the fresh procfs without its submounts would show kcore.
        let bind = P.decide(.mount(source: "/mnt/p", target: "/x", fsType: nil, flags: P.msBind, data: nil), initial: Self.spec, facts: facts("/x", source: "/mnt/p"))
        #expect(Self.denied(bind))
        let rbind = P.decide(.mount(source: "/mnt/p", target: "/x", fsType: nil, flags: P.msBind | P.msRec, data: nil), initial: Self.spec, facts: facts("/x", source: "/mnt/p"))
        #expect(rbind == .perform)
        // The container's own mount in its fresh procfs, and the whole fresh mount (masks and
        // all, lazily), may go; neither reveals anything.
        #expect(P.decide(.umount(target: "/mnt/p/self-made", flags: 0), initial: Self.spec, facts: facts("/mnt/p/self-made")) == .perform)
        #expect(P.decide(.umount(target: "/mnt/s", flags: 2), initial: Self.spec, facts: facts("/mnt/s")) == .perform)
        // The initial masks are masks by the same rule.
        #expect(P.isMask(Self.m("/proc/kcore", "devtmpfs", "0:5", "/null"), visible: Self.initialList, initial: Self.spec))
        #expect(P.isMask(Self.m("/proc/sys", "proc", "0:60", "/sys"), visible: Self.initialList, initial: Self.spec))
        #expect(!P.isMask(Self.m("/data", "ext4", "8:1", "/srv/vol"), visible: Self.initialList, initial: Self.spec))
        // Counted from the file system's root: /proc/sys is proc's /sys, so /proc/sys/kcore is
        // not proc's /kcore.
        let underSys = Self.initialList + [Self.m("/proc/sys/kcore", "tmpfs", "0:85")]
        #expect(!P.isMask(underSys.last!, visible: underSys, initial: Self.spec))
    }

    /// Two procfs mounts at one point: a bind of proc's /sys/kernel at /x, a fresh procfs on
    /// it with its masks. By path alone the first of the two was taken (`/proc/sys/kernel/acpi`,
    /// no spec path); with the table's IDs, a mask counts from the mount it sits on.
    @Test func stackedProcfsMasksCountFromTheMountTheySitOn() {
        func row(_ id: Int, _ parent: Int, _ point: String, _ type: String, _ device: String, _ root: String = "/") -> P.Mount {
            P.Mount(device: device, root: root, mountPoint: point, fsType: type, readOnly: false, noSuid: false, noDev: false, noExec: false, id: id, parentID: parent)
        }
        let spec = P.InitialMounts(mounts: Self.initialList, maskedPaths: ["/proc/acpi"], readonlyPaths: ["/proc/sys"])
        let visible = [
            row(1, 0, "/", "overlay", "0:50"), row(2, 1, "/proc", "proc", "0:60"),
            row(30, 1, "/x", "proc", "0:60", "/sys/kernel"), row(31, 30, "/x", "proc", "0:90"),
            row(32, 31, "/x/acpi", "tmpfs", "0:91"), row(33, 31, "/x/sys", "proc", "0:90", "/sys"),
            // The container's own tmpfs on the bind's directory: no mask.
            row(34, 30, "/x/own", "tmpfs", "0:92"),
        ]
        #expect(P.isMask(visible[4], visible: visible, initial: spec))
        #expect(P.isMask(visible[5], visible: visible, initial: spec))
        #expect(!P.isMask(visible[6], visible: visible, initial: spec))
        let facts = P.Facts(targetPath: "/x/acpi", targetMount: visible[4], targetIsMountRoot: true, visible: visible)
        #expect(Self.denied(P.decide(.umount(target: "/x/acpi", flags: 2), initial: spec, facts: facts)))
        let own = P.Facts(targetPath: "/x/own", targetMount: visible[6], targetIsMountRoot: true, visible: visible)
        #expect(P.decide(.umount(target: "/x/own", flags: 0), initial: spec, facts: own) == .perform)
    }

    @Test func bindsKeepTheMasks() {
        func bind(_ source: String, _ target: String, rec: Bool) -> P.Decision {
            P.decide(.mount(source: source, target: target, fsType: nil, flags: P.msBind | (rec ? P.msRec : 0), data: nil), initial: Self.initial,
                     facts: Self.facts(target, root: false, mount: Self.initialList[0], source: source, sourceMount: Self.initialList[0]))
        }
        #expect(Self.denied(bind("/proc", "/mnt/p", rec: false)), "non-recursive bind of /proc drops its masks")
        #expect(Self.denied(bind("/", "/mnt/r", rec: false)))
        #expect(bind("/proc", "/mnt/p", rec: true) == .perform, "rbind copies the masks, which stay protected")
        #expect(bind("/etc", "/mnt/etc", rec: false) == .perform)
        #expect(bind("/proc/kcore", "/mnt/k", rec: false) == .perform, "the mask itself: nothing below it")
        #expect(Self.denied(bind("/etc/passwd", "/proc/kcore", rec: false)), "covering a mask")
    }

    /// A mount root the caller's mountinfo does not list (a chrooted caller naming a mount
    /// outside its root, which the helper now refuses before the policy, or a table the kernel
    /// changed meanwhile) is refused for unmount, remount and move: never taken as unprotected.
    @Test func mountRootsMissingFromTheTableAreRefused() {
        let unlisted = P.Facts(targetPath: "/proc/keys", targetMount: nil, targetIsMountRoot: true, visible: [])
        #expect(Self.denied(P.decide(.umount(target: "/proc/keys", flags: 2), initial: Self.initial, facts: unlisted)))
        let remount = P.decide(.mount(source: nil, target: "/proc/sys", fsType: nil, flags: P.msRemount | P.msBind, data: nil), initial: Self.initial,
                               facts: P.Facts(targetPath: "/proc/sys", targetMount: nil, targetIsMountRoot: true, visible: []))
        #expect(Self.denied(remount))
        let move = P.decide(.mount(source: "/proc", target: "/mnt", fsType: nil, flags: P.msMove, data: nil), initial: Self.initial,
                            facts: P.Facts(targetPath: "/mnt", targetMount: nil, targetIsMountRoot: false, sourcePath: "/proc", sourceMount: nil,
                                           sourceIsMountRoot: true, visible: []))
        #expect(Self.denied(move))
        // Not a mount root and no mount: the kernel's EINVAL, from the call performed.
        let plain = P.Facts(targetPath: "/etc", targetMount: nil, targetIsMountRoot: false, visible: [])
        #expect(P.decide(.umount(target: "/etc", flags: 0), initial: Self.initial, facts: plain) == .perform)
    }

    /// A fresh procfs's ro bind of `sys` (its own superblock, so no initial constraint), and any
    /// bind of it or below it, cannot be remounted writable; the fresh procfs's root can.
    @Test func freshProcReadOnlyPathsStayReadOnly() {
        func remount(_ mount: P.Mount, _ flags: UInt64) -> P.Decision {
            P.decide(.mount(source: nil, target: mount.mountPoint, fsType: nil, flags: P.msRemount | flags, data: nil), initial: Self.initial,
                     facts: P.Facts(targetPath: mount.mountPoint, targetMount: mount, targetIsMountRoot: true, visible: Self.initialList + [mount]))
        }
        let freshSys = Self.m("/fp/sys", "proc", "0:99", "/sys", "ro,nosuid,nodev,noexec")
        let boundKernel = Self.m("/y", "proc", "0:99", "/sys/kernel", "ro")
        for mount in [freshSys, boundKernel] {
            #expect(Self.denied(remount(mount, P.msBind)), "remount,bind,rw \(mount.mountPoint)")
            #expect(Self.denied(remount(mount, 0)), "remount,rw \(mount.mountPoint)")
            #expect(remount(mount, P.msBind | P.msRdonly | P.msNosuid) == .perform, "remount keeping ro \(mount.mountPoint)")
        }
        #expect(remount(Self.m("/fp", "proc", "0:99"), P.msBind) == .perform)
        #expect(remount(Self.m("/fp/net", "proc", "0:99", "/net"), P.msBind) == .perform, "/proc/sysfoo-like names are not below /proc/sys")
    }

    /// Remounts and propagation changes of a directory that is no mount point get the kernel's
    /// EINVAL from the policy: performed by name, a symlink swapped in for the directory would
    /// lead them onto a protected mount.
    @Test func remountsAndPropagationOfNonMountPointsAreEINVAL() {
        let dir = P.Facts(targetPath: "/tmp/t", targetMount: Self.initialList[0], targetIsMountRoot: false, visible: Self.initialList)
        for flags in [P.msRemount | P.msBind, P.msRemount, P.msRec | (1 << 20)] {
            let d = P.decide(.mount(source: nil, target: "/tmp/t", fsType: nil, flags: flags, data: nil), initial: Self.initial, facts: dir)
            if case .deny(22, _) = d {} else { Issue.record("flags \(flags): \(d)") }
        }
    }

    @Test func relativePathsInNewMountsAreRecognized() {
        #expect(!P.namesRelativePaths(source: "none", data: "size=1m,mode=755"))
        #expect(!P.namesRelativePaths(source: "overlay", data: "lowerdir=/a:/b,upperdir=/u,workdir=/w"))
        #expect(P.namesRelativePaths(source: "overlay", data: "lowerdir=l/1:l/2,upperdir=/u,workdir=/w"))
        #expect(P.namesRelativePaths(source: "overlay", data: "lowerdir=/a,upperdir=diff,workdir=/w"))
        #expect(P.namesRelativePaths(source: "./disk.img", data: nil))
        #expect(!P.namesRelativePaths(source: nil, data: nil))
    }

    /// pivot_root lifts new_root's mount from its place: into a mask or a read-only path it
    /// would undo it; into a mount of the container's own (runc in Docker-in-Docker) it works.
    @Test func pivotRootIntoProtectedMountsIsRefused() {
        for point in ["/sys/firmware", "/proc/sys", "/proc", "/secret"] {
            let d = P.decide(.pivotRoot(newRoot: point, putOld: point), initial: Self.initial, facts: Self.facts(point, source: point))
            #expect(Self.denied(d), "pivot_root into \(point): \(d)")
        }
        let own = P.decide(.pivotRoot(newRoot: "/mnt", putOld: "/mnt/old"), initial: Self.initial,
                           facts: Self.facts("/mnt", source: "/mnt/old", sourceMount: Self.tmpfsAtMnt, extra: [Self.tmpfsAtMnt]))
        #expect(own == .perform)
        let dir = P.Facts(targetPath: "/tmp/x", targetMount: Self.initialList[0], targetIsMountRoot: false, sourcePath: "/tmp/x", visible: Self.initialList)
        if case .deny(22, _) = P.decide(.pivotRoot(newRoot: "/tmp/x", putOld: "/tmp/x"), initial: Self.initial, facts: dir) {} else { Issue.record("not EINVAL") }
    }

    /// overlayfs reads below its layers' mounts: a layer on sysfs/procfs or above a mask is
    /// refused; Docker-in-Docker's layers on the container's own file systems are not.
    /// The helper gives the kernel its checked layer fds in place of the caller's strings.
    @Test func overlayOptionsCarryThePinnedLayers() {
        #expect(P.overlayOptions("lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off", layers: ["self/fd/5", "self/fd/6", "self/fd/7", "self/fd/8"])
            == "lowerdir=self/fd/5:self/fd/6,upperdir=self/fd/7,workdir=self/fd/8,index=off")
        #expect(P.overlayOptions("lowerdir=rel/l,userxattr", layers: ["self/fd/9"]) == "lowerdir=self/fd/9,userxattr")
        // Escapes are refused: the kernel would undo them and could see other layers.
        #expect(P.overlayOptions("lowerdir=/a\\:/sys,upperdir=/u", layers: ["x", "y", "z"]) == nil)
        // Counts must match exactly.
        #expect(P.overlayOptions("lowerdir=/a:/b", layers: ["x"]) == nil)
        #expect(P.overlayOptions("lowerdir=/a", layers: ["x", "y"]) == nil)
        #expect(P.overlayOptions("upperdir=,lowerdir=/a", layers: ["x"]) == nil)
    }

    @Test func overlayLayersCannotBypassMasks() {
        #expect(P.overlayLayers("lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off") == ["/a", "/b", "/u", "/w"])
        func overlay(_ layers: [P.Layer]) -> P.Decision {
            var f = Self.facts("/mnt", root: false, mount: Self.initialList[0])
            f.layers = layers
            return P.decide(.mount(source: "overlay", target: "/mnt", fsType: "overlay", flags: 0, data: nil), initial: Self.initial, facts: f)
        }
        #expect(Self.denied(overlay([P.Layer(path: "/sys", mount: Self.initialList[3]), P.Layer(path: "/l", mount: Self.initialList[0])])))
        #expect(Self.denied(overlay([P.Layer(path: "/sys/devices", mount: Self.initialList[3])])))
        #expect(Self.denied(overlay([P.Layer(path: "/", mount: Self.initialList[0])])), "/secret masks a directory of /'s file system")
        #expect(Self.denied(overlay([P.Layer(path: "/proc", mount: Self.initialList[1])])))
        let noSecret = P.InitialMounts(mounts: Self.initialList, maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"])
        var f = Self.facts("/mnt", root: false, mount: Self.initialList[0])
        f.layers = [P.Layer(path: "/", mount: Self.initialList[0]), P.Layer(path: "/l", mount: Self.initialList[0])]
        let rootLayer = P.decide(.mount(source: "overlay", target: "/mnt", fsType: "overlay", flags: 0, data: nil), initial: noSecret, facts: f)
        #expect(rootLayer == .perform, "lowerdir=/ shows only the empty /proc and /sys: \(rootLayer)")
        #expect(overlay([P.Layer(path: "/var/lib/docker/overlay2/a/diff", mount: Self.initialList[0]), P.Layer(path: "/var/lib/docker/overlay2/b/diff", mount: Self.initialList[0])]) == .perform)
    }

    @Test func movesAndPropagation() {
        let moveProc = P.decide(.mount(source: "/proc", target: "/mnt", fsType: nil, flags: P.msMove, data: nil), initial: Self.initial,
                                facts: Self.facts("/mnt", root: false, mount: Self.initialList[0], source: "/proc"))
        #expect(Self.denied(moveProc))
        let moveOwn = P.decide(.mount(source: "/mnt", target: "/opt", fsType: nil, flags: P.msMove, data: nil), initial: Self.initial,
                               facts: Self.facts("/opt", root: false, mount: Self.initialList[0], source: "/mnt", extra: [Self.tmpfsAtMnt]))
        #expect(moveOwn == .perform)
        let moveOver = P.decide(.mount(source: "/mnt", target: "/sys", fsType: nil, flags: P.msMove, data: nil), initial: Self.initial,
                                facts: Self.facts("/sys", source: "/mnt", extra: [Self.tmpfsAtMnt]))
        #expect(Self.denied(moveOver))
        let private_ = P.decide(.mount(source: nil, target: "/", fsType: nil, flags: P.msRec | (1 << 18), data: nil), initial: Self.initial, facts: Self.facts("/"))
        #expect(private_ == .perform, "mount --make-rprivate / is harmless and common")
    }

    @Test func remountOptionsInTheVMsIDsArePutBack() {
        let uids = P.IDMapping.parse("         0    1048576      65536\n")
        let gids = P.IDMapping.parse("0 1048576 65536")
        #expect(uids == [P.IDMapping(inside: 0, outside: 1_048_576, count: 65536)])
        #expect(P.translatingIDOptions("size=1024k,uid=1048576,gid=1048576", uids: uids, gids: gids) == "size=1024k,uid=0,gid=0")
        #expect(P.translatingIDOptions("uid=1049576,mode=755", uids: uids, gids: gids) == "uid=1000,mode=755")
        // IDs the caller can name, and IDs outside its range, are the kernel's to judge.
        #expect(P.translatingIDOptions("uid=5,gid=0", uids: uids, gids: gids) == "uid=5,gid=0")
        #expect(P.translatingIDOptions("uid=2000000,gid=x", uids: uids, gids: gids) == "uid=2000000,gid=x")
        #expect(P.translatingIDOptions("", uids: uids, gids: gids) == "")
        #expect(P.translatingIDOptions("nouid=1048576,,mode=1777", uids: uids, gids: gids) == "nouid=1048576,,mode=1777")
    }

    @Test func flagsAreReadInTheKernelsOrder() {
        #expect(P.kind(ofMountFlags: P.msRemount | P.msBind | P.msMove) == .remount(bind: true))
        #expect(P.kind(ofMountFlags: P.msBind | P.msMove) == .bind(recursive: false))
        #expect(P.kind(ofMountFlags: (1 << 20) | P.msMove) == .propagation)
        #expect(P.kind(ofMountFlags: P.msMove) == .move)
        #expect(P.kind(ofMountFlags: 0xC0ED_0000) == .new)
        #expect(P.effectiveFlags(0xC0ED_0000 | P.msRdonly) == P.msRdonly)
        #expect(P.normalize("a//b/./c/") == "/a/b/c")
    }
}
