import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

@Suite struct NamespacePolicyTests {
    let own: [OCISpec.Namespace] = ["pid", "network", "ipc", "uts", "mount"].map { OCISpec.Namespace(type: $0) }

    func refusal(_ namespaces: [OCISpec.Namespace], vm: Set<String> = []) -> String? {
        do {
            try NamespacePolicy.check(namespaces) { vm.contains($0.path ?? "") }
            return nil
        } catch let error as ECIError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func ownNamespacesPass() {
        #expect(refusal(own) == nil)
    }

    @Test func hostPidIsRefusedInECIsWords() {
        let message = refusal(own.filter { $0.type != "pid" })
        #expect(message == "containers can't share namespaces [pid] with the host (because they use the linux user-namespace for isolation)")
    }

    @Test func hostNetworkIsRefusedInECIsWords() {
        let message = refusal(own.filter { $0.type != "network" })
        #expect(message == "containers can't share a network namespace with the host (because they use the linux user-namespace for isolation)")
    }

    @Test func everySharedNamespaceIsNamed() {
        let message = refusal(own.filter { $0.type != "ipc" && $0.type != "uts" })
        #expect(message?.contains("[ipc uts]") == true)
    }

    @Test func joiningTheVMsNamespaceByPathIsRefused() {
        var spec = own
        spec[1] = OCISpec.Namespace(type: "network", path: "/proc/1/ns/net")
        #expect(refusal(spec, vm: ["/proc/1/ns/net"]) != nil)
        spec.append(OCISpec.Namespace(type: "cgroup", path: "/proc/1/ns/cgroup"))
        #expect(refusal(spec, vm: ["/proc/1/ns/cgroup"]) != nil)
    }

    @Test func joiningAnotherContainersNamespaceIsAllowed() {
        var spec = own
        spec[1] = OCISpec.Namespace(type: "network", path: "/var/run/docker/netns/abc")
        #expect(refusal(spec, vm: ["/proc/1/ns/net"]) == nil)
    }
}

@Suite struct RestrictedMountPolicyTests {
    let policy = RestrictedMountPolicy.defaults
    let restricted = RestrictedMountPolicy.defaults.restrictedPaths + ["/run/docker.sock"]

    func refuses(_ names: [String], id: String = "abc") -> Bool {
        do {
            try policy.check(source: names[0], names: names, restricted: restricted, containerID: id)
            return false
        } catch let error as ECIError {
            #expect(error.message == "can't mount \(names[0]) because it's configured as a restricted host mount")
            return true
        } catch {
            return true
        }
    }

    @Test(arguments: [
        "/etc/docker/daemon.json", "/etc/docker", "/var/lib/docker", "/var/lib/docker/overlay2/x/diff", "/run/docker.sock",
        "/var/lib/docker/containers/other/hosts", "/var/lib/docker/containers/abc", "/var/lib/docker/volumes",
        "/var/lib/docker/volumes/v", "/var/lib/docker/volumes/v/other", "/var/lib/containerd", "/run/containerd/s.sock", "/run/eci",
        "/etc/eci/policy.json", "/usr/bin/eci-runc", "/boot", "/lib/modules/6.12", "/proc", "/proc/1/root", "/sys/kernel", "/dev/vda",
        "/", "/var", "/var/lib", "/run", "/etc", "/usr/bin", "/lib",
    ])
    func restrictedPathsAndTheirParentsAreRefused(_ path: String) {
        #expect(refuses([path]))
    }

    @Test(arguments: [
        "/home/user/src", "/tmp/data", "/srv", "/var/lib/docker/containers/abc/hosts", "/var/lib/docker/containers/abc/resolv.conf",
        "/var/lib/docker/containers/abc/hostname", "/var/lib/docker/containers/abc/mounts/shm", "/var/lib/docker/volumes/v/_data",
        "/var/lib/docker/volumes/v/_data/sub/dir", "/var/lib/dockerx", "/devices", "/etc/hosts",
    ])
    func otherPathsStayMountable(_ path: String) {
        #expect(!refuses([path]))
    }

