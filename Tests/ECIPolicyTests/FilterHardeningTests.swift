import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

/// The filter's answers to the ways past it a security review found: `..` after a missing path,
/// VM system directories through idmapped binds, symlinks swapped after create (docker cp and
/// the container socket), device rules, retagging races, BuildKit and link-name routes.
struct FilterHardeningTests {
    /// A VM where `/srv/link` is a symlink to `/etc` and missing components stay as given
    /// (what realpath-then-append would do without cleaning).
    static let lookups = EngineAPIPolicy.Lookups(
        resolve: { path in
            if path.hasPrefix("/srv/link") { return ["/etc" + path.dropFirst("/srv/link".count)] }
            return [path.hasPrefix("/var/run/") ? String(path.dropFirst(4)) : path]
        },
        image: { $0 == "admitted:1" ? ImageFacts(id: "sha256:" + String(repeating: "a", count: 64), repoTags: ["admitted:1"]) : nil },
        candidateBases: { [] },
        container: { name in
            switch name {
            case "tricked": return .init(imageID: "", mountSources: ["/srv/link/eci", "/var/lib/docker/volumes/v/_data"])
            case "fine": return .init(imageID: "admitted:1", mountSources: ["/srv/data", "/var/lib/docker/volumes/v/_data", "/run/eci-api/docker.sock"])
            case "was-admitted": return .init(imageID: "sha256:" + String(repeating: "b", count: 64), mountSources: ["/run/eci-api/docker.sock"])
            case "plain": return .init(imageID: "", mountSources: ["/srv/data"])
            default: return nil
            }
        })

    var vmPolicy: RestrictedMountPolicy {
        var policy = RestrictedMountPolicy.defaults
        policy.allowedBindRoots = ["/srv", "/home"]
        policy.exactSources = ["/run/eci-api/docker.sock"]
        return policy
    }

    func policy(_ origin: EngineAPIPolicy.Origin = .user) -> EngineAPIPolicy {
        let entry = ImageReference("admitted@sha256:" + String(repeating: "a", count: 64))
        let settings = AdminSettings(socketMountImages: entry.map { [$0] } ?? [], socketMountAnyImage: false, allowDerivedImages: false, commandList: CommandList(type: .deny, patterns: ["exec"]))
        return EngineAPIPolicy(origin: origin, settings: settings, restricted: vmPolicy)
    }

    func decide(_ method: String, _ path: String, _ body: String? = nil, contentType: String? = nil, origin: EngineAPIPolicy.Origin = .user) -> EngineAPIPolicy.Decision {
        policy(origin).decide(method: method, path: path, query: [], body: body.map { Array($0.utf8) }, contentType: contentType, lookups: Self.lookups)
    }

    func refused(_ decision: EngineAPIPolicy.Decision) -> String? {
        if case let .refuse(_, message) = decision { return message }
        return nil
    }

