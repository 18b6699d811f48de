import ECICore
import ECIOCI
import ECITestSupport
import Glibc
import Testing

@testable import ECIRuntime

/// eci-runc's seccomp merge: the traps win over the engine's allow rules, the engine's refusals
/// stand, and a container without a profile gets one.
@Suite struct SeccompTrapsTests {
    static let socket = "/run/eci/ecid/ecid.sock"

    /// The shape dockerd 26 writes for its default profile under --cap-add SYS_ADMIN: the
    /// CAP_SYS_ADMIN group already resolved into a plain allow rule.
    static let dockerDefault = """
        {"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
         "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
         "syscalls":[
           {"names":["accept","read","write"],"action":"SCMP_ACT_ALLOW"},
           {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
           {"names":["bpf","fsconfig","fsmount","fsopen","fspick","mount","mount_setattr","move_mount","open_tree","setns","umount","umount2","unshare"],"action":"SCMP_ACT_ALLOW"}
         ]}
        """

    static func rules(_ v: JSONValue) -> [(names: [String], action: String, errno: String?)] {
        (v["syscalls"]?.arrayValue ?? []).map { rule in
            ((rule["names"]?.arrayValue ?? []).compactMap(\.stringValue), rule["action"]?.stringValue ?? "",
             rule["errnoRet"].map { $0.serialized() })
        }
    }

    static func actions(for name: String, in v: JSONValue) -> [String] {
        rules(v).filter { $0.names.contains(name) }.map { $0.action + ($0.errno.map { "(\($0))" } ?? "") }
    }

    @Test func dockerDefaultWithSysAdminNotifiesMountAndRefusesTheNewAPI() throws {
        let merged = try SeccompTraps.merge(try JSONValue.parse(Self.dockerDefault), listenerPath: Self.socket)
        #expect(merged["listenerPath"]?.stringValue == Self.socket)
        #expect(merged["listenerMetadata"]?.stringValue == "eci")
        #expect(merged["defaultAction"]?.stringValue == "SCMP_ACT_ERRNO")
        for name in ["mount", "umount", "umount2"] {
            #expect(Self.actions(for: name, in: merged) == ["SCMP_ACT_NOTIFY"], "\(name): one NOTIFY rule, the allow gone")
        }
        // Those Docker's profile allows (its default refuses open_tree_attr, which it does not know).
        for name in SeccompTraps.newMountAPI where name != "open_tree_attr" {
            #expect(Self.actions(for: name, in: merged) == ["SCMP_ACT_ERRNO(38)"], "\(name): ENOSYS so tools fall back to mount(2)")
        }
        #expect(Self.actions(for: "open_tree_attr", in: merged).isEmpty)
        // The rest of the allow group survives, untouched.
        #expect(Self.actions(for: "setns", in: merged) == ["SCMP_ACT_ALLOW"])
        #expect(Self.actions(for: "bpf", in: merged) == ["SCMP_ACT_ALLOW"])
        #expect(Self.actions(for: "personality", in: merged) == ["SCMP_ACT_ALLOW"])
        #expect(merged["architectures"] == (try JSONValue.parse(Self.dockerDefault))["architectures"])
    }

    @Test func dockerDefaultWithoutSysAdminKeepsItsRefusal() throws {
        // Without CAP_SYS_ADMIN the engine sends no rule for mount: the default EPERM stands
        // and ecid never hears of those calls (nothing for the kernel to perform anyway).
        let profile = try JSONValue.parse("""
            {"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}
            """)
        let merged = try SeccompTraps.merge(profile, listenerPath: Self.socket)
        #expect(Self.actions(for: "mount", in: merged).isEmpty)
        #expect(Self.actions(for: "fsopen", in: merged).isEmpty)
        #expect(merged["listenerPath"]?.stringValue == Self.socket)
    }

