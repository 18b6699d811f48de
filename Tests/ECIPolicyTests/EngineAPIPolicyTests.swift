import ECIOCI
import Testing

@testable import ECIPolicy

/// Every rule of the engine API filter, both ways, with a fake VM (paths and images).
struct EngineAPIPolicyTests {
    static let cliID = "sha256:" + String(repeating: "1", count: 64)
    static let images: [String: ImageFacts] = [
        "docker:cli": ImageFacts(id: cliID, repoTags: ["docker:cli"], repoDigests: ["docker@sha256:" + String(repeating: "2", count: 64)], layers: ["a"]),
        "busybox": ImageFacts(id: "sha256:" + String(repeating: "3", count: 64), repoTags: ["busybox:latest"], layers: ["b"]),
    ]
    /// The VM's symlinks: /var/run is /run, /data/link points at /etc/docker.
    static let lookups = EngineAPIPolicy.Lookups(
        resolve: { path in
            var resolved = path.hasPrefix("/var/run/") ? String(path.dropFirst(4)) : path
            if resolved.hasPrefix("/data/link") { resolved = "/etc/docker" + resolved.dropFirst("/data/link".count) }
            return [resolved]
        },
        image: { images[$0] },
        candidateBases: { Array(images.values) },
        container: { containers[$0].map { EngineAPIPolicy.ContainerFacts(imageID: "", mountSources: $0) } })
    /// Existing containers' mount sources: one mounts the (container-facing) socket.
    static let containers: [String: [String]] = ["with-socket": ["/run/eci-api/docker.sock", "/srv/data"], "plain": ["/srv/data"]]

    func policy(_ origin: EngineAPIPolicy.Origin = .user, images: [String] = ["docker:cli"], commands: CommandList = CommandList(type: .deny, patterns: [])) -> EngineAPIPolicy {
        let settings = AdminSettings(socketMountImages: images.compactMap(ImageReference.init), socketMountAnyImage: false, allowDerivedImages: true, commandList: commands)
        return EngineAPIPolicy(origin: origin, settings: settings, restricted: .defaults)
    }

    func create(_ json: String, _ policy: EngineAPIPolicy? = nil) -> EngineAPIPolicy.Decision {
        (policy ?? self.policy()).decide(method: "POST", path: "/v1.45/containers/create?name=x", query: [("name", "x")], body: Array(json.utf8), lookups: Self.lookups)
    }

    func refusal(_ decision: EngineAPIPolicy.Decision) -> String? {
        if case let .refuse(_, message) = decision { return message }
        return nil
    }

    func forwarded(_ decision: EngineAPIPolicy.Decision) -> JSONValue? {
        if case let .forward(body) = decision { return body ?? .null }
        return nil
    }

    @Test func theRuntimeIsForcedWhateverTheRequestSays() throws {
        for json in [#"{"Image":"busybox"}"#, #"{"Image":"busybox","HostConfig":{"Runtime":"runc"}}"#, #"{"Image":"busybox","hostconfig":{"runtime":"runc"}}"#] {
            let body = try #require(forwarded(create(json)))
            let hosts = body.objectKeys.filter { FoldedObject.fold($0) == "hostconfig" }
            #expect(hosts.count == 1)
            #expect(body[hosts[0]]?["Runtime"]?.stringValue == "eci")
            #expect(body[hosts[0]]?.objectKeys.filter { FoldedObject.fold($0) == "runtime" }.count == 1)
        }
    }

