/// What the runtime does with each bind-mount source, by what the kernel says it is.
///
/// Files keep their VM-side IDs only through an idmapped mount, so every source that can be
/// idmapped is. Some cannot, and are passed through unshifted: the container then sees their
/// files as the overflow ID (nobody), which keeps isolation (container root has no rights over
/// them) at the cost of write access. Kernel pseudo file systems are refused outright: what
/// they show is the VM's kernel (its processes, devices, IPC, cgroups, security state), never
/// files to share, and the engine mounts a container's own instances itself as typed mounts
/// (`/proc`, `/sys`, `/dev/mqueue`, `/dev/pts`), which are not binds. The table is explicit so
/// that every case is documented.
public enum BindSourcePolicy {
    public enum Handling: Sendable, Equatable {
        /// Give the container an idmapped clone of the source.
        case idmap
        /// Mount the source as it is; the reason is logged.
        case passThrough(reason: String)
        /// Never mount the source; the reason is the refusal.
        case refuse(reason: String)
    }

    /// statfs(2) magic numbers (include/uapi/linux/magic.h) of the file systems with a fixed rule.
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
        public static let configfs = 0x6265_6570
        public static let pstore = 0x6165_676c
        public static let efivarfs = 0xde5e_81e4
        public static let binfmtMisc = 0x4249_4e4d
        public static let fusectl = 0x6573_5543
        public static let nsfs = 0x6e73_6673
        public static let autofs = 0x0187
        public static let selinuxfs = 0xf97c_ff8c
        public static let smackfs = 0x4341_5d53
        public static let rpcPipefs = 0x6759_6969
        public static let nfsd = 0x6e66_7364
        public static let pidfs = 0x5049_4446
        public static let pipefs = 0x5049_5045
        public static let sockfs = 0x534f_434b
        public static let anonInode = 0x0904_1934
        public static let resctrl = 0x0765_5821
        public static let binderfs = 0x6c6f_6f70
        public static let xenfs = 0xabba_1974
        public static let tmpfs = 0x0102_1994
    }

    /// Kernel pseudo file systems by statfs magic, with the name mountinfo gives them.
    public static let pseudoFileSystems: [Int: String] = [
        Magic.proc: "proc", Magic.sysfs: "sysfs", Magic.devpts: "devpts", Magic.cgroup: "cgroup", Magic.cgroup2: "cgroup2",
        Magic.mqueue: "mqueue", Magic.securityfs: "securityfs", Magic.debugfs: "debugfs", Magic.tracefs: "tracefs",
        Magic.bpf: "bpf", Magic.configfs: "configfs", Magic.pstore: "pstore", Magic.efivarfs: "efivarfs",
        Magic.binfmtMisc: "binfmt_misc", Magic.fusectl: "fusectl", Magic.nsfs: "nsfs", Magic.autofs: "autofs",
        Magic.selinuxfs: "selinuxfs", Magic.smackfs: "smackfs", Magic.rpcPipefs: "rpc_pipefs", Magic.nfsd: "nfsd",
        Magic.pidfs: "pidfs", Magic.pipefs: "pipefs", Magic.sockfs: "sockfs", Magic.anonInode: "anon_inodefs",
        Magic.resctrl: "resctrl", Magic.binderfs: "binder", Magic.xenfs: "xenfs",
    ]

    /// The same file systems by the type name mountinfo shows (for mounts below a source, which
    /// have no open fd), plus those whose magic is shared with an ordinary file system:
    /// devtmpfs reports tmpfs's magic, yet every mount of it is the VM's one device tree.
    public static let pseudoFileSystemTypes: Set<String> = Set(pseudoFileSystems.values).union(["devtmpfs"])

    /// Why a kernel pseudo file system is never a bind source.
    public static let pseudoReason =
        "kernel pseudo file systems show and control the VM's kernel (its processes, devices, IPC, cgroups or security state); containers get their own instances from the engine"

    /// The refusal for a source (or a mount below it, at `below`) whose file system is the
    /// pseudo file system `name`.
    public static func pseudoRefusal(source: String, fileSystem name: String, below: String? = nil) -> String {
        if let below {
            return "can't mount \(source) because a kernel pseudo file system (\(name)) is mounted below it at \(below): \(pseudoReason)"
        }
        return "can't mount \(source) because it's a kernel pseudo file system (\(name)): \(pseudoReason)"
    }

    /// The rule for a source of file-system `magic` whose file type is `fileType`
    /// (the S_IFMT bits of st_mode).
    public static func handling(magic: Int, fileType: UInt32) -> Handling {
        // Pseudo file systems first: a devpts node is a character device, and still the VM's terminal.
        if let name = pseudoFileSystems[magic] {
            return .refuse(reason: "it's a kernel pseudo file system (\(name)): \(pseudoReason)")
        }
        if fileType == 0o020000 || fileType == 0o060000 {
            return .passThrough(reason: "device nodes are not idmapped: access to them is governed by the device cgroup")
        }
        switch magic {
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