    @Test func noProfileGetsDefaultAllowPlusTheTraps() throws {
        for none: JSONValue? in [nil, .null] {
            let merged = try SeccompTraps.merge(none, listenerPath: Self.socket, architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            #expect(merged["defaultAction"]?.stringValue == "SCMP_ACT_ALLOW")
            #expect(merged["architectures"] == .array([.string("SCMP_ARCH_X86_64"), .string("SCMP_ARCH_X86")]))
            #expect(Self.actions(for: "umount2", in: merged) == ["SCMP_ACT_NOTIFY"])
            #expect(Self.actions(for: "open_tree", in: merged) == ["SCMP_ACT_ERRNO(38)"])
            #expect(Self.actions(for: "pivot_root", in: merged) == ["SCMP_ACT_NOTIFY"])
            #expect(Self.actions(for: "open_tree_attr", in: merged) == ["SCMP_ACT_ERRNO(38)"])
            #expect(Self.rules(merged).count == 12)
        }
    }

    @Test func customProfilesKeepTheirRefusalsAndConditions() throws {
        // Default allow, mount refused outright, umount2 allowed only with flags == 0,
        // open_tree killed: the refusals stand, the condition is kept with our action.
        let profile = try JSONValue.parse("""
            {"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[
              {"names":["mount","chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
              {"names":["umount2"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"}]},
              {"name":"open_tree","action":"SCMP_ACT_KILL"}
            ]}
            """)
        let merged = try SeccompTraps.merge(profile, listenerPath: Self.socket)
        #expect(Self.actions(for: "mount", in: merged) == ["SCMP_ACT_ERRNO(13)"])
        #expect(Self.actions(for: "chmod", in: merged) == ["SCMP_ACT_ERRNO(13)"])
        #expect(Self.actions(for: "umount", in: merged) == ["SCMP_ACT_NOTIFY"], "not named: the default allow becomes NOTIFY")
        let umount2 = (merged["syscalls"]?.arrayValue ?? []).filter { ($0["names"]?.arrayValue ?? []).contains(.string("umount2")) }
        #expect(umount2.count == 2, "conditional NOTIFY plus the unconditional one the default allow implies")
        #expect(umount2.contains { $0["action"]?.stringValue == "SCMP_ACT_NOTIFY" && $0["args"] != nil })
        #expect(merged["syscalls"]?.arrayValue?.contains { $0["name"]?.stringValue == "open_tree" && $0["action"]?.stringValue == "SCMP_ACT_KILL" } == true)
        #expect(Self.actions(for: "fsopen", in: merged) == ["SCMP_ACT_ERRNO(38)"])
        #expect(merged["flags"] == .array([.string("SECCOMP_FILTER_FLAG_LOG")]))
    }

    /// The mount rules of `merged`: (action, [(mask, value)]) per rule.
    static func mountRules(_ v: JSONValue) -> [(action: String, conditions: [(mask: UInt64, value: UInt64)])] {
        (v["syscalls"]?.arrayValue ?? []).filter { ($0["names"]?.arrayValue ?? []).contains(.string("mount")) }.map { rule in
            (rule["action"]?.stringValue ?? "", (rule["args"]?.arrayValue ?? []).map { arg in
                #expect(arg["index"]?.uint64Value == 3 && arg["op"]?.stringValue == "SCMP_CMP_MASKED_EQ")
                return (arg["value"]?.uint64Value ?? 0, arg["valueTwo"]?.uint64Value ?? 0)
            })
        }
    }

    /// What the rules do with mount flags `flags`, as the kernel's seccomp would: the first
    /// NOTIFY that matches wins over an allow, else the allow, else `fallback` (the default).
    static func outcome(ofMountFlags flags: UInt64, in v: JSONValue, fallback: String) -> String {
        let matching = mountRules(v).filter { rule in rule.conditions.allSatisfy { flags & $0.mask == $0.value } }
        if matching.contains(where: { $0.action == "SCMP_ACT_NOTIFY" }) { return "SCMP_ACT_NOTIFY" }
        return matching.first?.action ?? fallback
    }

    /// Under eci-init (the kernel locks the runtime's mounts) only the calls the kernel cannot
    /// vet alone are trapped: umount/umount2 and bind remounts keep the engine's action; new
    /// mounts, superblock remounts, binds, moves, propagation changes and pivot_root notify.
    @Test func kernelLockedContainersKeepOnlyTheTrapsTheKernelCannotReplace() throws {
        let bind: UInt64 = 0x1000, remount: UInt64 = 0x20, move: UInt64 = 0x2000, rdonly: UInt64 = 1
        let magic: UInt64 = 0xC0ED_0000, rec: UInt64 = 0x4000, shared: UInt64 = 1 << 20, priv: UInt64 = 1 << 18
        let trapped: [UInt64] = [0, rdonly, magic, magic | rdonly, remount, remount | rdonly, magic | remount, bind, bind | rec,
                                 magic | bind, move, magic | move, shared, priv | rec, 1 << 40, bind | (1 << 40)]
        let untrapped: [UInt64] = [remount | bind, remount | bind | rdonly, magic | remount | bind | rdonly, remount | bind | rec | (1 << 40)]

        // --privileged: no profile. The default allow lets bind remounts and unmounts through.
        let none = try SeccompTraps.merge(nil, listenerPath: Self.socket, coverage: .kernelLocked)
        for flags in trapped { #expect(Self.outcome(ofMountFlags: flags, in: none, fallback: "ALLOW") == "SCMP_ACT_NOTIFY", "flags \(flags)") }
        for flags in untrapped { #expect(Self.outcome(ofMountFlags: flags, in: none, fallback: "ALLOW") == "ALLOW", "flags \(flags)") }
        #expect(Self.actions(for: "umount2", in: none).isEmpty, "left to the default allow")
        #expect(Self.actions(for: "umount", in: none).isEmpty)
        #expect(Self.actions(for: "pivot_root", in: none) == ["SCMP_ACT_NOTIFY"])
        #expect(Self.actions(for: "open_tree", in: none) == ["SCMP_ACT_ERRNO(38)"])

        // Docker's default with CAP_SYS_ADMIN: default refusal, mount allowed by a rule. The
        // bind remounts keep that rule's allow; umount2 stays in the engine's allow group.
        let docker = try SeccompTraps.merge(try JSONValue.parse(Self.dockerDefault), listenerPath: Self.socket, coverage: .kernelLocked)
        for flags in trapped { #expect(Self.outcome(ofMountFlags: flags, in: docker, fallback: "ERRNO") == "SCMP_ACT_NOTIFY", "flags \(flags)") }
        for flags in untrapped { #expect(Self.outcome(ofMountFlags: flags, in: docker, fallback: "ERRNO") == "SCMP_ACT_ALLOW", "flags \(flags)") }
        #expect(Self.actions(for: "umount2", in: docker) == ["SCMP_ACT_ALLOW"])
        #expect(Self.actions(for: "fsopen", in: docker) == ["SCMP_ACT_ERRNO(38)"])
        #expect(Self.mountRules(docker).count == 3, "two traps and one allow, the engine's mount allow gone")

        // Without CAP_SYS_ADMIN nothing to narrow: the refusal stands.
        let refused = try JSONValue.parse("""
            {"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}
            """)
        let merged = try SeccompTraps.merge(refused, listenerPath: Self.socket, coverage: .kernelLocked)
        #expect(Self.mountRules(merged).isEmpty)
        #expect(Self.actions(for: "umount2", in: merged).isEmpty)
    }

    /// A profile with its own conditions on mount: runc ORs conditions on one argument, so ours
    /// cannot be added to theirs. mount is then trapped whole, as without the locks.
    @Test func kernelLockedWithConditionsOnMountTrapsItWhole() throws {
        let profile = try JSONValue.parse("""
            {"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
              {"names":["mount"],"action":"SCMP_ACT_ALLOW","args":[{"index":3,"value":1,"op":"SCMP_CMP_MASKED_EQ","valueTwo":1}]},
              {"names":["umount2"],"action":"SCMP_ACT_ALLOW"}
            ]}
            """)
        let merged = try SeccompTraps.merge(profile, listenerPath: Self.socket, coverage: .kernelLocked)
        let mount = Self.mountRules(merged)
        #expect(mount.count == 1 && mount.first?.action == "SCMP_ACT_NOTIFY" && mount.first?.conditions.count == 1, "their condition, our action")
        #expect(Self.actions(for: "umount2", in: merged) == ["SCMP_ACT_ALLOW"])
    }

    /// A hook that runs inside the container under its filter before eci-init (startContainer)
    /// keeps every trap: the mounts are not locked yet when it runs (an attack round).
    @Test func containerHooksKeepEveryTrap() throws {
        func spec(_ hooks: String) throws -> OCISpec {
            try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","process":{"args":["sh"]}\#(hooks)}"#.utf8))
        }
        #expect(SeccompTraps.coverage(startsUnderInit: true, spec: try spec("")) == .kernelLocked)
        #expect(SeccompTraps.coverage(startsUnderInit: false, spec: try spec("")) == .every)
        #expect(SeccompTraps.coverage(startsUnderInit: true, spec: try spec(#","hooks":{"startContainer":[{"path":"/bin/true"}]}"#)) == .every)
        #expect(SeccompTraps.coverage(startsUnderInit: true, spec: try spec(#","hooks":{"createContainer":[{"path":"/bin/true"}]}"#)) == .every)
        #expect(SeccompTraps.coverage(startsUnderInit: true, spec: try spec(#","hooks":{"prestart":[{"path":"/bin/true"}]}"#)) == .kernelLocked)
    }

    @Test func anotherListenerIsRefused() throws {
        let withListener = try JSONValue.parse("""
            {"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/other.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}
            """)
        #expect(throws: ECIError.self) { try SeccompTraps.merge(withListener, listenerPath: Self.socket) }
        let notifyOnly = try JSONValue.parse("""
            {"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}
            """)
        #expect(throws: ECIError.self) { try SeccompTraps.merge(notifyOnly, listenerPath: Self.socket) }
        #expect(throws: ECIError.self) { try SeccompTraps.merge(.array([]), listenerPath: Self.socket) }
    }

    @Test func modesDecideAndFailClosed() throws {
        let state = "/tmp/eci-seccomp-traps-\(getpid())"
        defer { try? FileSystem.removeTree(state) }
        try FileSystem.makeDirectories(state, mode: 0o755)
        let bare = try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"namespaces":[]}}"#.utf8))
        // auto, no ecid directory: unchanged.
        var spec = bare
        try SeccompTraps.apply(to: &spec, stateDirectory: state, environment: [:])
        #expect(spec == bare)
        // required without a socket: refused.
        #expect(throws: ECIError.self) { try SeccompTraps.apply(to: &spec, stateDirectory: state, environment: ["ECI_ECID": "required"]) }
        // auto once ecid's directory exists, socket gone: refused (ecid ran on this boot).
        try FileSystem.makeDirectories(SeccompTraps.directory(stateDirectory: state), mode: 0o700)
        #expect(throws: ECIError.self) { try SeccompTraps.apply(to: &spec, stateDirectory: state, environment: [:]) }
        // off: unchanged whatever exists.
        try SeccompTraps.apply(to: &spec, stateDirectory: state, environment: ["ECI_ECID": "off"])
        #expect(spec == bare)
        #expect(throws: ECIError.self) { try SeccompTraps.apply(to: &spec, stateDirectory: state, environment: ["ECI_ECID": "maybe"]) }
    }

    /// The machine's configuration decides; the environment may only make it stricter.
    @Test func configuredModeWinsOverAWeakerEnvironment() throws {
        #expect(try SeccompTraps.mode(configured: nil, environment: [:]) == .auto)
        #expect(try SeccompTraps.mode(configured: nil, environment: ["ECI_ECID": "off"]) == .off)
        #expect(try SeccompTraps.mode(configured: .required, environment: ["ECI_ECID": "off"]) == .required)
        #expect(try SeccompTraps.mode(configured: .required, environment: ["ECI_ECID": "auto"]) == .required)
        #expect(try SeccompTraps.mode(configured: .auto, environment: ["ECI_ECID": "required"]) == .required)
        #expect(try SeccompTraps.mode(configured: .off, environment: [:]) == .off)
        #expect(throws: ECIError.self) { try SeccompTraps.mode(configured: .required, environment: ["ECI_ECID": "maybe"]) }

        let state = "/tmp/eci-seccomp-config-\(getpid())"
        defer { try? FileSystem.removeTree(state) }
        try FileSystem.makeDirectories(state, mode: 0o755)
        let file = state + "/runtime.json"
        try FileSystem.writeAtomically(file, Array(#"{"ecid":"required"}"#.utf8), mode: 0o644)
        let config = try RuntimeConfiguration.load(path: file, environment: ["ECI_ECID": "off"])
        #expect(config.ecidMode == .required)
        // No socket: the create is refused whatever the environment says.
        var spec = try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"namespaces":[]}}"#.utf8))
        #expect(throws: ECIError.self) {
            try SeccompTraps.apply(to: &spec, stateDirectory: state, configured: config.ecidMode, environment: ["ECI_ECID": "off"])
        }
        // The VM image's file says so.
        let image = try RuntimeConfiguration.load(path: TestSupport.repositoryRoot + "/image/files/runtime.json", environment: ["ECI_ECID": "off"])
        #expect(image.ecidMode == .required)
        try FileSystem.writeAtomically(file, Array(#"{"ecid":"always"}"#.utf8), mode: 0o644)
        #expect(throws: ECIError.self) { try RuntimeConfiguration.load(path: file, environment: [:]) }
    }
}

/// eci-runc's exec gate for a container whose staged spec grants eci-init capabilities: runc
/// (Go's encoding/json) fills in an exec's capabilities from that spec when the exec's process
/// names none, matching keys whatever their case, the last match winning.
@Suite struct ExecCapabilitiesGateTests {
    @Test func onlyOneExactCapabilitiesObjectCounts() throws {
        func names(_ text: String) throws -> Bool { IsolatedRuntime.namesItsCapabilities(try JSONValue.parse(text)) }
        #expect(try names(#"{"args":["id"],"capabilities":{"bounding":[]}}"#))
        #expect(try names(#"{"args":["id"],"capabilities":{}}"#))
        #expect(try !names(#"{"args":["id"]}"#))
        #expect(try !names(#"{"capabilities":null}"#))
        #expect(try !names(#"{"capabilities":"CAP_SYS_ADMIN"}"#))
        // Found by an attack round: a folded spelling after the real one wins in Go.
        #expect(try !names(#"{"capabilities":{},"Capabilities":null}"#))
        #expect(try !names(#"{"capabilities":{},"CAPABILITIES":null}"#))
        #expect(try !names("{\"capabilities\":{},\"capabilitie\u{17F}\":null}"))
        #expect(try !names(#"{"Capabilities":{}}"#), "runc would read it, but only the exact spelling is let through")
        // An exact duplicate is refused by the parser (so the exec is refused too).
        #expect(throws: (any Error).self) { try names(#"{"capabilities":{},"capabilities":null}"#) }
        #expect(try !names("[]"))
        #expect(GoFieldNames.matches("\u{212A}ey", field: "key"))
        #expect(!GoFieldNames.matches("capabilities2", field: "capabilities"))
    }
}
