import CSeccomp
import ECIPolicy
import ECIRuntime
import Glibc
import Testing

@testable import ECISupervisor

/// ecid's pieces that need no container: runc's message, the syscall table, the caller's
/// credentials, and bounded reads of a process's memory.
@Suite struct SupervisorUnitTests {
    /// The message runc 1.1.5 sent to ecid at `create`, byte for byte as received.
    static let runc115 = #"{"ociVersion":"1.0.2-dev","fds":["seccompFd"],"pid":26769,"metadata":"eci","state":{"ociVersion":"1.0.2-dev","id":"t1","status":"creating","pid":26769,"bundle":"/tmp/ecid-manual/state/containers/59a8f2b2e9a6-t1"}}"#

    @Test func runcsMessageParses() throws {
        let message = try HandOver(json: Array(Self.runc115.utf8))
        #expect(message.fds == ["seccompFd"])
        #expect(message.pid == 26769 && message.initPID == 26769)
        #expect(message.containerID == "t1" && message.status == "creating" && message.metadata == "eci")
        #expect(message.bundle == "/tmp/ecid-manual/state/containers/59a8f2b2e9a6-t1")
        // Keyed by ECI's directory of it (runc root's hash and ID): IDs are unique per runc root only.
        #expect(message.key == "59a8f2b2e9a6-t1")
        #expect(HandOver.key(bundle: "/s/containers/0123456789ab-t1", id: "t1") == "0123456789ab-t1")
        for other in ["/s/containers/0123456789ab-t2", "/s/containers/0123456789a-t1", "/s/containers/0123456789ag-t1", "/s/containers/x0123456789ab-t1", "/bundle"] {
            #expect(HandOver.key(bundle: other, id: "t1") == "t1", "\(other)")
        }
        #expect(HandOver.key(bundle: nil, id: "t1") == "t1")
        // An exec: the new process's pid, the container's init in state.pid.
        let exec = try HandOver(json: Array(#"{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":7,"state":{"id":"t1","status":"running","pid":3}}"#.utf8))
        #expect(exec.pid == 7 && exec.initPID == 3 && exec.status == "running")
        let badIDs = ["../x", "a/b", "..", ".", "a b", "é"].map { #"{"pid":5,"state":{"id":"\#($0)"}}"# }
        for bad in [#"{"fds":[],"pid":0,"state":{"id":"x"}}"#, #"{"pid":5,"state":{}}"#, #"{"pid":5}"#, "[]", "{"] + badIDs {
            #expect(throws: (any Error).self) { try HandOver(json: Array(bad.utf8)) }
        }
    }

    @Test func syscallTableCoversTheCompatABIs() {
        #expect(TrappedCall(arch: 0xC000_003E, nr: 165) == .mount)
        #expect(TrappedCall(arch: 0xC000_003E, nr: 166) == .umount2)
        #expect(TrappedCall(arch: 0xC000_003E, nr: 165 | 0x4000_0000) == .mount, "x32")
        #expect(TrappedCall(arch: 0x4000_0003, nr: 21) == .mount, "i386")
        #expect(TrappedCall(arch: 0x4000_0003, nr: 22) == .umount, "i386 oldumount")
        #expect(TrappedCall(arch: 0x4000_0003, nr: 52) == .umount2)
        #expect(TrappedCall(arch: 0xC000_00B7, nr: 40) == .mount, "aarch64")
        #expect(TrappedCall(arch: 0xC000_003E, nr: 21) == nil, "access(2) on x86_64 is not ours")
        #expect(TrappedCall(arch: 0xdead, nr: 165) == nil)
        #expect(TrappedCall.is32Bit(arch: 0x4000_0003, nr: 21))
        #expect(!TrappedCall.is32Bit(arch: 0xC000_003E, nr: 165))
    }

    @Test func credentialsFromStatus() throws {
        let status = """
            Name:\tsh
            Uid:\t0\t5\t0\t7
            Gid:\t0\t6\t0\t8
            Groups:\t1 2 10 
            CapInh:\t0000000000000000
            CapPrm:\t00000000a80425fb
            CapEff:\t0000000000200000
            """
        let creds = try Credentials(status: status)
        #expect(creds.uid == 5 && creds.gid == 6, "the effective IDs")
        #expect(creds.fsuid == 7 && creds.fsgid == 8, "the file-system IDs")
        #expect(creds.groups == [1, 2, 10])
        #expect(creds.effective == 0x200000 && creds.permitted == 0xa80425fb && creds.inheritable == 0)
        #expect(throws: (any Error).self) { try Credentials(status: "Name:\tsh\n") }
    }

    @Test func stringsAreReadWithinBounds() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let raw = mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
            Issue.record("mmap")
            return
        }
        defer { munmap(raw, page) }
        // The second page goes away: a string running into it is unreadable, not a crash.
        #expect(munmap(raw + page, page) == 0)
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        memset(raw, 0x61, page)
        let me = getpid()
        var buffer = [CChar](repeating: 0, count: 8192)
        let base = UInt64(UInt(bitPattern: raw))
        #expect(eci_read_string(me, base, &buffer, 8192) == -Int(EFAULT), "unterminated before an unmapped page")
        // Terminated on the page's last byte: read whole, across no boundary it cannot cross.
        bytes[page - 1] = 0
        #expect(eci_read_string(me, base + UInt64(page - 6), &buffer, 8192) == 5)
        #expect(String(cString: buffer) == "aaaaa")
        #expect(eci_read_string(me, base, &buffer, 100) == -Int(ENAMETOOLONG), "no NUL within the bound")
        #expect(eci_read_string(me, 0, &buffer, 100) == -Int(EFAULT), "NULL")
        #expect(eci_read_string(me, UInt64.max - 2, &buffer, 100) == -Int(EFAULT), "wraps the address space")
        #expect(eci_read_string(me, 8, &buffer, 100) == -Int(EFAULT), "unmapped low page")
        #expect(eci_read_string(Int32.max, base, &buffer, 100) == -Int(ESRCH), "no such thread")
    }

    /// The helper's binary messages: every call shape round-trips; malformed ones are refused.
    @Test func helperWireRoundTrips() {
        let calls: [MountCallPolicy.Call] = [
            .mount(source: "none", target: "/mnt", fsType: "tmpfs", flags: 0xC0ED_0000 | 6, data: "size=1m,uid=0"),
            .mount(source: nil, target: "/mnt", fsType: nil, flags: MountCallPolicy.msRemount, data: nil),
            .mount(source: "/a", target: "/b", fsType: nil, flags: MountCallPolicy.msBind, data: ""),
            .mount(source: "", target: "/é/ü", fsType: "proc", flags: 0, data: nil),
            .umount(target: "/mnt/x", flags: 2),
        ]
        for (i, call) in calls.enumerated() {
            let request = HelperRequest(call: call, slot: 0xfeed_f00d_0000_0000 | UInt64(i), id: UInt64.max - UInt64(i))
            let bytes = HelperWire.encode(request)
            #expect(HelperWire.decodeRequest(bytes) == request, "\(call)")
            #expect(HelperWire.decodeRequest(Array(bytes.dropLast())) == nil, "truncated \(call)")
            #expect(HelperWire.decodeRequest(bytes + [0]) == nil, "trailing byte \(call)")
        }
        var bad = HelperWire.encode(HelperRequest(call: .umount(target: "/x", flags: 0), slot: 1, id: 2))
        bad[0] = 9
        #expect(HelperWire.decodeRequest(bad) == nil, "unknown kind")
        let nul = HelperRequest(call: .mount(source: nil, target: "/a\u{0}b", fsType: nil, flags: 0, data: nil), slot: 1, id: 2)
        #expect(HelperWire.decodeRequest(HelperWire.encode(nul)) == nil, "NUL")
        let response = HelperResponse(errno: 16, reason: "/proc is one of the container's protected mounts")
        #expect(HelperWire.decodeResponse(HelperWire.encode(response)) == response)
        #expect(HelperWire.decodeResponse(HelperWire.encode(HelperResponse(errno: 0, reason: nil)))?.errno == 0)
        #expect(HelperWire.decodeResponse([1, 2]) == nil)
        #expect(HelperWire.decodeResponse([0xff, 0xff, 0xff, 0xff]) == nil, "negative errno")
    }

    /// The helper's byte parser of mountinfo reads what ECIRuntime's does, for what the policy
    /// uses: escapes, optional fields, long overlay options, and this machine's own table.
    @Test func mountTableMatchesMountInfo() throws {
        let sample = """
            21 1 0:50 / / rw,relatime master:1 shared:2 - overlay overlay rw,lowerdir=/a:/b\\:c,upperdir=/u,workdir=/w
            22 21 0:60 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
            23 21 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw,size=100k
            24 21 8:1 /srv/a\\040b /da\\011ta\\134x ro,nodev - ext4 /dev/sda1 rw
            25 21 0:61 / /with\\777odd ro,noexec - tmpfs none ro
            bad line
            """
        var texts = [sample]
        if let own = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) { texts.append(own) }
        for text in texts {
            let rows = MountTable.parse(Array(text.utf8))
            let reference = MountInfo.parse(text)
            #expect(rows.map(\.mountID) == reference.map(\.mountID))
            #expect(rows.map(\.parentID) == reference.map(\.parentID))
            #expect(rows.map(\.mount.id) == reference.map(\.mountID) && rows.map(\.mount.parentID) == reference.map(\.parentID))
            #expect(rows.map { var m = $0.mount; m.id = nil; m.parentID = nil; m.shared = nil; return m } == reference.map(MountHelper.policyMount))
            #expect(rows.allSatisfy { $0.mount.shared != nil }, "the helper's table always says whether a mount is shared")
        }
        let rows = MountTable.parse(Array(sample.utf8))
        // `shared:N` among the optional fields (after a `master:N` too): a peer group; none, or
        // `master:N` alone: attaching on it propagates nowhere.
        #expect(rows.map(\.mount.shared) == [true, false, false, false, false])
        let slave = MountTable.parse(Array("30 21 0:60 / /proc rw master:7 - proc proc rw\n31 21 0:60 / /p rw shared:12 - proc proc rw\n".utf8))
        #expect(slave.map(\.mount.shared) == [false, true])
        #expect(rows[3].mount.root == "/srv/a b" && rows[3].mount.mountPoint == "/da\tta\\x" && rows[3].mount.readOnly && rows[3].mount.noDev)
        #expect(rows[4].mount.mountPoint == "/with\\777odd", "not an escape the kernel writes: kept")
    }