    @Test func hostNamespacesAreRefusedOwnOnesPass() {
        for (field, word) in [("PidMode", "pid"), ("IpcMode", "ipc"), ("UTSMode", "uts"), ("CgroupnsMode", "cgroup")] {
            let message = refusal(create(#"{"Image":"busybox","HostConfig":{"\#(field)":"host"}}"#))
            #expect(message?.contains("can't share namespaces [\(word)] with the host") == true, "\(field)")
        }
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}"#))?.contains("can't share a network namespace with the host") == true)
        // Go matches keys case-insensitively, with ſ for s and K (Kelvin) for k.
        #expect(refusal(create(#"{"Image":"busybox","hostConfig":{"pidmode":"host"}}"#)) != nil)
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"NetworkMode":"bridge","networkmode":"host"}}"#))?.contains("more than once") == true)
        #expect(refusal(create("{\"Image\":\"busybox\",\"HostConfig\":{\"IpcMode\":\"host\",\"UTSMode\":\"host\"}}")) != nil)
        for mode in ["bridge", "none", "container:abc", "private", ""] {
            #expect(forwarded(create(#"{"Image":"busybox","HostConfig":{"NetworkMode":"\#(mode)","PidMode":"\#(mode)"}}"#)) != nil, "\(mode)")
        }
    }

    @Test func foldedKeysIncludeGosUnicodeFolds() {
        #expect(FoldedObject.fold("Bind\u{17F}") == "binds")
        #expect(FoldedObject.fold("\u{212A}ind") == "kind")
        #expect(refusal(create("{\"Image\":\"busybox\",\"HostConfig\":{\"Bind\u{17F}\":[\"/etc/docker:/x\"]}}")) != nil)
    }

    @Test func restrictedBindsAreRefusedInBindsAndMounts() {
        for source in ["/etc/docker/daemon.json", "/var/lib/docker", "/data/link/daemon.json", "/run", "/", "/run/eci/engine/docker.sock", "/proc/sys", "/dev/vda"] {
            #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"Binds":["\#(source):/mnt:ro"]}}"#))?.contains("restricted host mount") == true, "\(source)")
            #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"\#(source)","Target":"/mnt"}]}}"#))?.contains("restricted host mount") == true, "\(source)")
        }
        for source in ["/home/user/src", "/srv/data"] {
            let body = forwarded(create(#"{"Image":"busybox","HostConfig":{"Binds":["\#(source):/mnt"],"Mounts":[{"Type":"bind","Source":"\#(source)","Target":"/m"}]}}"#))
            #expect(body?["HostConfig"]?["Binds"]?.arrayValue?.first?.stringValue == "\(source):/mnt")
        }
        // Named and anonymous volumes in Binds pass (their options were vetted at creation).
        #expect(forwarded(create(#"{"Image":"busybox","HostConfig":{"Binds":["vol:/data","/anon"]}}"#)) != nil)
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/y"}]}}"#)) != nil)
        #expect(forwarded(create(#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/t"}]}}"#)) != nil)
    }

    @Test func volumeOptionsAreVettedAtCreateAndInMounts() {
        func volume(_ opts: String, driver: String = "local") -> EngineAPIPolicy.Decision {
            policy().decide(method: "POST", path: "/volumes/create", query: [], body: Array(#"{"Name":"v","Driver":"\#(driver)","DriverOpts":{\#(opts)}}"#.utf8), lookups: Self.lookups)
        }
        #expect(refusal(volume(#""type":"none","o":"bind","device":"/etc/docker""#))?.contains("restricted host mount") == true)
        #expect(refusal(volume(#""type":"none","o":"bind","device":"/var/run/docker.sock""#))?.contains("restricted host mount") == true)
        #expect(refusal(volume(#""type":"ext4","device":"/dev/vda1""#)) != nil)
        #expect(refusal(volume(#""type":"overlay","o":"lowerdir=/etc/docker,upperdir=/tmp/u,workdir=/tmp/w","device":"overlay""#)) != nil)
        #expect(refusal(volume(#""o":"bind","device":"relative""#)) != nil)
        #expect(refusal(volume("", driver: "someplugin")) != nil)
        #expect(forwarded(volume(#""type":"none","o":"bind","device":"/srv/shared""#)) != nil)
        #expect(forwarded(volume(#""type":"tmpfs","device":"tmpfs","o":"size=10m""#)) != nil)
        #expect(forwarded(volume("")) != nil)
        let mount = #"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/var/lib/docker"}}}}]}}"#
        #expect(refusal(create(mount))?.contains("restricted host mount") == true)
    }

    @Test func socketMountsOnlyForAdmittedImagesAndPointedAtTheContainerSocket() throws {
        let denied = refusal(create(#"{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}"#))
        #expect(denied == "enhanced container isolation: docker socket mount denied for container with image \"docker.io/library/busybox\"; image is not in the allowed list; if you wish to allow it, configure the docker socket image list in the admin settings")
        // HostConfig.Mounts too (CVE-2026-6406 looked only at Binds).
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/run/docker.sock","Target":"/s"}]}}"#))?.contains("docker socket mount denied") == true)
        let binds = try #require(forwarded(create(#"{"Image":"docker:cli","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock:ro"]}}"#)))
        #expect(binds["HostConfig"]?["Binds"]?.arrayValue?.first?.stringValue == "/run/eci-api/docker.sock:/var/run/docker.sock:ro")
        let mounts = try #require(forwarded(create(#"{"Image":"docker:cli","HostConfig":{"Mounts":[{"Type":"bind","Source":"/run/docker.sock","Target":"/s"}]}}"#)))
        #expect(mounts["HostConfig"]?["Mounts"]?.arrayValue?.first?["Source"]?.stringValue == "/run/eci-api/docker.sock")
        // The raw engine socket is never mountable, admitted image or not.
        #expect(refusal(create(#"{"Image":"docker:cli","HostConfig":{"Binds":["/run/eci/engine/docker.sock:/s"]}}"#))?.contains("restricted host mount") == true)
        // An image the engine does not have is refused (nothing to vet).
        #expect(refusal(create(#"{"Image":"docker:dind","HostConfig":{"Binds":["/run/docker.sock:/s"]}}"#)) != nil)
        // "*" admits every image.
        var any = policy(images: [])
        any.settings.socketMountAnyImage = true
        #expect(forwarded(create(#"{"Image":"busybox","HostConfig":{"Binds":["/run/docker.sock:/s"]}}"#, any)) != nil)
    }

    @Test func volumesFromASocketMountingContainerNeedsAnAdmittedImage() throws {
        // --volumes-from hands the socket on: the allow-list applies to the new container's image.
        let denied = refusal(create(#"{"Image":"busybox","HostConfig":{"VolumesFrom":["with-socket:ro"]}}"#))
        #expect(denied?.contains("docker socket mount denied for container with image \"docker.io/library/busybox\"") == true, "\(denied ?? "forwarded")")
        #expect(refusal(create(#"{"Image":"busybox","hostconfig":{"volumesfrom":["plain","with-socket"]}}"#))?.contains("docker socket mount denied") == true)
        #expect(forwarded(create(#"{"Image":"docker:cli","HostConfig":{"VolumesFrom":["with-socket"]}}"#)) != nil)
        #expect(forwarded(create(#"{"Image":"busybox","HostConfig":{"VolumesFrom":["plain:rw"]}}"#)) != nil)
        // A container the engine can't show is refused (no lookup: fail closed).
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"VolumesFrom":["missing"]}}"#))?.contains("no such container") == true)
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"VolumesFrom":[1]}}"#)) != nil)
        let noLookup = EngineAPIPolicy.Lookups(resolve: { [$0] }, image: { Self.images[$0] }, candidateBases: { [] })
        let decision = policy().decide(
            method: "POST", path: "/containers/create", query: [], body: Array(#"{"Image":"busybox","HostConfig":{"VolumesFrom":["plain"]}}"#.utf8), lookups: noLookup)
        #expect(refusal(decision) != nil, "the default lookup knows no container")
    }

    @Test func commandListAppliesToContainersOnly() {
        let deny = CommandList(type: .deny, patterns: ["push", "image*"])
        let push = "/v1.43/images/myimage/push?tag=latest"
        let fromContainer = policy(.container, commands: deny).decide(method: "POST", path: push, query: [], body: nil, lookups: Self.lookups)
        #expect(refusal(fromContainer) == "enhanced container isolation: docker command \"\(push)\" is blocked; if you wish to allow it, configure the docker socket command list in the admin settings")
        #expect(forwarded(policy(.user, commands: deny).decide(method: "POST", path: push, query: [], body: nil, lookups: Self.lookups)) != nil)
        #expect(forwarded(policy(.container, commands: deny).decide(method: "GET", path: "/v1.43/containers/json", query: [], body: nil, lookups: Self.lookups)) != nil)
        let allowPs = policy(.container, commands: CommandList(type: .allow, patterns: ["ps"]))
        #expect(forwarded(allowPs.decide(method: "GET", path: "/containers/json", query: [], body: nil, lookups: Self.lookups)) != nil)
        #expect(refusal(allowPs.decide(method: "POST", path: "/containers/create", query: [], body: Array("{}".utf8), lookups: Self.lookups)) != nil)
        // Containers created through the container socket get every other rule too.
        #expect(refusal(create(#"{"Image":"busybox","HostConfig":{"PidMode":"host"}}"#, policy(.container))) != nil)
    }

    @Test func buildsWithHostNetworkPluginsAndSwarmAreRefused() {
        let p = policy()
        #expect(refusal(p.decide(method: "POST", path: "/v1.43/build", query: [("t", "x"), ("networkmode", "host")], body: nil, lookups: Self.lookups))?.contains("--network=host") == true)
        #expect(forwarded(p.decide(method: "POST", path: "/v1.43/build", query: [("networkmode", "default")], body: nil, lookups: Self.lookups)) != nil)
        #expect(refusal(p.decide(method: "POST", path: "/build", query: [], body: nil, contentType: "Application/X-WWW-Form-URLEncoded; charset=utf-8", lookups: Self.lookups)) != nil)
        #expect(forwarded(p.decide(method: "POST", path: "/build", query: [], body: nil, contentType: "application/x-tar", lookups: Self.lookups)) != nil)
        #expect(refusal(p.decide(method: "POST", path: "/plugins/pull", query: [("remote", "x")], body: nil, lookups: Self.lookups)) != nil)
        #expect(forwarded(p.decide(method: "GET", path: "/plugins", query: [], body: nil, lookups: Self.lookups)) != nil)
        #expect(refusal(p.decide(method: "POST", path: "/swarm/init", query: [], body: nil, lookups: Self.lookups)) != nil)
        #expect(refusal(p.decide(method: "POST", path: "/containers/abc/start", query: [], body: Array(#"{"Binds":["/etc:/x"]}"#.utf8), lookups: Self.lookups)) != nil)
        #expect(forwarded(p.decide(method: "POST", path: "/containers/abc/start", query: [], body: Array(" {} ".utf8), lookups: Self.lookups)) != nil)
        #expect(forwarded(p.decide(method: "POST", path: "/containers/abc/start", query: [], body: nil, lookups: Self.lookups)) != nil)
    }

    @Test func versionPrefixesAreStrippedOnlyWhenTheyAreVersions() {
        #expect(Route.unversioned("/v1.43/volumes/create?x=1") == "/volumes/create")
        #expect(Route.unversioned("/volumes/create") == "/volumes/create")
        #expect(Route.unversioned("/v1/info") == "/info")
        #expect(Route.unversioned("/vx/info") == "/vx/info")
        #expect(Route.unversioned("/v1.43") == "/v1.43")
        #expect(CommandList.commandNames(method: "POST", path: "/volumes/create") == ["volume create"])
    }

    @Test func malformedBodiesAreRefusedNotForwarded() {
        for json in ["", "[]", "{", #"{"Image":1}"#, #"{"Image":"x","HostConfig":[]}"#, #"{"Image":"x","HostConfig":{"Binds":[1]}}"#, #"{"Image":"x","HostConfig":{"Mounts":[{"Type":"bind"}]}}"#] {
            guard case let .refuse(status, _) = create(json) else {
                Issue.record("forwarded \(json)")
                continue
            }
            #expect(status == 400 || status == 403)
        }
        #expect(EngineAPIPolicy.needsBody(method: "POST", path: "/v1.41/containers/create"))
        #expect(EngineAPIPolicy.needsBody(method: "post", path: "/volumes/create"))
        #expect(!EngineAPIPolicy.needsBody(method: "POST", path: "/build"))
    }
}

extension JSONValue {
    var objectKeys: [String] {
        guard case let .object(members) = self else { return [] }
        return members.map(\.key)
    }
}
