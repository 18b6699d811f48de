import ECIPolicy
import Testing

@Suite struct PseudoFileSystemTableTests {
    static let refused: [Int] = [
        BindSourcePolicy.Magic.proc, BindSourcePolicy.Magic.sysfs, BindSourcePolicy.Magic.debugfs, BindSourcePolicy.Magic.tracefs,
        BindSourcePolicy.Magic.securityfs, BindSourcePolicy.Magic.bpf, BindSourcePolicy.Magic.configfs, BindSourcePolicy.Magic.cgroup,
        BindSourcePolicy.Magic.cgroup2, BindSourcePolicy.Magic.pstore, BindSourcePolicy.Magic.efivarfs, BindSourcePolicy.Magic.binfmtMisc,
        BindSourcePolicy.Magic.fusectl, BindSourcePolicy.Magic.mqueue, BindSourcePolicy.Magic.nsfs, BindSourcePolicy.Magic.devpts,
        BindSourcePolicy.Magic.autofs, BindSourcePolicy.Magic.selinuxfs, BindSourcePolicy.Magic.pidfs,
    ]

    @Test(arguments: refused)
    func pseudoFileSystemsAreRefused(_ magic: Int) {
        for fileType: UInt32 in [0o040000, 0o100000, 0o020000] {
            guard case let .refuse(reason) = BindSourcePolicy.handling(magic: magic, fileType: fileType) else {
                Issue.record("magic \(magic) type \(fileType) is not refused")
                continue
            }
            #expect(reason.contains("kernel pseudo file system"))
        }
    }

    @Test func theMagicNumbersAreTheKernels() {
        // include/uapi/linux/magic.h
        #expect(BindSourcePolicy.pseudoFileSystems[0x9fa0] == "proc")
        #expect(BindSourcePolicy.pseudoFileSystems[0x6265_6572] == "sysfs")
        #expect(BindSourcePolicy.pseudoFileSystems[0x1980_0202] == "mqueue")
        #expect(BindSourcePolicy.pseudoFileSystems[0x6e73_6673] == "nsfs")
        #expect(BindSourcePolicy.pseudoFileSystems[0x6367_7270] == "cgroup2")
        #expect(BindSourcePolicy.pseudoFileSystems[0x74726163] == "tracefs")
        #expect(BindSourcePolicy.pseudoFileSystemTypes.contains("devtmpfs"), "devtmpfs shares tmpfs's magic: judged by name")
        #expect(BindSourcePolicy.pseudoFileSystemTypes.isSuperset(of: ["proc", "sysfs", "mqueue", "cgroup", "cgroup2", "bpf", "debugfs"]))
    }

    @Test func ordinaryFileSystemsAreNotPseudo() {
        #expect(BindSourcePolicy.handling(magic: 0xEF53, fileType: 0o040000) == .idmap)  // ext4
        #expect(BindSourcePolicy.handling(magic: BindSourcePolicy.Magic.tmpfs, fileType: 0o040000) == .idmap)
        #expect(BindSourcePolicy.handling(magic: 0x9123_683E, fileType: 0o040000) == .idmap)  // btrfs
        for magic in [BindSourcePolicy.Magic.overlay, BindSourcePolicy.Magic.fuse, BindSourcePolicy.Magic.nfs] {
            guard case .passThrough = BindSourcePolicy.handling(magic: magic, fileType: 0o040000) else {
                Issue.record("magic \(magic) should pass through unshifted")
                continue
            }
        }
        // A device node on an ordinary file system is the device cgroup's business.
        guard case .passThrough = BindSourcePolicy.handling(magic: 0xEF53, fileType: 0o020000) else {
            Issue.record("device nodes pass through")
            return
        }
        #expect(!BindSourcePolicy.pseudoFileSystemTypes.contains("tmpfs") && !BindSourcePolicy.pseudoFileSystemTypes.contains("overlay"))
    }

