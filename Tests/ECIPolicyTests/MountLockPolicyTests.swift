import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

/// Which containers start under eci-init (the kernel then locks the runtime's mounts), and the
/// spec rewrite that puts it in front of the program.
@Suite struct MountLockPolicyTests {
    static func spec(uid: Int? = 0, bounding: [String]?, args: [String] = ["/bin/sh", "-c", "true"], extra: String? = nil) throws -> OCISpec {
        var process: [String] = ["\"args\": [\(args.map { "\"\($0)\"" }.joined(separator: ", "))]"]
        if let extra { process.append(extra) }
        if let uid { process.append("\"user\": {\"uid\": \(uid), \"gid\": 0}") }
        if let bounding { process.append("\"capabilities\": {\"bounding\": [\(bounding.map { "\"\($0)\"" }.joined(separator: ", "))]}") }
        let text = "{\"ociVersion\": \"1.0.2\", \"process\": {\(process.joined(separator: ", "))}, \"root\": {\"path\": \"rootfs\"}}"
        return try OCISpec(bytes: Array(text.utf8))
    }

    @Test func rootWithSysAdminIsLocked() throws {
        #expect(try MountLockPolicy.decide(Self.spec(bounding: ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"])) == .lock)
        // No user object: runc starts the process as uid 0.
        #expect(try MountLockPolicy.decide(Self.spec(uid: nil, bounding: ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"])) == .lock)
    }

    @Test func withoutSysAdminNothingToLockAgainst() throws {
        // Docker's default capabilities: no mount call is allowed at all.
        let docker = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT", "CAP_NET_BIND_SERVICE"]
        guard case .unlocked = try MountLockPolicy.decide(Self.spec(bounding: docker)) else { Issue.record("locked"); return }
        guard case .unlocked = try MountLockPolicy.decide(Self.spec(bounding: nil)) else { Issue.record("locked"); return }
    }

    /// A process that starts as another user can regain CAP_SYS_ADMIN through a setuid-root
    /// program or a file capability of its image (an attack round did) unless
    /// no-new-privileges is set: locked. Without CAP_SYS_CHROOT, eci-init is granted it.
    @Test func regainableOrChrootlessSysAdminIsLocked() throws {
        #expect(try MountLockPolicy.decide(Self.spec(uid: 1000, bounding: ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"])) == .lock)
        guard case .unlocked = try MountLockPolicy.decide(Self.spec(uid: 1000, bounding: ["CAP_SYS_ADMIN"], extra: "\"noNewPrivileges\": true")) else {
            Issue.record("locked, though exec grants nothing under no-new-privileges")
            return
        }
        #expect(try MountLockPolicy.decide(Self.spec(bounding: ["CAP_SYS_ADMIN"])) == .lock)
        // File capabilities take the inheritable set, not limited by the bounding set.
        let inheritable = "\"capabilities\": {\"inheritable\": [\"CAP_SYS_ADMIN\"]}"
        #expect(try MountLockPolicy.decide(Self.spec(uid: 1000, bounding: nil, extra: inheritable)) == .lock)
        // A file capability under no-new-privileges still grants up to the permitted set runc
        // set (an attack round: `cap_sys_admin+ep`, --user 1000 --cap-add SYS_ADMIN
        // --security-opt no-new-privileges ran unlocked).
        let boundedAndPermitted = "\"noNewPrivileges\": true, \"capabilities\": {\"bounding\": [\"CAP_SYS_ADMIN\"], \"permitted\": [\"CAP_SYS_ADMIN\"]}"
        #expect(try MountLockPolicy.decide(Self.spec(uid: 1000, bounding: nil, extra: boundedAndPermitted)) == .lock)
    }

    static func capabilities(_ spec: OCISpec, _ set: String) -> [String] {
        (spec.document["process"]?["capabilities"]?[set]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    static func args(_ spec: OCISpec) -> [String] { (spec.document["process"]?["args"]?.arrayValue ?? []).compactMap(\.stringValue) }

    /// What eci-init needs and the program would not hold is granted in the spec and listed
    /// for eci-init to take back: nothing for --privileged; the bounding and permitted sets for
    /// root; every set the ambient one depends on for another user. Never CAP_SETUID: who owns
    /// the nested user namespace does not matter (it dies before the program starts).
    @Test func capabilitiesAreGrantedToInitAndTakenBack() throws {
        let all = "[\"CAP_SETPCAP\", \"CAP_SYS_ADMIN\", \"CAP_SYS_CHROOT\"]"
        var privileged = try Self.spec(bounding: nil, args: ["true"], extra: "\"capabilities\": {\"bounding\": \(all), \"permitted\": \(all), \"effective\": \(all)}")
        #expect(try MountLockPolicy.startUnderInit(&privileged, initFD: 3, statusFD: 4) == false)
        #expect(Self.args(privileged) == ["/proc/self/fd/3", "--status-fd=4", "--", "true"])

        // Root without CAP_SYS_CHROOT: added to the bounding and permitted sets, with
        // CAP_SETPCAP to drop it from the bounding set again.
        let admin = "[\"CAP_SYS_ADMIN\"]"
        var chrootless = try Self.spec(bounding: nil, args: ["true"], extra: "\"capabilities\": {\"bounding\": \(admin), \"permitted\": \(admin)}")
        #expect(try MountLockPolicy.startUnderInit(&chrootless, initFD: 4, statusFD: 5) == true)
        #expect(Self.args(chrootless) == ["/proc/self/fd/4", "--status-fd=5", "--drop-caps=bounding:18+8,permitted:18+8", "--", "true"])
        #expect(Self.capabilities(chrootless, "bounding") == ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SETPCAP"])
        #expect(Self.capabilities(chrootless, "ambient").isEmpty)
        // Under no-new-privileges root's exec keeps within the permitted set runc set before:
        // CAP_SYS_ADMIN in the bounding set alone is not held.
        var confined = try Self.spec(bounding: ["CAP_SYS_ADMIN"], args: ["true"], extra: "\"noNewPrivileges\": true")
        #expect(try MountLockPolicy.startUnderInit(&confined, initFD: 4, statusFD: 5) == true)
        #expect(Self.args(confined) == ["/proc/self/fd/4", "--status-fd=5", "--drop-caps=bounding:18+8,permitted:21+18+8", "--", "true"])

        // uid 1000, Docker's shape for --privileged --user 1000: the bounding set full, nothing
        // ambient. eci-init gets the two ambient (hence inheritable and permitted too); the
        // bounding set has them already: no CAP_SETPCAP needed.
        var user = try Self.spec(uid: 1000, bounding: ["CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], args: ["id"])
        #expect(try MountLockPolicy.startUnderInit(&user, initFD: 3, statusFD: 4) == true)
        #expect(Self.args(user) == ["/proc/self/fd/3", "--status-fd=4", "--drop-caps=inheritable:21+18,permitted:21+18,ambient:21+18", "--", "id"])
        for set in ["inheritable", "permitted", "ambient"] {
            #expect(Self.capabilities(user, set) == ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], "\(set)")
        }
        #expect(Self.capabilities(user, "bounding") == ["CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"])

        // uid 1000 whose bounding set lacks CAP_SYS_CHROOT: added there too, so CAP_SETPCAP is
        // granted to drop it again.
        var narrow = try Self.spec(uid: 1000, bounding: ["CAP_SYS_ADMIN"], args: ["id"])
        #expect(try MountLockPolicy.startUnderInit(&narrow, initFD: 3, statusFD: 4) == true)
        #expect(Self.args(narrow).contains("--drop-caps=bounding:18+8,inheritable:21+18+8,permitted:21+18+8,ambient:21+18+8"))
    }

    /// Docker's docker-default AppArmor profile (`--cap-add SYS_ADMIN` without
    /// `apparmor=unconfined`) denies mount, umount and the user namespace eci-init needs: found
    /// in the VM, where eci-init failed with EACCES (apparmor="DENIED" operation="userns_create").
    @Test func lsmConfinedContainersAreNotLocked() throws {
        let admin = ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]
        guard case .unlocked(let why) = try MountLockPolicy.decide(Self.spec(bounding: admin, extra: "\"apparmorProfile\": \"docker-default\"")) else {
            Issue.record("locked under docker-default")
            return
        }
        #expect(why.contains("AppArmor"))
        #expect(try MountLockPolicy.decide(Self.spec(bounding: admin, extra: "\"apparmorProfile\": \"unconfined\"")) == .lock)
        #expect(try MountLockPolicy.decide(Self.spec(bounding: admin, extra: "\"apparmorProfile\": \"\"")) == .lock)
        guard case .unlocked = try MountLockPolicy.decide(Self.spec(bounding: admin, extra: "\"selinuxLabel\": \"system_u:system_r:container_t:s0\"")) else {
            Issue.record("locked under an SELinux label")
            return
        }
    }

    /// Found by an attack round: uid 1000 with ambient CAP_SYS_ADMIN holds it from its first
    /// instruction, so it is locked like root (eci-init runs with those capabilities too).
    @Test func nonRootWithAmbientSysAdminIsLocked() throws {
        let admin = "[\"CAP_SYS_ADMIN\", \"CAP_SYS_CHROOT\"]"
        let ambient = "\"capabilities\": {\"bounding\": \(admin), \"permitted\": \(admin), \"inheritable\": \(admin), \"ambient\": \(admin)}"
        #expect(try MountLockPolicy.decide(Self.spec(uid: 1000, bounding: nil, extra: ambient)) == .lock)
    }

    /// A soft RLIMIT_NPROC below 2 is eci-init's to set, after its fork (a limit of 1 failed
    /// it); a larger one stays runc's (runc exec without --process reads it from the spec).
    @Test func processLimitMovesToInit() throws {
        let rlimits = "\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1024, \"hard\": 1024}, {\"type\": \"RLIMIT_NPROC\", \"soft\": 1, \"hard\": 2}]"
        var spec = try Self.spec(bounding: ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], args: ["true"], extra: rlimits)
        try MountLockPolicy.startUnderInit(&spec, initFD: 3, statusFD: 4)
        #expect(spec.document["process"]?["args"]?.arrayValue?.compactMap(\.stringValue) == ["/proc/self/fd/3", "--status-fd=4", "--nproc=1:2", "--", "true"])
        #expect(spec.document["process"]?["rlimits"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["RLIMIT_NOFILE"])
        let roomy = "\"rlimits\": [{\"type\": \"RLIMIT_NPROC\", \"soft\": 66, \"hard\": 66}]"
        var kept = try Self.spec(bounding: ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], args: ["true"], extra: roomy)
        try MountLockPolicy.startUnderInit(&kept, initFD: 3, statusFD: 4)
        #expect(kept.document["process"]?["args"]?.arrayValue?.compactMap(\.stringValue) == ["/proc/self/fd/3", "--status-fd=4", "--", "true"])
        #expect(kept.document["process"]?["rlimits"]?.arrayValue?.count == 1)
    }

    /// eci-init's steps run under the container's profile: one that answers a call with errno
    /// 0 fakes its success (an attack round faked eci-init's capability drop with prctl, capget
    /// and capset), and runc hands libseccomp the errno as 16 bits, so every multiple of 65536 is
    /// 0 too (the next round). Refused, whatever the coverage of the traps (a fifth round got
    /// past the check while only the traps' merge made it: a container hook, or no ecid).
    @Test(arguments: ["0", "65536", "131072", "4294967296", "-1", "4096", "\"1\""])
    func profilesThatFakeSuccessAreRefused(errno: String) throws {
        func spec(_ seccomp: String) throws -> OCISpec {
            try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","process":{"args":["sh"]},"linux":{"seccomp":\#(seccomp)}}"#.utf8))
        }
        let rule = #"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["capset","prctl"],"action":"SCMP_ACT_ERRNO","errnoRet":\#(errno)}]}"#
        #expect(throws: ECIError.self, "errnoRet \(errno)") { try MountLockPolicy.checkProfile(try spec(rule)) }
        let byDefault = #"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":\#(errno),"syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW"}]}"#
        #expect(throws: ECIError.self, "defaultErrnoRet \(errno)") { try MountLockPolicy.checkProfile(try spec(byDefault)) }
        // The neighbours: real errnos, runc's EPERM when none is given, no profile at all.
        try MountLockPolicy.checkProfile(try spec(#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{"names":["capset"],"action":"SCMP_ACT_ERRNO","errnoRet":4095}]}"#))
        try MountLockPolicy.checkProfile(try spec(#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["capset"],"action":"SCMP_ACT_ERRNO"}]}"#))
        try MountLockPolicy.checkProfile(try spec("null"))
    }

    @Test func emptyArgsAreAnError() throws {
        #expect(throws: ECIError.self) { try MountLockPolicy.decide(Self.spec(bounding: ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], args: [])) }
    }

    @Test func programBecomesInitsArguments() throws {
        var spec = try Self.spec(bounding: ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], args: ["nginx", "-g", "daemon off;"])
        try MountLockPolicy.startUnderInit(&spec, initFD: 4, statusFD: 5)
        let args = spec.document["process"]?["args"]?.arrayValue?.compactMap(\.stringValue)
        #expect(args == ["/proc/self/fd/4", "--status-fd=5", "--", "nginx", "-g", "daemon off;"])
        // Everything else of the process is kept.
        #expect(spec.document["process"]?["user"]?["uid"]?.uint64Value == 0)
        #expect(throws: ECIError.self) { try MountLockPolicy.startUnderInit(&spec, initFD: 2, statusFD: 3) }
        #expect(throws: ECIError.self) { try MountLockPolicy.startUnderInit(&spec, initFD: 4, statusFD: 4) }
    }
}
