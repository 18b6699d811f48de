/// What ecid lets a container do with `mount` and `umount2` (pure; ecid's helper supplies the
/// facts, from inside the caller's own view of its mounts).
///
/// The container's initial mounts (what runc made, masks included) are immutable:
/// - a mount that started read-only, nosuid, nodev or noexec keeps the flag, and so does every
///   mount of the same file system at or below the same root (a bind of a read-only volume
///   cannot be remounted writable either);
/// - `/`, `/proc`, `/sys`, everything initially mounted below `/proc` and `/sys`, and the spec's
///   masked and read-only paths can be neither unmounted nor moved, nor covered by a new mount,
///   and a tree holding one cannot be bound without its submounts (that would show what the
///   masks hide);
/// - a new procfs or sysfs mount gets the same masks and read-only paths (`freshMasks`), put
///   on by ecid's helper before the mount becomes visible; those masks are protected like the
///   initial ones, by construction: any mount on a path of a procfs or sysfs that the spec
///   masks or makes read-only (relative to that file system's root) is a mask (`isMask`);
///   such a mount may cover a whole procfs or sysfs mount that propagates nowhere, a few deep
///   (`freshReplacesWhole`: `unshare --mount-proc`, `ip netns exec`).
/// Everything else (tmpfs, overlay, binds inside the container, remounts and unmounts of the
/// container's own mounts, propagation changes) is performed as asked.
///
/// Mounts are identified by their file system (`major:minor`) and root within it, not by mount
/// ID or path: a copy made by `unshare -m`, an `rbind` or a `pivot_root` keeps both, so the
/// protection follows every copy into every mount namespace of the container.
public enum MountCallPolicy {
    /// A mount as the caller sees it (one line of its mountinfo).
    public struct Mount: Sendable, Hashable, Codable {
        public var device: String
        public var root: String
        /// Relative to the caller's root.
        public var mountPoint: String
        public var fsType: String
        public var readOnly: Bool
        public var noSuid: Bool
        public var noDev: Bool
        public var noExec: Bool
        /// Its mount ID and the ID of the mount it sits on, when the caller's table gave them
        /// (ecid's helper): `isMask` then counts a mount's place from the mount it sits on, not
        /// from whichever procfs or sysfs is nearest by path (two can share one point).
        public var id: Int?
        public var parentID: Int?
        /// Whether it is in a peer group (mountinfo's `shared:N`): a mount attached on it is
        /// copied to every peer and their slaves, in whichever mount namespace they are. nil
        /// when the table did not say (the initial mounts' record): taken as shared.
        public var shared: Bool?

        public init(device: String, root: String, mountPoint: String, fsType: String, options: [String]) {
            self.device = device
            self.root = root
            self.mountPoint = mountPoint
            self.fsType = fsType
            readOnly = options.contains("ro")
            noSuid = options.contains("nosuid")
            noDev = options.contains("nodev")
            noExec = options.contains("noexec")
        }

        /// With the four flags the policy reads already known (ecid's helper parses mountinfo
        /// bytes itself, on every call, without making strings of every option).
        public init(
            device: String, root: String, mountPoint: String, fsType: String, readOnly: Bool, noSuid: Bool, noDev: Bool, noExec: Bool, id: Int? = nil,
            parentID: Int? = nil, shared: Bool? = nil
        ) {
            self.device = device
            self.root = root
            self.mountPoint = mountPoint
            self.fsType = fsType
            self.readOnly = readOnly
            self.noSuid = noSuid
            self.noDev = noDev
            self.noExec = noExec
            self.id = id
            self.parentID = parentID
            self.shared = shared
        }

        public var key: Key { Key(device: device, root: root) }
    }

    /// A mount's identity across copies: its file system and its root within it.
    public struct Key: Sendable, Hashable, Codable {
        public var device: String
        public var root: String
        public init(device: String, root: String) {
            self.device = device
            self.root = root
        }
    }

    /// What the container started with, recorded by ecid when runc hands over the notify fd.
    public struct InitialMounts: Sendable, Equatable, Codable {
        /// Mounts that may not be unmounted, moved, covered, or bound without their submounts.
        public var protected: Set<Key>
        /// Every initial mount, for the flags it may not lose.
        public var mounts: [Mount]
        /// The spec's masked and read-only paths (normalized, as the container sees them).
        public var maskedPaths: [String]
        public var readonlyPaths: [String]