    @Test func anyAliasRefusesTheMount() {
        // A volume whose data dir is a bind of /etc/docker: its own path is fine, its alias is not.
        #expect(refuses(["/var/lib/docker/volumes/v/_data", "/etc/docker"]))
    }

    @Test func policyFilesAreStrict() throws {
        let good = try RestrictedMountPolicy.parse(Array(#"{"restrictedPaths":["/a"],"engineDataRoot":"/d"}"#.utf8), source: "p")
        #expect(good.restrictedPaths == ["/a", "/d"] && good.engineDataRoot == "/d")
        for bad in [#"{"restrictedPaths":["a"],"engineDataRoot":"/d"}"#, #"{"restrictedPaths":[],"engineDataRoot":"/d","x":1}"#, #"{"engineDataRoot":"/d"}"#, "[]"] {
            #expect(throws: ECIError.self) { try RestrictedMountPolicy.parse(Array(bad.utf8), source: "p") }
        }
    }
}

@Suite struct DeviceAndProcfsPolicyTests {
    func spec(_ linux: String) throws -> OCISpec {
        try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","linux":\#(linux)}"#.utf8))
    }

    @Test func vmDevicesAreRefused() throws {
        var s = try spec(#"{"devices":[{"path":"/dev/vda","type":"b","major":254,"minor":0}]}"#)
        #expect(throws: ECIError.self) { try DevicePolicy.apply(to: &s) }
    }

    @Test func fuseIsAllowed() throws {
        var s = try spec(#"{"devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229}]}"#)
        try DevicePolicy.apply(to: &s)
        #expect(s.document["linux"]?["devices"]?.arrayValue?.count == 1)
    }

    @Test func privilegedDeviceListIsCutDown() throws {
        var s = try spec(#"""
            {"devices":[{"path":"/dev/vda","type":"b","major":254,"minor":0},{"path":"/dev/null","type":"c","major":1,"minor":3},
                        {"path":"/dev/mem","type":"c","major":1,"minor":1}],
             "resources":{"devices":[{"allow":true,"access":"rwm"}],"memory":{"limit":5}}}
            """#)
        #expect(DevicePolicy.allowsAllDevices(s))
        try DevicePolicy.apply(to: &s)
        let paths = s.document["linux"]?["devices"]?.arrayValue?.compactMap { $0["path"]?.stringValue }
        #expect(paths == ["/dev/null"])
        let rules = s.document["linux"]?["resources"]?["devices"]?.arrayValue ?? []
        #expect(rules.first?["allow"] == .bool(false))
        #expect(!DevicePolicy.allowsAllDevices(s))
        #expect(s.document["linux"]?["resources"]?["memory"]?["limit"] == .number("5"))
    }

    @Test func masksAreRestoredForPrivilegedContainers() throws {
        var s = try spec(#"{"maskedPaths":[],"readonlyPaths":[]}"#)
        ProcfsPolicy.apply(to: &s)
        let masked = s.document["linux"]?["maskedPaths"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let readonly = s.document["linux"]?["readonlyPaths"]?.arrayValue?.compactMap(\.stringValue) ?? []
        for path in ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"] {
            #expect(masked.contains(path))
        }
        for path in ["/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"] { #expect(readonly.contains(path)) }
        #expect(!readonly.contains("/proc/sys"))
    }

    @Test func existingMasksAreKept() throws {
        var s = try spec(#"{"maskedPaths":["/proc/custom"],"readonlyPaths":["/proc/sys"]}"#)
        ProcfsPolicy.apply(to: &s)
        #expect(s.document["linux"]?["maskedPaths"]?.arrayValue?.first == .string("/proc/custom"))
        #expect(s.document["linux"]?["readonlyPaths"]?.arrayValue?.contains(.string("/proc/sys")) == true)
    }
}