    /// A rename while the table and the names were read shows as a mount outside its parent's
    /// point, or a name outside its mount's: the helper reads both again.
    @Test func renamesWhileReadingShowAsInconsistency() {
        func row(_ id: Int, _ parent: Int, _ point: String, _ type: String = "tmpfs") -> MountTable.Row {
            MountTable.Row(mountID: id, parentID: parent, mount: MountCallPolicy.Mount(device: "0:\(id)", root: "/", mountPoint: point, fsType: type, options: []))
        }
        let before = [row(1, 0, "/"), row(2, 1, "/proc", "proc"), row(3, 1, "/a/p", "proc"), row(4, 3, "/a/p/keys"), row(5, 3, "/a/p/timer_list")]
        #expect(MountTable.consistent(before, objects: [("/a/p", 3, true), ("/a/p/sys/kernel", 3, false)]))
        // The procfs read before `mv /a /b`, one of its masks after.
        var mixed = before
        mixed[4] = row(5, 3, "/b/p/timer_list")
        #expect(!MountTable.consistent(mixed, objects: [("/a/p", 3, true)]))
        // The table before, the bind's source named after.
        #expect(!MountTable.consistent(before, objects: [("/b/p", 3, true)]))
        // All after: one layout again.
        let after = [row(1, 0, "/"), row(2, 1, "/proc", "proc"), row(3, 1, "/b/p", "proc"), row(4, 3, "/b/p/keys"), row(5, 3, "/b/p/timer_list")]
        #expect(MountTable.consistent(after, objects: [("/b/p", 3, true)]))
        // Moved below a new directory of its own old name (`mv /a /E/p; mv /E /a`): the procfs
        // root is now /a/p/p, "below" the kept point /a/p, the masks still at /a/p/keys. A mount
        // root's name must be its point exactly; a name inside it (its position within the
        // procfs) is confirmed from the mount's root by the helper (`anchored`).
        #expect(!MountTable.consistent(before, objects: [("/a/p/p", 3, true)]))
        // A parent outside the caller's root, a mount the names do not know: nothing to compare.
        #expect(MountTable.consistent([row(7, 99, "/x")], objects: [("/y", 42, false)]))
    }
}