        /// Whether the container started with ECI's emulated files over its /proc: its fresh
        /// procfs mounts get them too.
        public var hasEmulatedFiles: Bool {
            mounts.contains { mount in
                mount.fsType == MountCallPolicy.emulationFileSystemType && EmulatedFile.allCases.contains { $0.containerPath == mount.mountPoint }
            }
        }

        /// From the container's mountinfo at registration (paths as the container sees them)
        /// and the spec's masked and read-only paths.
        public init(mounts: [Mount], maskedPaths: [String] = [], readonlyPaths: [String] = []) {
            let named = Set((maskedPaths + readonlyPaths).map(MountCallPolicy.normalize))
            var protected: Set<Key> = []
            for mount in mounts where Self.isProtectedPoint(mount.mountPoint) || named.contains(mount.mountPoint) {
                protected.insert(mount.key)
            }
            self.protected = protected
            self.mounts = mounts
            self.maskedPaths = maskedPaths.map(MountCallPolicy.normalize)
            self.readonlyPaths = readonlyPaths.map(MountCallPolicy.normalize)
        }

        enum CodingKeys: String, CodingKey {
            case protected, mounts, maskedPaths, readonlyPaths
        }

        /// Records written before the spec's paths were kept (ecid's persisted containers) read
        /// with none: their masks stay protected by mount identity, as then.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            protected = try c.decode(Set<Key>.self, forKey: .protected)
            mounts = try c.decode([Mount].self, forKey: .mounts)
            maskedPaths = try c.decodeIfPresent([String].self, forKey: .maskedPaths) ?? []
            readonlyPaths = try c.decodeIfPresent([String].self, forKey: .readonlyPaths) ?? []
        }

        static func isProtectedPoint(_ path: String) -> Bool {
            path == "/" || path == "/proc" || path == "/sys" || path.hasPrefix("/proc/") || path.hasPrefix("/sys/")
        }