    func create(_ hostConfig: String, image: String = "plain") -> EngineAPIPolicy.Decision {
        decide("POST", "/containers/create", #"{"Image":"\#(image)","HostConfig":\#(hostConfig)}"#)
    }

    @Test func pathsAreCleanedAsTheEngineCleansThem() {
        #expect(lexicallyClean("/nonexistent/..") == "/")
        #expect(lexicallyClean("/x/../run/eci-api/docker.sock") == "/run/eci-api/docker.sock")
        #expect(lexicallyClean("//srv/./data//") == "/srv/data")
        #expect(lexicallyClean("/..") == "/")
        #expect(lexicallyClean("a/../..") == "..")
        #expect(refused(create(#"{"Binds":["/nonexistent/..:/host"]}"#))?.contains("restricted host mount") == true)
        #expect(refused(create(#"{"Binds":["/srv/missing/../../etc/eci:/x"]}"#))?.contains("restricted host mount") == true)
        #expect(refused(create(#"{"Mounts":[{"Type":"bind","Source":"/srv/x/../../var/lib/docker","Target":"/x"}]}"#)) != nil)
        // The socket through `..` is a socket mount, judged by image, not a way around it.
        #expect(refused(create(#"{"Binds":["/tmp/nx/../../run/eci-api/docker.sock:/s"]}"#))?.contains("docker socket mount denied") == true)
        // What is forwarded is the cleaned path the filter checked.
        if case let .forward(body?) = create(#"{"Binds":["/srv/a/../data/:/d:ro"]}"#) {
            #expect(body["HostConfig"]?["Binds"]?.arrayValue?.first?.stringValue == "/srv/data:/d:ro")
        } else {
            Issue.record("an allowed bind was refused")
        }
    }

    @Test func bindsComeOnlyFromAllowedRootsInTheVM() throws {
        for source in ["/usr/local/bin", "/etc/systemd/system", "/root/.ssh", "/etc/passwd", "/run/cdi", "/srv/link/eci"] {
            #expect(refused(create(#"{"Binds":["\#(source):/x"]}"#))?.contains("restricted host mount") == true, "\(source)")
        }
        for source in ["/srv/data", "/home/user/src"] {
            #expect(refused(create(#"{"Binds":["\#(source):/x"]}"#)) == nil, "\(source)")
        }
        // The runtime's side: named volumes, the container's own engine files and docker-init stay
        // allowed; the container socket only when named literally.
        let runtime = vmPolicy
        let check = { (source: String, names: [String]) throws in
            try runtime.check(source: source, names: names, restricted: runtime.restrictedPaths, containerID: "c1")
        }
        try check("/var/lib/docker/volumes/v/_data", ["/var/lib/docker/volumes/v/_data"])
        try check("/var/lib/docker/containers/c1/hosts", ["/var/lib/docker/containers/c1/hosts"])
        // The engine's helper only where the engine binds it (`--init`), and only for the runtime.
        try runtime.check(source: "/usr/bin/docker-init", names: ["/usr/bin/tini"], restricted: runtime.restrictedPaths, containerID: "c1", destination: "/sbin/docker-init")
        #expect(throws: ECIError.self) { try runtime.check(source: "/usr/bin/docker-init", names: ["/usr/bin/tini"], restricted: runtime.restrictedPaths, containerID: "c1", destination: "/x") }
        #expect(throws: ECIError.self) { try check("/usr/bin/docker-init", ["/usr/bin/tini"]) }
        #expect(throws: ECIError.self) {
            try runtime.check(source: "/usr/libexec/docker/docker-init", names: ["/usr/libexec/docker/docker-init"], restricted: runtime.restrictedPaths, containerID: "c1", destination: "/x")
        }
        for bind in ["/usr/bin/docker-init:/x", "/usr/bin/docker-init:/sbin/docker-init:ro", "/usr/libexec/docker/docker-init:/sbin/docker-init"] {
            #expect(refused(create(#"{"Binds":["\#(bind)"]}"#))?.contains("restricted host mount") == true, "the filter never excepts the helper: \(bind)")
        }
        #expect(refused(create(#"{"Mounts":[{"Type":"bind","Source":"/usr/bin/docker-init","Target":"/sbin/docker-init","ReadOnly":true}]}"#)) != nil)
        #expect(throws: ECIError.self) { try check("/srv/x", ["/usr/bin/tini-static"]) }
        try check("/run/eci-api/docker.sock", ["/run/eci-api/docker.sock"])
        #expect(throws: ECIError.self) { try check("/srv/sock", ["/run/eci-api/docker.sock"]) }
        #expect(throws: ECIError.self) { try check("/run/eci-api", ["/run/eci-api"]) }
        #expect(throws: ECIError.self) { try check("/usr/local/bin", ["/usr/local/bin"]) }
        let parsed = try RestrictedMountPolicy.parse(
            Array(#"{"restrictedPaths":["/etc/docker"],"engineDataRoot":"/var/lib/docker","allowedBindRoots":["/srv/"],"exactSources":["/run/eci-api/docker.sock"]}"#.utf8), source: "p")
        #expect(parsed.allowedBindRoots == ["/srv"] && parsed.exactSources == ["/run/eci-api/docker.sock"])
        #expect(throws: ECIError.self) { try RestrictedMountPolicy.parse(Array(#"{"restrictedPaths":[],"engineDataRoot":"/d","allowedBindRoots":["/"]}"#.utf8), source: "p") }
    }

    @Test func docker_cpRechecksTheContainersBindSources() {
        #expect(refused(decide("PUT", "/v1.45/containers/tricked/archive?path=/x"))?.contains("restricted host mount") == true)
        #expect(refused(decide("GET", "/containers/tricked/archive?path=/x"))?.contains("restricted host mount") == true)
        #expect(refused(decide("HEAD", "/containers/fine/archive?path=/x")) == nil)
        #expect(refused(decide("PUT", "/containers/web/db/archive?path=/x")) != nil)
        #expect(refused(decide("GET", "/containers/unknown/archive?path=/x")) == nil)
    }

    @Test func fieldsThatReachPastTheContainerAreRefused() {
        #expect(refused(create(#"{"DeviceCgroupRules":["b *:* rwm"]}"#))?.contains("device cgroup rules") == true)
        #expect(refused(create(#"{"CgroupParent":"/system.slice"}"#)) != nil)
        #expect(refused(create(#"{"OomScoreAdj":-1000}"#)) != nil)
        #expect(refused(create(#"{"OomScoreAdj":500,"DeviceCgroupRules":[],"CgroupParent":""}"#)) == nil)
        #expect(refused(create(#"{"VolumeDriver":"evil-plugin"}"#)) != nil)
        #expect(refused(decide("POST", "/containers/x/checkpoints", "{}")) != nil)
        #expect(refused(decide("POST", "/build", nil, contentType: "multipart/form-data; boundary=x")) != nil)
    }

    @Test func anAdmittedImageIsPinnedByID() {
        guard case let .forward(body?) = create(#"{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}"#, image: "admitted:1") else {
            Issue.record("the admitted image was refused")
            return
        }
        #expect(body["Image"]?.stringValue == "sha256:" + String(repeating: "a", count: 64))
        #expect(body["HostConfig"]?["Binds"]?.arrayValue?.first?.stringValue == "/run/eci-api/docker.sock:/var/run/docker.sock")
    }

    @Test func aSocketMountIsAdmittedAgainAtEachStart() {
        // "fine" runs the admitted image; "was-admitted" an image the settings no longer admit.
        #expect(refused(decide("POST", "/v1.45/containers/fine/start")) == nil)
        #expect(refused(decide("POST", "/containers/was-admitted/start"))?.contains("docker socket mount denied") == true)
        #expect(refused(decide("POST", "/containers/was-admitted/restart"))?.contains("docker socket mount denied") == true)
        #expect(refused(decide("POST", "/containers/plain/start")) == nil)
        #expect(refused(decide("POST", "/containers/unknown/start")) == nil)
    }

    @Test func commandNamesCoverLinkNamesAndBuildKit() {
        #expect(CommandList.commandNames(method: "POST", path: "/v1.43/containers/web/db/exec") == ["exec", "container exec"])
        #expect(CommandList.commandNames(method: "POST", path: "/grpc") == ["build", "builder build", "buildx build"])
        #expect(CommandList.commandNames(method: "POST", path: "/session") == ["build", "builder build", "buildx build"])
        #expect(refused(decide("POST", "/containers/web/db/exec", origin: .container))?.contains("is blocked") == true)
    }

    @Test func everyContainersDeviceCgroupIsECIs() throws {
        var spec = try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","access":"rwm"}]}}}"#.utf8))
        try DevicePolicy.apply(to: &spec)
        let rules = spec.document["linux"]?["resources"]?["devices"]?.arrayValue ?? []
        #expect(rules.first == .object([("allow", .bool(false)), ("access", .string("rwm"))]))
        #expect(!rules.contains { $0["type"]?.stringValue == "b" && $0["allow"]?.boolValue == true }, "no block device is ever allowed")
    }
}