    @Test func refusalsSayWhy() {
        let top = BindSourcePolicy.pseudoRefusal(source: "/v/_data", fileSystem: "proc")
        #expect(top.hasPrefix("can't mount /v/_data because it's a kernel pseudo file system (proc)"))
        let below = BindSourcePolicy.pseudoRefusal(source: "/srv/a", fileSystem: "sysfs", below: "/srv/a/s")
        #expect(below.contains("a kernel pseudo file system (sysfs) is mounted below it at /srv/a/s"))
    }
}

@Suite struct StackedSourcePolicyTests {
    func layers(_ options: String, type: String = "overlay", source: String = "overlay") -> StackedSourcePolicy.Layers {
        StackedSourcePolicy.layers(fsType: type, source: source, superOptions: options.split(separator: ",").map(String.init))
    }

    @Test func readsEveryLayer() {
        #expect(layers("rw,lowerdir=/a:/b,upperdir=/u,workdir=/w,uuid=on") == .layers(["/a", "/b", "/u", "/w"]))
        #expect(layers("ro,lowerdir=/a") == .layers(["/a"]))
        #expect(layers("rw,lowerdir+=/a,lowerdir+=/b,datadir+=/d,upperdir=/u,workdir=/w,redirect_dir=on,metacopy=on") == .layers(["/a", "/b", "/d", "/u", "/w"]))
        #expect(layers("rw,lowerdir=/a,index=off,xino=auto,nfs_export=off,volatile,userxattr,default_permissions,verity=off") == .layers(["/a"]))
    }

    @Test func dataOnlyLayersAfterDoubleColon() {
        #expect(layers("ro,lowerdir=/l1:/l2::/d1::/d2,redirect_dir=on") == .layers(["/l1", "/l2", "/d1", "/d2"]))
        #expect(unreadable(layers("ro,lowerdir=:/a")))
        #expect(unreadable(layers("ro,lowerdir=/a:")))
        #expect(unreadable(layers("ro,lowerdir=/a:::/b")))
    }

    /// What the kernel shows for `lowerdir=/x/a\,b:/x/c\:d` once mountinfo's octal escapes
    /// (\134 for the backslash, \054 for the comma) are undone by MountInfo.
    @Test func overlayEscapesAreUndone() {
        let options = ["rw", "lowerdir=/x/a\\,b:/x/c\\:d::/x/e", "upperdir=/x/u\\:1", "workdir=/x/w"]
        #expect(StackedSourcePolicy.overlayLayers(options) == .layers(["/x/a,b", "/x/c:d", "/x/e", "/x/u:1", "/x/w"]))
        #expect(StackedSourcePolicy.overlayLayers(["rw", "lowerdir=/x/a\\\\:/b"]) == .layers(["/x/a\\", "/b"]))
        #expect(unreadable(StackedSourcePolicy.overlayLayers(["rw", "lowerdir=/x/a\\"])), "a trailing lone backslash")
    }

    @Test func anythingUnclearIsUnreadable() {
        #expect(unreadable(layers("rw,upperdir=/u,workdir=/w")), "no lower layer")
        #expect(unreadable(layers("rw,lowerdir=l/ABC:l/DEF,upperdir=/u,workdir=/w")), "relative layers")
        #expect(unreadable(layers("rw,lowerdir=/a,surprise=/etc")), "unknown option")
        #expect(unreadable(layers("rw,lowerdir=/a,b")), "a comma the kernel did not escape splits a path")
        #expect(unreadable(layers("rw,lowerdir=/a,upperdir=")))
    }

    @Test func otherFileSystemsAreNotStacked() {
        #expect(layers("rw,size=100k", type: "tmpfs") == .notStacked)
        #expect(layers("rw", type: "ext4", source: "/dev/vda") == .notStacked)
        #expect(layers("rw,ecryptfs_sig=x", type: "ecryptfs", source: "/home/.private") == .layers(["/home/.private"]))
        #expect(unreadable(layers("rw", type: "ecryptfs", source: "private")))
    }
}

/// Whether the options were refused as unreadable, whatever the explanation.
func unreadable(_ layers: StackedSourcePolicy.Layers) -> Bool {
    if case .unreadable = layers { return true }
    return false
}
