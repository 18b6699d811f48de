import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

/// Holes an attack review of the escape classes found in the filter, each next to the
/// legitimate neighbour that must keep working.
@Suite struct AttackReviewFilterTests {
    /// The VM's policy; `/var/lib/docker/volumes/v/_data/sub` and the container's upper dir
    /// `.../overlay2/abc/diff/link` are what a container may turn into symlinks at any time.
    static let vmPolicy: RestrictedMountPolicy = {
        var policy = RestrictedMountPolicy.defaults
        policy.allowedBindRoots = ["/srv", "/mnt", "/media", "/home"]
        return policy
    }()

    /// Today `link` (in a container's upper dir) points at `/srv/clean`; everything else is itself.
    static let lookups = EngineAPIPolicy.Lookups(
        resolve: { path in
            let link = "/var/lib/docker/overlay2/abc/diff/link"
            if path == link || path.hasPrefix(link + "/") { return ["/srv/clean" + path.dropFirst(link.count)] }
            return [path]
        },
        image: { _ in nil }, candidateBases: { [] },
        container: { name in
            name == "uses-volume" ? EngineAPIPolicy.ContainerFacts(imageID: "", mountSources: ["/var/lib/docker/volumes/v/_data", "/srv/app"]) : nil
        })

    func policy() -> EngineAPIPolicy {
        EngineAPIPolicy(
            origin: .user, settings: AdminSettings(socketMountImages: [], socketMountAnyImage: false, allowDerivedImages: false, commandList: CommandList(type: .deny, patterns: [])),
            restricted: Self.vmPolicy)
    }

    func decide(_ method: String, _ path: String, _ body: String?) -> EngineAPIPolicy.Decision {
        policy().decide(method: method, path: path, query: [], body: body.map { Array($0.utf8) }, lookups: Self.lookups)
    }

    func refused(_ decision: EngineAPIPolicy.Decision) -> Bool {
        if case .refuse = decision { return true }
        return false
    }

    /// A local volume whose `device` lies inside another named volume's data: the filter excepted
    /// it as "volume data", but the local driver mounts `device` by path as VM root, following
    /// whatever symlink a container put there since (volumes are not `nosymfollow`). The engine
    /// then populates the volume from the image (a write into any empty VM directory) and
    /// `docker cp` reads and writes through it, before eci-runc ever sees a spec.
    @Test func volumeDeviceInsideAnotherVolumeIsRefused() {
        for device in ["/var/lib/docker/volumes/v/_data/sub", "/var/lib/docker/volumes/v/_data/a/b"] {
            let body = #"{"Name":"evil","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"\#(device)"}}"#
            #expect(refused(decide("POST", "/v1.45/volumes/create", body)), "volume device \(device) inside a volume's data was forwarded")
            let mount = #"{"Image":"i","HostConfig":{"Mounts":[{"Type":"volume","Source":"evil","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"\#(device)"}}}}]}}"#
            #expect(refused(decide("POST", "/v1.45/containers/create", mount)), "--mount volume device \(device) was forwarded")
        }
        // The neighbour: a bind volume of an allowed root still passes.
        #expect(!refused(decide("POST", "/volumes/create", #"{"Name":"ok","DriverOpts":{"type":"none","o":"bind","device":"/srv/shared"}}"#)))
    }

    /// A bind source inside a named volume's data, named by path: the engine mounts that literal
    /// path itself for `docker cp` and `mkdir -p`s it at start, following planted symlinks.
    @Test func bindSourceInsideVolumeDataIsRefused() {
        let source = "/var/lib/docker/volumes/v/_data/sub"
        #expect(refused(decide("POST", "/containers/create", #"{"Image":"i","HostConfig":{"Binds":["\#(source):/x"]}}"#)))
        #expect(refused(decide("POST", "/containers/create", #"{"Image":"i","HostConfig":{"Mounts":[{"Type":"bind","Source":"\#(source)","Target":"/x","BindOptions":{"CreateMountpoint":true}}]}}"#)))
        // Neighbours: the volume by name; docker cp on a container that uses a named volume.
        #expect(!refused(decide("POST", "/containers/create", #"{"Image":"i","HostConfig":{"Binds":["v:/x","/srv/app:/app"]}}"#)))
        #expect(!refused(decide("PUT", "/containers/uses-volume/archive", nil)))
    }

