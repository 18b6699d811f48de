/// What the runtime does with each bind-mount source, by what the kernel says it is.
///
/// Files keep their VM-side IDs only through an idmapped mount, so every source that can be
/// idmapped is. Some cannot, and are passed through unshifted: the container then sees their
/// files as the overflow ID (nobody), which keeps isolation (container root has no rights over
/// them) at the cost of write access. The table is explicit so that every case is documented.
public enum BindSourcePolicy {
    public enum Handling: Sendable, Equatable {
        /// Give the container an idmapped clone of the source.
        case idmap
        /// Mount the source as it is; the reason is logged.
        case passThrough(reason: String)
    }

    /// statfs(2) magic numbers of the file systems with a fixed rule.
    public enum Magic {
        public static let proc = 0x9fa0
        public static let sysfs = 0x6265_6572
        public static let devpts = 0x1cd1
        public static let cgroup = 0x27e0eb
        public static let cgroup2 = 0x6367_7270
        public static let mqueue = 0x1980_0202
        public static let fuse = 0x6573_5546
        public static let overlay = 0x794c_7630
        public static let nfs = 0x6969
        public static let securityfs = 0x7363_6673
        public static let debugfs = 0x6462_6720
        public static let tracefs = 0x7472_6163
        public static let bpf = 0xcafe_4a11
    }

    /// The rule for a source of file-system `magic` whose file type is `fileType`
    /// (the S_IFMT bits of st_mode).
    public static func handling(magic: Int, fileType: UInt32) -> Handling {
        if fileType == 0o020000 || fileType == 0o060000 {
            return .passThrough(reason: "device nodes are not idmapped: access to them is governed by the device cgroup")
        }
        switch magic {
        case Magic.proc, Magic.sysfs, Magic.cgroup, Magic.cgroup2, Magic.securityfs, Magic.debugfs, Magic.tracefs, Magic.bpf:
            return .passThrough(reason: "kernel pseudo file systems cannot be idmapped; their ownership is decided by the kernel")
        case Magic.devpts, Magic.mqueue:
            return .passThrough(reason: "devpts and mqueue cannot be idmapped; containers mount their own instances")
        case Magic.fuse, Magic.nfs:
            return .passThrough(reason: "this network or FUSE file system cannot be idmapped: its files appear as nobody in the container")
        case Magic.overlay:
            return .passThrough(reason: "an overlayfs mount cannot be idmapped: its files appear as nobody in the container")
        default:
            return .idmap
        }
    }

    /// What an idmap failure (errno EINVAL from mount_setattr) on an `.idmap` source means:
    /// the file system, or one mount below a recursive bind, does not support idmapping.
    public static let unsupportedReason = "the file system (or a mount below it) does not support idmapped mounts: its files appear as nobody in the container"
}