        /// The initial mount whose flags bind `mount`: same file system, the longest root at or
        /// above its root.
        func constraint(for mount: Mount) -> Mount? {
            mounts.filter { $0.device == mount.device && MountCallPolicy.isAtOrBelow(mount.root, $0.root) }
                .max { $0.root.count < $1.root.count }
        }
    }

    /// A trapped call with the arguments ecid read once from the caller's memory.
    public enum Call: Sendable, Equatable, Codable {
        case mount(source: String?, target: String, fsType: String?, flags: UInt64, data: String?)
        case umount(target: String, flags: UInt64)
        /// pivot_root(2): `target` of the facts is new_root, `source` is put_old.
        case pivotRoot(newRoot: String, putOld: String)

        /// Whether this is a new procfs or sysfs, which ecid's helper makes with the
        /// container's masks (`needsMasks`).
        public var isFreshMaskedMount: Bool {
            guard case let .mount(_, _, fsType, flags, _) = self else { return false }
            return MountCallPolicy.kind(ofMountFlags: flags) == .new && MountCallPolicy.needsMasks(fsType: fsType)
        }

        /// A new procfs: it gets the container's emulated files too.
        public var isFreshProcfs: Bool {
            guard isFreshMaskedMount, case let .mount(_, _, fsType, _, _) = self else { return false }
            return fsType == "proc"
        }
    }

    /// Facts the helper gathered in the caller's context, about the objects the call names.
    public struct Facts: Sendable, Equatable, Codable {
        /// The target's path with symlinks resolved, relative to the caller's root.
        public var targetPath: String
        /// The mount the target lies in (the topmost mount rooted there, when it is a mount root).
        public var targetMount: Mount?
        public var targetIsMountRoot: Bool
        /// For binds and moves: the source's resolved path and its mount.
        public var sourcePath: String?
        public var sourceMount: Mount?
        public var sourceIsMountRoot: Bool
        /// Every mount the caller sees.
        public var visible: [Mount]
        /// For an overlay: each layer directory (lower, upper, work, data) resolved as the
        /// caller would, with the mount it lies in.
        public var layers: [Layer] = []

        public init(
            targetPath: String, targetMount: Mount?, targetIsMountRoot: Bool, sourcePath: String? = nil, sourceMount: Mount? = nil,
            sourceIsMountRoot: Bool = false, visible: [Mount]
        ) {
            self.targetPath = targetPath
            self.targetMount = targetMount
            self.targetIsMountRoot = targetIsMountRoot
            self.sourcePath = sourcePath
            self.sourceMount = sourceMount
            self.sourceIsMountRoot = sourceIsMountRoot
            self.visible = visible
        }
    }

    /// An overlay layer: its resolved path and the mount it lies in (nil: not in the table).
    public struct Layer: Sendable, Equatable, Codable {
        public var path: String
        public var mount: Mount?
        public init(path: String, mount: Mount?) {
            self.path = path
            self.mount = mount
        }
    }

    /// The layer directories named in an overlay's options, in the order given (`\\:` and
    /// `\\,` escapes are not unescaped: such a name fails to resolve and the mount is refused).
    public static func overlayLayers(_ data: String?) -> [String] {
        guard let data else { return [] }
        var out: [String] = []
        for option in data.split(separator: ",") {
            guard let eq = option.firstIndex(of: "=") else { continue }
            let key = option[..<eq], value = option[option.index(after: eq)...]
            switch key {
            case "lowerdir": out += value.split(separator: ":").map { String($0.hasPrefix(":") ? $0.dropFirst() : $0) }
            case "upperdir", "workdir", "lowerdir+", "datadir+": out.append(String(value))
            default: continue
            }
        }
        return out.filter { !$0.isEmpty }
    }

    /// `data` with its layer paths (in `overlayLayers`' order) replaced by `layers`, every other
    /// option kept; nil when the data has backslash escapes (the kernel's parser undoes them and
    /// this one does not, so the two could see different layers) or the counts differ.
    public static func overlayOptions(_ data: String?, layers: [String]) -> String? {
        guard let data else { return layers.isEmpty ? "" : nil }
        guard !data.contains("\\"), overlayLayers(data).count == layers.count else { return nil }
        var next = layers.makeIterator()
        var out: [String] = []
        for option in data.split(separator: ",", omittingEmptySubsequences: false) {
            guard let eq = option.firstIndex(of: "=") else {
                out.append(String(option))
                continue
            }
            let key = option[..<eq], value = option[option.index(after: eq)...]
            switch key {
            case "lowerdir":
                let parts = value.split(separator: ":").map { $0.hasPrefix(":") ? $0.dropFirst() : $0 }.filter { !$0.isEmpty }
                var replaced: [String] = []
                for _ in parts {
                    guard let layer = next.next() else { return nil }
                    replaced.append(layer)
                }
                // An empty lowerdir or one with empty elements is the kernel's error to give.
                guard !replaced.isEmpty else { return nil }
                out.append("lowerdir=" + replaced.joined(separator: ":"))
            case "upperdir", "workdir", "lowerdir+", "datadir+":
                guard !value.isEmpty, let layer = next.next() else { return nil }
                out.append(String(key) + "=" + layer)
            default:
                out.append(String(option))
            }
        }
        guard next.next() == nil else { return nil }
        return out.joined(separator: ",")
    }

    public enum Decision: Sendable, Equatable, Codable {
        /// ecid's helper performs the call as asked and returns the kernel's answer.
        case perform
        /// The call fails with this errno; `reason` is for ecid's log.
        case deny(errno: Int32, reason: String)
    }

    /// How the kernel reads mount(2)'s flags (`do_mount`'s order of precedence).
    public enum MountKind: Sendable, Equatable {
        case remount(bind: Bool)
        case bind(recursive: Bool)
        case propagation
        case move
        case new
    }

    // mount(2) flags (uapi/linux/mount.h).
    public static let msRdonly: UInt64 = 1
    public static let msNosuid: UInt64 = 2
    public static let msNodev: UInt64 = 4
    public static let msNoexec: UInt64 = 8
    public static let msRemount: UInt64 = 32
    public static let msBind: UInt64 = 4096
    public static let msMove: UInt64 = 8192
    public static let msRec: UInt64 = 16384
    public static let msPropagation: UInt64 = (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20)
    static let mgcMask: UInt64 = 0xffff_0000
    static let mgcValue: UInt64 = 0xC0ED_0000

    static let eperm: Int32 = 1
    static let einval: Int32 = 22

    /// The flags as the kernel uses them: the historical magic in the upper half dropped.
    public static func effectiveFlags(_ flags: UInt64) -> UInt64 {
        let low = flags & 0xffff_ffff
        return low & mgcMask == mgcValue ? low & ~mgcMask : low
    }

    public static func kind(ofMountFlags raw: UInt64) -> MountKind {
        let flags = effectiveFlags(raw)
        if flags & msRemount != 0 { return .remount(bind: flags & msBind != 0) }
        if flags & msBind != 0 { return .bind(recursive: flags & msRec != 0) }
        if flags & msPropagation != 0 { return .propagation }
        if flags & msMove != 0 { return .move }
        return .new
    }

    /// The decision for `call`, given the container's initial mounts and the helper's facts.
    public static func decide(_ call: Call, initial: InitialMounts, facts: Facts) -> Decision {
        switch call {
        case .pivotRoot:
            // new_root's mount leaves its place (as a move would) and becomes the root; the old
            // root is stacked at put_old. Runc in a container pivots into a bind of its own.
            guard facts.targetIsMountRoot else { return .deny(errno: einval, reason: "\(facts.targetPath) is not a mount point") }
            guard let mount = facts.targetMount else { return unknownMount(facts.targetPath) }
            if initial.protected.contains(mount.key) || isMask(mount, visible: facts.visible, initial: initial) {
                return .deny(errno: eperm, reason: "pivot_root into \(facts.targetPath) would lift one of the container's protected mounts")
            }
            if let putOld = facts.sourcePath, let covered = protectedPoints(facts, initial: initial).first(where: { isAtOrBelow($0, putOld) }) {
                return .deny(errno: eperm, reason: "the old root at \(putOld) would cover \(covered)")
            }
            return .perform
        case .umount:
            // Not a mount root: the kernel's own EINVAL, from the call performed.
            guard facts.targetIsMountRoot else { return .perform }
            // A mount root the caller's table does not hold cannot be placed: refused, never assumed unprotected.
            guard let mount = facts.targetMount else { return unknownMount(facts.targetPath) }
            if initial.protected.contains(mount.key) {
                return .deny(errno: eperm, reason: "\(facts.targetPath) is one of the container's protected mounts")
            }
            if isMask(mount, visible: facts.visible, initial: initial) {
                return .deny(errno: eperm, reason: "\(facts.targetPath) masks part of a procfs or sysfs")
            }
            return .perform
        case let .mount(_, _, fsType, rawFlags, _):
            let flags = effectiveFlags(rawFlags)
            switch kind(ofMountFlags: rawFlags) {
            case .remount:
                // Not a mount root: the kernel's own EINVAL, answered here (performed by name, a
                // symlink swapped in for the checked directory would lead the remount elsewhere).
                guard facts.targetIsMountRoot else { return .deny(errno: einval, reason: "\(facts.targetPath) is not a mount point") }
                guard let mount = facts.targetMount else { return unknownMount(facts.targetPath) }
                return keepsLockedFlags(mount, flags: flags, initial: initial, path: facts.targetPath)
            case .propagation:
                guard facts.targetIsMountRoot else { return .deny(errno: einval, reason: "\(facts.targetPath) is not a mount point") }
                return .perform
            case .move:
                if facts.sourceIsMountRoot, facts.sourceMount == nil { return unknownMount(facts.sourcePath ?? "?") }
                if let source = facts.sourceMount, facts.sourceIsMountRoot,
                    initial.protected.contains(source.key) || isMask(source, visible: facts.visible, initial: initial)
                {
                    return .deny(errno: eperm, reason: "\(facts.sourcePath ?? "?") is one of the container's protected mounts and cannot be moved")
                }
                return coverCheck(facts, initial: initial)
            case let .bind(recursive):
                if !recursive, let sourcePath = facts.sourcePath,
                    let hidden = protectedPoints(facts, initial: initial).first(where: { isStrictlyBelow($0, sourcePath) })
                {
                    return .deny(errno: eperm, reason: "a bind of \(sourcePath) without its submounts would show what \(hidden) hides")
                }
                return coverCheck(facts, initial: initial)
            case .new:
                // overlayfs reads its layers' file systems below whatever is mounted on them:
                // a layer on a procfs or sysfs, or above a protected mount or mask, would show
                // what the masks hide (lowerdir=/sys showed /sys/firmware).
                for layer in facts.layers {
                    if let fs = layer.mount?.fsType, maskedFileSystems[fs] != nil {
                        return .deny(errno: eperm, reason: "an overlay layer on \(fs) (\(layer.path)) would bypass its masks")
                    }
                    if let hidden = hiddenFromLayer(layer, facts: facts, initial: initial) {
                        return .deny(errno: eperm, reason: "an overlay layer at \(layer.path) would show what \(hidden) hides")
                    }
                }
                // A fresh procfs or sysfs is performed with its masks (`freshMasks`), and is
                // read-only when the container's is: the kernel's rule for a user namespace
                // (mnt_already_visible), which ecid's helper must apply itself because it builds
                // the mount where the VM's read-write /proc and /sys are the visible ones.
                if let fsType, let base = maskedFileSystems[fsType], flags & msRdonly == 0,
                    initial.mounts.contains(where: { $0.mountPoint == base && $0.fsType == fsType && $0.readOnly })
                {
                    return .deny(errno: eperm, reason: "a fresh \(fsType) must be read-only, as the container's \(base) is")
                }
                if let fsType, let replacing = freshReplacesWhole(fsType: fsType, facts, initial: initial) { return replacing }
                return coverCheck(facts, initial: initial)
            }
        }
    }

    static func unknownMount(_ path: String) -> Decision {
        .deny(errno: eperm, reason: "\(path) is a mount the caller's mount table does not show")
    }

    /// A remount must keep every flag the mount's initial ancestor had.
    /// A procfs or sysfs mount whose root lies at or below one of the spec's read-only paths
    /// (counted from that file system's usual place) is read-only by name, whichever superblock:
    /// the helper's ro binds on a fresh procfs, and every bind made of them, stay read-only as
    /// /proc/sys does (`constraint` knows only the initial superblocks).
    static func readOnlyByName(_ mount: Mount, initial: InitialMounts) -> Bool {
        guard let base = maskedFileSystems[mount.fsType] else { return false }
        let named = normalize(base + "/" + mount.root)
        return initial.readonlyPaths.contains { isAtOrBelow(named, $0) }
    }

    static func keepsLockedFlags(_ mount: Mount, flags: UInt64, initial: InitialMounts, path: String) -> Decision {
        let locked = initial.constraint(for: mount)
        let lost = [
            ((locked?.readOnly ?? false) || readOnlyByName(mount, initial: initial), msRdonly, "read-only"), (locked?.noSuid ?? false, msNosuid, "nosuid"),
            (locked?.noDev ?? false, msNodev, "nodev"), (locked?.noExec ?? false, msNoexec, "noexec"),
        ].filter { $0.0 && flags & $0.1 == 0 }.map(\.2)
        guard lost.isEmpty else {
            return .deny(errno: eperm, reason: "\(path) started \(lost.joined(separator: ", ")) and stays so")
        }
        return .perform
    }

    /// Directories, relative to its root, that a fresh mount of the key's type shows empty, so
    /// that whatever protected mounts sit at or below them in the mount it replaces hide nothing
    /// it would show: sysfs's `fs/cgroup`, where runc puts the container's cgroup hierarchy
    /// (cgroup2, or a tmpfs of cgroup v1 hierarchies). `ip netns exec` mounts a sysfs over a
    /// /sys with that below it.
    static let emptyInFresh: [String: [String]] = ["sysfs": ["fs/cgroup"]]

    /// The file system type of ecid's emulated files (`ECIProcFS`, `EmulatedFile`), bound over
    /// /proc/uptime, /proc/meminfo and their neighbours. ecid's helper puts the same files on a
    /// fresh procfs, so one may hide the container's (`freshReplacesWhole`); and one of them on a
    /// procfs, at its place there, is protected like a mask (`isMask`).
    public static let emulationFileSystemType = "fuse.eci"

    /// How many whole procfs (sysfs) mounts may stand at one point (`freshReplacesWhole`).
    static let maximumStack = 4

    /// A fresh procfs (sysfs) may cover a whole procfs (sysfs) mount, as `unshare -pfm
    /// --mount-proc` and `ip netns exec` do, where all of these hold:
    /// - it reveals nothing: it brings the container's masks and read-only paths itself
    ///   (`freshMasks`, locked by the helper's lock pass), and every protected mount it covers is
    ///   of the same file system type, a mask, or at or below a directory the fresh mount shows
    ///   empty (`emptyInFresh`: the cgroup mounts under /sys/fs/cgroup), or an emulated file
    ///   (`emulationFileSystemType`: the fresh procfs brings the same); anything else keeps the
    ///   cover rule;
    /// - the target is the root of such a mount (root `/`: the whole file system, not a bind of
    ///   a part of it such as /proc/sys), and not the caller's own root;
    /// - at most `maximumStack` whole mounts of that type stand at that point, the new one
    ///   included: `unshare --mount-proc` makes one per namespace, while a loop (ecid-jail's
    ///   symlink-swap race stacked ~800 when nothing bounded it) would make every later trapped
    ///   call of the container slower, each reading a longer mount table. In any mount
    ///   namespace, pid 1's included, as under runc: a container whose pid 1 runs `unshare
    ///   -pfm --mount-proc` or `ip netns exec` works. What `runc exec` then finds there is the
    ///   container's to shape, as after a pivot_root (docs/ecid.md); it sees the masks either
    ///   way. (Refusing it in the namespace pid 1 is in was tried: it broke those entrypoints,
    ///   and pid 1 could move past it anyway, attack round 8's `pidOneAwayCoversItsHomeProcMasked`);
    /// - the covered mount is in no peer group (`Mount.shared == false`, from a table the helper
    ///   read for this call: a propagation change makes no mount event). A mount attached on a
    ///   shared one is copied to its peers and their slaves, and a nested namespace whose / was
    ///   made (r)shared before `unshare -m` (or whose unshare skipped `rprivate`) has /proc as a
    ///   peer of pid 1's: the fresh procfs would land on pid 1's /proc too, unasked, and beyond
    ///   the bound. A private or slave mount propagates nothing, and a mount joins a
    ///   peer group only when it is made (copied from a shared one) or made shared itself (a
    ///   trapped call, serialized with this one per container), never later by someone else.
    ///
    /// nil when the call is no such replacement (the cover rule decides); otherwise the answer,
    /// with the reason a refusal has.
    static func freshReplacesWhole(fsType: String, _ facts: Facts, initial: InitialMounts) -> Decision? {
        // Not the caller's root: a caller chrooted at /proc sees only the top of its stack there,
        // so neither the bound nor what it covers can be judged from its table (attack round 9).
        guard maskedFileSystems[fsType] != nil, facts.targetPath != "/", facts.targetIsMountRoot, let target = facts.targetMount, target.fsType == fsType,
            target.root == "/"
        else {
            return nil
        }
        let covered = protectedMounts(facts, initial: initial).filter { isAtOrBelow($0.mountPoint, facts.targetPath) }
        // The target is not "/" (above), so its subdirectories are `target/name`.
        let empty = (emptyInFresh[fsType] ?? []).map { facts.targetPath + "/" + $0 }
        func hidesNothing(_ mount: Mount) -> Bool {
            mount.fsType == fsType || mount.fsType == emulationFileSystemType || empty.contains { isAtOrBelow(mount.mountPoint, $0) }
                || isMask(mount, visible: facts.visible, initial: initial)
        }
        guard covered.allSatisfy(hidesNothing) else { return nil }
        let path = facts.targetPath
        guard target.shared == false else {
            return .deny(errno: eperm, reason: "\(path) is in a peer group: a fresh \(fsType) on it would propagate to its peers and slaves (pid 1's among them)")
        }
        let stacked = facts.visible.filter { $0.mountPoint == path && $0.fsType == fsType && $0.root == "/" }.count
        guard stacked < maximumStack else {
            return .deny(errno: eperm, reason: "\(stacked) whole \(fsType) mounts stand at \(path) already (at most \(maximumStack))")
        }
        return .perform
    }

    /// No new mount may land on a protected mount or above one (hiding it).
    static func coverCheck(_ facts: Facts, initial: InitialMounts) -> Decision {
        if let covered = protectedPoints(facts, initial: initial).first(where: { isAtOrBelow($0, facts.targetPath) }) {
            return .deny(errno: eperm, reason: "a mount on \(facts.targetPath) would cover \(covered)")
        }
        return .perform
    }

    /// A protected mount at or below an overlay layer's path that hides part of the layer's
    /// own file system (the mount it sits on is the layer's): the overlay would show it. A whole
    /// procfs or sysfs (/proc, /sys) hides only the empty directory it is mounted on.
    static func hiddenFromLayer(_ layer: Layer, facts: Facts, initial: InitialMounts) -> String? {
        guard let layerMount = layer.mount else {
            // Not in the table: judged by path alone.
            return protectedPoints(facts, initial: initial).first { isAtOrBelow($0, layer.path) }
        }
        for mount in facts.visible where isAtOrBelow(mount.mountPoint, layer.path) {
            guard initial.protected.contains(mount.key) || isMask(mount, visible: facts.visible, initial: initial) else { continue }
            if maskedFileSystems[mount.fsType] != nil && mount.root == "/" { continue }
            let parent = facts.visible.filter { isStrictlyBelow(mount.mountPoint, $0.mountPoint) }.max { $0.mountPoint.count < $1.mountPoint.count }
            if parent?.device == layerMount.device { return mount.mountPoint }
        }
        return nil
    }

    /// The visible mounts a new mount may not cover: the initial ones and every mask.
    static func protectedMounts(_ facts: Facts, initial: InitialMounts) -> [Mount] {
        facts.visible.filter { initial.protected.contains($0.key) || isMask($0, visible: facts.visible, initial: initial) }
    }

    static func protectedPoints(_ facts: Facts, initial: InitialMounts) -> [String] {
        protectedMounts(facts, initial: initial).map(\.mountPoint)
    }

    // MARK: Fresh procfs and sysfs

    /// The file systems whose fresh mounts get the container's masks, and where the spec names
    /// their paths.
    static let maskedFileSystems = ["proc": "/proc", "sysfs": "/sys"]

    /// Whether a new mount of `fsType` must be made with masks (and so by ecid's helper, which
    /// puts them on before the mount is visible).
    public static func needsMasks(fsType: String?) -> Bool {
        fsType.map { maskedFileSystems[$0] != nil } ?? false
    }

    /// What a fresh mount of `fsType` gets, relative to its root: the spec's masked paths
    /// (a file is covered by /dev/null, a directory by an empty read-only tmpfs) and read-only
    /// paths under that file system's usual place (`/proc/kcore` → `kcore` for procfs).
    public static func freshMasks(fsType: String, initial: InitialMounts) -> (masked: [String], readonly: [String]) {
        guard let base = maskedFileSystems[fsType] else { return ([], []) }
        func relative(_ paths: [String]) -> [String] {
            paths.filter { isStrictlyBelow($0, base) }.map { String($0.dropFirst(base.count + 1)) }
        }
        return (relative(initial.maskedPaths), relative(initial.readonlyPaths))
    }

    /// Whether `mount` is a mask: it sits on a path of the nearest procfs or sysfs mount above
    /// it that the spec masks or makes read-only, counted from that file system's root (so a
    /// bind of proc's `/sys` at `/proc/sys` counts from `/sys`). True for the initial masks and
    /// for those ecid's helper put on fresh mounts, whatever their path in the container, with
    /// no list of fresh mounts to keep.
    ///
    /// The file system it is counted from is the mount it sits on when the table names it
    /// (`Mount.parentID`): by path alone, a procfs stacked on a bind of /proc/sys/kernel had its
    /// masks counted from the bind under it (`/proc/sys/kernel/acpi`, no spec path), and they
    /// could be unmounted. Without IDs, the nearest procfs or sysfs above it by path.
    public static func isMask(_ mount: Mount, visible: [Mount], initial: InitialMounts) -> Bool {
        let point = mount.mountPoint
        let holder: Mount
        if let parentID = mount.parentID, parentID != mount.id, let parent = visible.last(where: { $0.id == parentID }) {
            guard maskedFileSystems[parent.fsType] != nil, isStrictlyBelow(point, parent.mountPoint) else { return false }
            holder = parent
        } else {
            guard
                let nearest = visible.filter({ maskedFileSystems[$0.fsType] != nil && isStrictlyBelow(point, $0.mountPoint) })
                    .max(by: { $0.mountPoint.count < $1.mountPoint.count })
            else { return false }
            holder = nearest
        }
        guard let base = maskedFileSystems[holder.fsType] else { return false }
        let below = holder.mountPoint == "/" ? point : String(point.dropFirst(holder.mountPoint.count))
        let named = normalize(base + "/" + holder.root + "/" + below)
        return initial.maskedPaths.contains(named) || initial.readonlyPaths.contains(named)
            || (mount.fsType == emulationFileSystemType && EmulatedFile.allCases.contains { $0.containerPath == named })
    }

    /// Whether a new mount's source or overlay directories are relative paths, which the kernel
    /// resolves from the mounter's working directory (containerd shortens long overlay options
    /// so): such a mount is made by name from the caller's working directory; any other is made
    /// on the checked directory itself (`.` from there), so no name is looked up again.
    public static func namesRelativePaths(source: String?, data: String?) -> Bool {
        if let source, source.contains("/"), !source.hasPrefix("/") { return true }
        guard let data else { return false }
        let keys: Set<Substring> = ["lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+"]
        for option in data.split(separator: ",") {
            guard let eq = option.firstIndex(of: "="), keys.contains(option[..<eq]) else { continue }
            let value = option[option.index(after: eq)...]
            if value.split(separator: ":", omittingEmptySubsequences: false).contains(where: { !$0.hasPrefix("/") }) { return true }
        }
        return false
    }

    // MARK: Remount compatibility

    /// One line of a uid_map or gid_map: `inside` IDs of the caller's namespace are `outside`
    /// IDs of the VM's.
    public struct IDMapping: Sendable, Equatable, Codable {
        public var inside: UInt32
        public var outside: UInt32
        public var count: UInt32
        public init(inside: UInt32, outside: UInt32, count: UInt32) {
            self.inside = inside
            self.outside = outside
            self.count = count
        }

        /// The lines of /proc/PID/uid_map (as read from the VM's user namespace).
        public static func parse(_ text: String) -> [IDMapping] {
            text.split(separator: "\n").compactMap { line in
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
                return f.count == 3 ? IDMapping(inside: f[0], outside: f[1], count: f[2]) : nil
            }
        }
    }

    /// A remount's options with `uid=`/`gid=` values given in the VM's IDs put back in the
    /// caller's. The kernel shows a tmpfs's owner in /proc/mounts in the VM's IDs (tmpfs and
    /// devpts print them for the initial user namespace), and busybox's `mount -o remount,ro`
    /// passes the options it read back, which the kernel then refuses (EINVAL: not mapped in
    /// the caller's namespace). Plain runc under a user namespace fails the same way; under ECI
    /// the call works. Values the caller can name itself are left alone.
    public static func translatingIDOptions(_ data: String, uids: [IDMapping], gids: [IDMapping]) -> String {
        func inside(_ value: UInt32, _ maps: [IDMapping]) -> UInt32? {
            if maps.contains(where: { value >= $0.inside && UInt64(value) < UInt64($0.inside) + UInt64($0.count) }) { return nil }
            guard let m = maps.first(where: { value >= $0.outside && UInt64(value) < UInt64($0.outside) + UInt64($0.count) }) else { return nil }
            return value - m.outside + m.inside
        }
        let options = data.split(separator: ",", omittingEmptySubsequences: false).map { option -> String in
            for (prefix, maps) in [("uid=", uids), ("gid=", gids)] where option.hasPrefix(prefix) {
                if let value = UInt32(option.dropFirst(prefix.count)), let mapped = inside(value, maps) { return prefix + String(mapped) }
            }
            return String(option)
        }
        return options.joined(separator: ",")
    }

    // MARK: Paths

    /// `/a//b/` → `/a/b`; relative paths are made absolute.
    public static func normalize(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }

    public static func isAtOrBelow(_ path: String, _ ancestor: String) -> Bool {
        path == ancestor || isStrictlyBelow(path, ancestor)
    }

    static func isStrictlyBelow(_ path: String, _ ancestor: String) -> Bool {
        ancestor == "/" ? path != "/" : path.hasPrefix(ancestor + "/")
    }
}