    /// The filter judged only what a source resolves to today; the engine uses the literal path
    /// later. A literal path through a container's own upper dir (a symlink the container can
    /// re-point at will) is refused even when it resolves into an allowed root now.
    @Test func theLiteralPathIsJudgedNotOnlyWhatItResolvesToToday() {
        let literal = "/var/lib/docker/overlay2/abc/diff/link"
        #expect(refused(decide("POST", "/containers/create", #"{"Image":"i","HostConfig":{"Binds":["\#(literal)/data:/x"]}}"#)))
        #expect(refused(decide("POST", "/volumes/create", #"{"Name":"evil","DriverOpts":{"type":"none","o":"bind","device":"\#(literal)"}}"#)))
        #expect(!refused(decide("POST", "/containers/create", #"{"Image":"i","HostConfig":{"Binds":["/srv/clean/data:/x"]}}"#)))
    }
}

/// `HostConfig.Annotations` reach the OCI spec (API >= 1.43), and runc reads some of them as its
/// own configuration (its `features` call them potentially unsafe): `org.systemd.property.*`
/// become properties of the container's systemd scope (the VM's engine uses the systemd cgroup
/// driver on cgroup v2): `Conflicts=['docker.service']` stops the engine, `Wants=['poweroff.target']`
/// powers the VM off, `Wants=['modprobe@NAME.service']` loads any module; `org.criu.config` names
/// a file CRIU reads as VM root; `bundle` replaces the bundle path runc records.
@Suite struct RuncConfigAnnotationTests {
    func create(_ annotations: String) -> EngineAPIPolicy.Decision {
        let policy = EngineAPIPolicy(
            origin: .user, settings: AdminSettings(socketMountImages: [], socketMountAnyImage: false, allowDerivedImages: false, commandList: CommandList(type: .deny, patterns: [])),
            restricted: .defaults)
        return policy.decide(
            method: "POST", path: "/v1.45/containers/create", query: [], body: Array(#"{"Image":"i","HostConfig":{"Annotations":{\#(annotations)}}}"#.utf8),
            lookups: EngineAPIPolicy.Lookups(resolve: { [$0] }, image: { _ in nil }, candidateBases: { [] }))
    }

    @Test func theFilterRefusesAnnotationsRuncReadsAsConfiguration() {
        for key in ["org.systemd.property.Conflicts", "org.systemd.property.Wants", "ORG.systemd.Property.Slice", "org.criu.config", "bundle"] {
            if case .refuse = create(#""\#(key)":"['docker.service']""#) {} else { Issue.record("the annotation \(key) was forwarded") }
        }
        // The neighbour: an ordinary annotation passes.
        if case .refuse = create(#""com.example.team":"web""#) { Issue.record("an ordinary annotation was refused") }
    }

    @Test func theRuntimePolicyRefusesThemWhateverTheSpelling() {
        for key in ["org.systemd.property.Conflicts", "org.systemd.property.", "Org.Systemd.Property.Wants", "org.criu.config", "bundle"] {
            #expect(throws: ECIError.self, "\(key)") { try RuntimeAnnotationPolicy.check([key]) }
        }
        #expect(throws: Never.self) { try RuntimeAnnotationPolicy.check(["com.example.team", "org.opencontainers.image.title", "org.eci.socket-admission"]) }
    }
}

/// runc's systemd driver treats a cgroup name ending in ".slice" as the unit itself, placed by
/// systemd where its dashes say (`user-1000.slice` is `/user.slice/user-1000.slice`), not as a
/// scope in the parent slice: `system.slice:docker:user-1000.slice` leaves the engine's parent.
@Suite struct CgroupSliceNameTests {
    @Test func aSliceNameIsNotAContainerName() {
        for path in ["system.slice:docker:user-1000.slice", "system.slice:docker:-.slice", "system.slice:docker:x.SLICE"] {
            #expect(throws: ECIError.self, "\(path)") { try CgroupPathPolicy.check(path, parents: ["/docker", "system.slice:docker"]) }
        }
        #expect(throws: Never.self) { try CgroupPathPolicy.check("system.slice:docker:" + String(repeating: "a", count: 64), parents: ["system.slice:docker"]) }
    }
}
