import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

/// SHA-256 and HMAC-SHA-256 against the published vectors (NIST FIPS 180-4 examples, RFC 4231).
struct SHA256Tests {
    func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }

    @Test func nistExamples() {
        #expect(hexString(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hexString(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hexString(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        for _ in 0..<1000 { million.update([UInt8](repeating: 0x61, count: 1000)) }
        #expect(hexString(million.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Every split of a message across updates gives the same digest (block boundaries).
        let message = Array((0..<200).map { UInt8($0 & 0xff) })
        let whole = SHA256.hash(message)
        for split in [0, 1, 55, 56, 63, 64, 65, 128, 199] {
            var hasher = SHA256()
            hasher.update(message[..<split])
            hasher.update(message[split...])
            #expect(hasher.finalize() == whole, "split at \(split)")
        }
    }

    @Test func rfc4231Vectors() {
        let cases: [([UInt8], [UInt8], String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (Array(1...25), [UInt8](repeating: 0xcd, count: 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (
                [UInt8](repeating: 0xaa, count: 131),
                Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
            ),
        ]
        for (key, data, expected) in cases {
            #expect(hexString(hmacSHA256(key: key, message: data)) == expected)
        }
        // Test case 5: the MAC truncated to 128 bits.
        let truncated = hmacSHA256(key: [UInt8](repeating: 0x0c, count: 20), message: Array("Test With Truncation".utf8)).prefix(16)
        #expect(Array(truncated) == hex("a3b6167473100ee06e0c796c2955552b"))
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]) && !constantTimeEquals([1, 2, 3], [1, 2, 4]) && !constantTimeEquals([1], [1, 2]))
    }
}

/// The table of known engine routes and what the filter does with unknown ones, builds, updates,
/// network volumes and socket-admission stamps.
struct RoutesAndAdmissionTests {
    /// Every route moby registers (api/server/router, v26.1.5 and v20.10.24), with the `/debug`
    /// and `OPTIONS` routes left out on purpose, written with sample values for variables.
    static let engineRoutes: [(String, String)] = [
        ("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/events"), ("GET", "/info"), ("GET", "/version"), ("GET", "/system/df"), ("POST", "/auth"),
        ("POST", "/build"), ("POST", "/build/prune"), ("POST", "/build/cancel"), ("POST", "/session"), ("POST", "/grpc"),
        ("GET", "/containers/c/checkpoints"), ("POST", "/containers/c/checkpoints"), ("DELETE", "/containers/c/checkpoints/k"),
        ("HEAD", "/containers/c/archive"), ("GET", "/containers/json"), ("GET", "/containers/c/export"), ("GET", "/containers/c/changes"),
        ("GET", "/containers/c/json"), ("GET", "/containers/c/top"), ("GET", "/containers/c/logs"), ("GET", "/containers/c/stats"),
        ("GET", "/containers/c/attach/ws"), ("GET", "/exec/e/json"), ("GET", "/containers/c/archive"), ("POST", "/containers/create"),
        ("POST", "/containers/c/kill"), ("POST", "/containers/c/pause"), ("POST", "/containers/c/unpause"), ("POST", "/containers/c/restart"),
        ("POST", "/containers/c/start"), ("POST", "/containers/c/stop"), ("POST", "/containers/c/wait"), ("POST", "/containers/c/resize"),
        ("POST", "/containers/c/attach"), ("POST", "/containers/c/exec"), ("POST", "/exec/e/start"), ("POST", "/exec/e/resize"),
        ("POST", "/containers/c/rename"), ("POST", "/containers/c/update"), ("POST", "/containers/prune"), ("POST", "/commit"),
        ("POST", "/containers/c/copy"), ("PUT", "/containers/c/archive"), ("DELETE", "/containers/c"),
        ("GET", "/images/json"), ("GET", "/images/search"), ("GET", "/images/get"), ("GET", "/images/i/get"), ("GET", "/images/i/history"),
        ("GET", "/images/i/json"), ("POST", "/images/load"), ("POST", "/images/create"), ("POST", "/images/i/push"), ("POST", "/images/i/tag"),
        ("POST", "/images/prune"), ("DELETE", "/images/i"), ("GET", "/distribution/i/json"),
        ("GET", "/networks"), ("GET", "/networks/"), ("GET", "/networks/n"), ("POST", "/networks/create"), ("POST", "/networks/n/connect"),
        ("POST", "/networks/n/disconnect"), ("POST", "/networks/prune"), ("DELETE", "/networks/n"),
        ("GET", "/volumes"), ("GET", "/volumes/v"), ("POST", "/volumes/create"), ("POST", "/volumes/prune"), ("PUT", "/volumes/v"), ("DELETE", "/volumes/v"),
        ("GET", "/plugins"), ("GET", "/plugins/p/json"), ("GET", "/plugins/privileges"), ("DELETE", "/plugins/p"), ("POST", "/plugins/p/enable"),
        ("POST", "/plugins/p/disable"), ("POST", "/plugins/pull"), ("POST", "/plugins/p/push"), ("POST", "/plugins/p/upgrade"), ("POST", "/plugins/p/set"),
        ("POST", "/plugins/create"),
        ("POST", "/swarm/init"), ("POST", "/swarm/join"), ("POST", "/swarm/leave"), ("GET", "/swarm"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/update"),
        ("POST", "/swarm/unlock"), ("GET", "/services"), ("GET", "/services/s"), ("POST", "/services/create"), ("POST", "/services/s/update"),
        ("DELETE", "/services/s"), ("GET", "/services/s/logs"), ("GET", "/nodes"), ("GET", "/nodes/n"), ("DELETE", "/nodes/n"), ("POST", "/nodes/n/update"),
        ("GET", "/tasks"), ("GET", "/tasks/t"), ("GET", "/tasks/t/logs"), ("GET", "/secrets"), ("POST", "/secrets/create"), ("DELETE", "/secrets/s"),
        ("GET", "/secrets/s"), ("POST", "/secrets/s/update"), ("GET", "/configs"), ("POST", "/configs/create"), ("DELETE", "/configs/c"),
        ("GET", "/configs/c"), ("POST", "/configs/c/update"),
    ]

    static let runKey = [UInt8](repeating: 7, count: 32)
    static let socketImage = ImageFacts(id: "sha256:" + String(repeating: "a", count: 64), repoTags: ["admitted:1"])
    static let lookups = EngineAPIPolicy.Lookups(
        resolve: { [$0.hasPrefix("/var/run/") ? String($0.dropFirst(4)) : $0] },
        image: { $0 == "admitted:1" || $0 == socketImage.id ? socketImage : nil },
        candidateBases: { [] },
        container: { name in
            switch name {
            case "holder": return .init(imageID: socketImage.id, mountSources: ["/run/eci-api/docker.sock"])
            default: return nil
            }
        })

    func policy(_ origin: EngineAPIPolicy.Origin = .user, commands: CommandList = CommandList(type: .deny, patterns: []), volumeTypes: [String] = [], key: [UInt8]? = nil)
        -> EngineAPIPolicy
    {
        let entry = ImageReference("admitted@" + Self.socketImage.id)
        let settings = AdminSettings(
            socketMountImages: entry.map { [$0] } ?? [], socketMountAnyImage: false, allowDerivedImages: false, commandList: commands, networkVolumeTypes: volumeTypes)
        var restricted = RestrictedMountPolicy.defaults
        restricted.allowedBindRoots = ["/srv"]
        restricted.exactSources = ["/run/eci-api/docker.sock"]
        return EngineAPIPolicy(origin: origin, settings: settings, restricted: restricted, admissionKey: key)
    }

    func decide(_ p: EngineAPIPolicy, _ method: String, _ path: String, _ body: String? = nil, query: [(String, String)] = []) -> EngineAPIPolicy.Decision {
        p.decide(method: method, path: path, query: query, body: body.map { Array($0.utf8) }, lookups: Self.lookups)
    }

    func refused(_ decision: EngineAPIPolicy.Decision) -> String? {
        if case let .refuse(_, message) = decision { return message }
        return nil
    }

    // MARK: Routes

    @Test func everyEngineRouteIsKnownAndNamedAtItsShape() {
        for (method, path) in Self.engineRoutes {
            let route = KnownRoutes.match(method: method, path: "/v1.45" + path)
            #expect(route != nil, "\(method) \(path) is an engine route")
            #expect(KnownRoutes.match(method: method, path: path) == route, "\(method) \(path) without a version")
            #expect(!(route?.names.isEmpty ?? true))
        }
        #expect(KnownRoutes.all.count == Set(KnownRoutes.all.map { "\($0.method) \($0.shape)" }).count, "no route twice")
        // The engine's order: fixed paths before variables, checkpoints before container delete.
        #expect(KnownRoutes.match(method: "GET", path: "/containers/json")?.names.first == "ps")
        #expect(KnownRoutes.match(method: "GET", path: "/containers/json/json")?.names.first == "inspect")
        #expect(KnownRoutes.match(method: "DELETE", path: "/containers/c/checkpoints/k")?.names.first == "checkpoint rm")
        #expect(KnownRoutes.match(method: "DELETE", path: "/containers/web/db")?.names.first == "rm")
        #expect(KnownRoutes.match(method: "GET", path: "/images/docker.io/library/busybox:1/json")?.names.first == "inspect")
        #expect(KnownRoutes.match(method: "POST", path: "/containers/web/db/exec")?.names == ["exec", "container exec"])
        #expect(CommandList.commandNames(method: "GET", path: "/containers/c/attach/ws") == ["attach", "container attach"])
        #expect(CommandList.commandNames(method: "POST", path: "/auth") == ["login"])
    }

    @Test(arguments: [
        ("GET", "/debug/pprof/"), ("GET", "/debug/vars"), ("OPTIONS", "/containers/json"), ("POST", "/containers/c/frobnicate"),
        ("GET", "/v1.45/nothing"), ("PATCH", "/containers/c"), ("GET", "/containers"), ("POST", "/containers"), ("GET", "/exec/e"),
        ("PUT", "/containers/create"), ("GET", "/"), ("POST", "/v1.45/"),
    ])
    func unknownRoutesAreRefusedForUsersAndContainers(_ route: (String, String)) {
        for origin in [EngineAPIPolicy.Origin.user, .container] {
            for commands in [CommandList(type: .deny, patterns: []), CommandList(type: .allow, patterns: ["*"])] {
                let message = refused(decide(policy(origin, commands: commands), route.0, route.1, "{}"))
                #expect(message?.contains("is not known to the engine API filter") == true, "\(origin) \(route)")
            }
        }
    }

    @Test func theLegacyCopyRouteIsRefusedForEveryOrigin() {
        for origin in [EngineAPIPolicy.Origin.user, .container] {
            for path in ["/v1.23/containers/c/copy", "/containers/web/db/copy", "/v1.41/containers/c/copy"] {
                #expect(refused(decide(policy(origin), "POST", path, #"{"Resource":"/etc"}"#))?.contains("legacy copy route") == true, "\(origin) \(path)")
            }
        }
        // Its successor stays: `docker cp` through archive.
        #expect(refused(decide(policy(.container), "GET", "/containers/c/archive?path=/x")) == nil)
    }

    @Test func knownRoutesStillPassInDenyMode() {
        let p = policy(.container, commands: CommandList(type: .deny, patterns: ["push"]))
        #expect(refused(decide(p, "GET", "/v1.45/containers/json")) == nil)
        #expect(refused(decide(p, "GET", "/_ping")) == nil)
        #expect(refused(decide(p, "POST", "/images/x/push"))?.contains("is blocked") == true)
    }

    @Test func startAndRestartByLinkNameAreRefused() {
        #expect(refused(decide(policy(), "POST", "/containers/web/db/start"))?.contains("link name") == true)
        #expect(refused(decide(policy(), "POST", "/containers/web/db/restart"))?.contains("link name") == true)
        #expect(refused(decide(policy(), "POST", "/containers/web/db/start", #"{"Binds":["/etc:/x"]}"#)) != nil)
        #expect(refused(decide(policy(), "POST", "/containers/web/start")) == nil)
        #expect(EngineAPIPolicy.needsBody(method: "POST", path: "/containers/web/db/start"))
    }

    // MARK: Builds and updates

    @Test func buildCgroupParentIsRefusedLikeRun() {
        let p = policy()
        #expect(refused(decide(p, "POST", "/v1.45/build", query: [("t", "x"), ("cgroupparent", "/system.slice")]))?.contains("--cgroup-parent") == true)
        #expect(refused(decide(p, "POST", "/build", query: [("cgroupparent", ""), ("cgroupparent", "x")])) != nil)
        #expect(refused(decide(p, "POST", "/build", query: [("cgroupparent", ""), ("memory", "1000000"), ("shmsize", "1"), ("extrahosts", "a:1.2.3.4"), ("version", "2")])) == nil)
        #expect(refused(decide(policy(.container), "POST", "/build", query: [("cgroupparent", "x")])) != nil)
    }

    @Test func containerUpdateRefusesWhatCreateRefuses() {
        let p = policy()
        for body in [
            #"{"CgroupParent":"/"}"#, #"{"cgroupparent":"x"}"#, #"{"DeviceCgroupRules":["c 1:3 rwm"]}"#,
            #"{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}"#,
            #"{"DeviceRequests":[{"Driver":"cdi","DeviceIDs":["x"]}]}"#, #"{"CgroupParent":"a","cgroupParent":"b"}"#,
        ] {
            #expect(refused(decide(p, "POST", "/v1.45/containers/c/update", body)) != nil, "\(body)")
        }
        #expect(refused(decide(p, "POST", "/containers/c/update", #"{"Memory":100000000,"CpuShares":512,"RestartPolicy":{"Name":"always"},"CgroupParent":"","Devices":[]}"#)) == nil)
        #expect(refused(decide(p, "POST", "/containers/c/update", "")) == nil)
        #expect(EngineAPIPolicy.needsBody(method: "POST", path: "/v1.45/containers/c/update"))
        #expect(EngineAPIPolicy.needsBody(method: "POST", path: "/containers/web/db/update"))
    }

    // MARK: Network volumes

    @Test func networkVolumesOnlyOfTypesTheAdminNames() throws {
        let nfs = #"{"Name":"n","Driver":"local","DriverOpts":{"type":"nfs","o":"addr=10.0.0.1,rw","device":":/export"}}"#
        let cifs = #"{"Name":"n","DriverOpts":{"type":"cifs","o":"username=u","device":"//server/share"}}"#
        for type in AdminSettings.networkVolumeTypeChoices {
            let body = #"{"Name":"n","DriverOpts":{"type":"\#(type)","device":":/export"}}"#
            #expect(refused(decide(policy(), "POST", "/volumes/create", body))?.contains("networkVolumeTypes") == true, "\(type) without settings")
            let other = AdminSettings.networkVolumeTypeChoices.filter { $0 != type }
            #expect(refused(decide(policy(volumeTypes: other), "POST", "/volumes/create", body)) != nil, "\(type) when only others are allowed")
        }
        // Allowed: forwarded with nosuid,nodev (last, so they win over an earlier suid or dev).
        guard case let .forward(rewritten?) = decide(policy(volumeTypes: ["nfs"]), "POST", "/volumes/create", nfs) else {
            Issue.record("an allowed nfs volume was refused")
            return
        }
        #expect(rewritten["DriverOpts"]?["o"]?.stringValue == "addr=10.0.0.1,rw,nosuid,nodev")
        #expect(rewritten["DriverOpts"]?["device"]?.stringValue == ":/export")
        guard case let .forward(smb?) = decide(policy(volumeTypes: ["cifs"]), "POST", "/volumes/create", cifs) else {
            Issue.record("an allowed cifs volume (device //server/share) was refused")
            return
        }
        #expect(smb["DriverOpts"]?["o"]?.stringValue == "username=u,nosuid,nodev")
        // A bind flag makes the kernel bind the device path whatever the type: vetted as a bind.
        let bind = #"{"Name":"n","DriverOpts":{"type":"nfs","o":"bind","device":"/etc/docker"}}"#
        #expect(refused(decide(policy(volumeTypes: ["nfs"]), "POST", "/volumes/create", bind))?.contains("restricted host mount") == true)
        // Other types stay refused, plain and tmpfs volumes pass untouched.
        #expect(refused(decide(policy(volumeTypes: ["nfs"]), "POST", "/volumes/create", #"{"DriverOpts":{"type":"ext4","device":"/dev/vda"}}"#)) != nil)
        #expect(decide(policy(), "POST", "/volumes/create", #"{"Name":"t","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}}"#) == .forward(body: nil))
        #expect(decide(policy(), "POST", "/volumes/create", #"{"Name":"plain"}"#) == .forward(body: nil))

        // The same through HostConfig.Mounts (an inline volume at create).
        let inline = #"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"n","Target":"/n","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"nfs4","device":":/e","o":"addr=10.0.0.1"}}}}]}}"#
        #expect(refused(decide(policy(), "POST", "/containers/create", inline))?.contains("\"nfs4\"") == true)
        guard case let .forward(created?) = decide(policy(volumeTypes: ["nfs4"]), "POST", "/containers/create", inline) else {
            Issue.record("an allowed inline nfs4 volume was refused")
            return
        }
        let options = created["HostConfig"]?["Mounts"]?.arrayValue?.first?["VolumeOptions"]?["DriverConfig"]?["Options"]
        #expect(options?["o"]?.stringValue == "addr=10.0.0.1,nosuid,nodev" && options?["type"]?.stringValue == "nfs4")
    }

    @Test func networkVolumeSettingsAreStrict() throws {
        let ok = try AdminSettings.parse(Array(#"{"enhancedContainerIsolation":{"value":true,"locked":false,"networkVolumeTypes":["nfs4","cifs"]}}"#.utf8), source: "a")
        #expect(ok.networkVolumeTypes == ["nfs4", "cifs"])
        #expect(try AdminSettings.parse(Array(#"{"enhancedContainerIsolation":{"value":true}}"#.utf8), source: "a").networkVolumeTypes.isEmpty)
        for bad in [
            #"{"enhancedContainerIsolation":{"networkVolumeTypes":"nfs"}}"#, #"{"enhancedContainerIsolation":{"networkVolumeTypes":["ext4"]}}"#,
            #"{"enhancedContainerIsolation":{"networkVolumeTypes":["nfs","nfs"]}}"#, #"{"enhancedContainerIsolation":{"networkVolumeTypes":["NFS"]}}"#,
            #"{"enhancedContainerIsolation":{"networkVolumeTypes":[1]}}"#, #"{"enhancedContainerIsolation":{"volumeTypes":["nfs"]}}"#,
            #"{"enhancedContainerIsolation":{"dockerSocketMountt":{}}}"#,
        ] {
            #expect(throws: ECIError.self, "\(bad)") { try AdminSettings.parse(Array(bad.utf8), source: "a") }
        }
    }

    // MARK: Socket-admission stamps

    let socketCreate = #"{"Image":"admitted:1","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"],"Annotations":{"com.example/a":"1"}}}"#

    @Test func anAdmittedSocketMountIsStampedAtAVersionThatKeepsIt() throws {
        let p = policy(key: Self.runKey)
        let stamp = SocketAdmissionStamp.stamp(runKey: Self.runKey)
        for (path, raised) in [("/v1.41/containers/create?name=x", "/v1.43/containers/create"), ("/v1.42/containers/create", "/v1.43/containers/create")] {
            guard case let .forwardTo(to, body?) = decide(p, "POST", path, socketCreate) else {
                Issue.record("\(path): not forwarded at a raised version")
                continue
            }
            #expect(to == raised)
            #expect(body["HostConfig"]?["Annotations"]?[SocketAdmissionStamp.annotation]?.stringValue == stamp)
            #expect(body["HostConfig"]?["Annotations"]?["com.example/a"]?.stringValue == "1", "the caller's own annotations are kept")
            #expect(body["Image"]?.stringValue == Self.socketImage.id)
        }
        for path in ["/v1.43/containers/create", "/v1.45/containers/create", "/containers/create"] {
            guard case let .forward(body?) = decide(p, "POST", path, socketCreate) else {
                Issue.record("\(path): not forwarded as it is")
                continue
            }
            #expect(body["HostConfig"]?["Annotations"]?[SocketAdmissionStamp.annotation]?.stringValue == stamp)
        }
        // --volumes-from a socket holder is a socket mount too, and the container socket's own name.
        guard case let .forward(inherited?) = decide(p, "POST", "/v1.45/containers/create", #"{"Image":"admitted:1","HostConfig":{"VolumesFrom":["holder"]}}"#) else {
            Issue.record("--volumes-from an admitted holder was refused")
            return
        }
        #expect(inherited["HostConfig"]?["Annotations"]?[SocketAdmissionStamp.annotation]?.stringValue == stamp)
        // No socket, no stamp; no key (plain host, old engine), no stamp and no version change.
        guard case let .forward(plain?) = decide(p, "POST", "/v1.41/containers/create", #"{"Image":"busybox","HostConfig":{"Binds":["/srv/a:/a"]}}"#) else {
            Issue.record("a plain create was not forwarded as it is")
            return
        }
        #expect(plain["HostConfig"]?["Annotations"] == nil)
        guard case let .forward(unkeyed?) = decide(policy(), "POST", "/v1.41/containers/create", socketCreate) else {
            Issue.record("without a key the create must be forwarded as it is")
            return
        }
        #expect(unkeyed["HostConfig"]?["Annotations"]?[SocketAdmissionStamp.annotation] == nil)
    }

    @Test func callersCannotSupplyECIsAnnotations() {
        for key in [SocketAdmissionStamp.annotation, "org.eci.other", "ORG.ECI.socket-admission"] {
            let forged = #"{"Image":"admitted:1","HostConfig":{"Binds":["/run/eci-api/docker.sock:/s"],"Annotations":{"\#(key)":"00"}}}"#
            let plain = #"{"Image":"busybox","HostConfig":{"Annotations":{"\#(key)":"00"}}}"#
            for p in [policy(key: Self.runKey), policy(), policy(.container, key: Self.runKey)] {
                #expect(refused(decide(p, "POST", "/v1.45/containers/create", forged))?.contains("is reserved") == true, "\(key)")
                #expect(refused(decide(p, "POST", "/v1.45/containers/create", plain))?.contains("is reserved") == true, "\(key)")
            }
        }
        #expect(refused(decide(policy(), "POST", "/containers/create", #"{"Image":"busybox","HostConfig":{"Annotations":["x"]}}"#)) != nil)
        #expect(refused(decide(policy(), "POST", "/containers/create", #"{"Image":"busybox","HostConfig":{"Annotations":{"org.ecix":"1","io.x":"2"}}}"#)) == nil)
    }

    @Test func stampsVerifyOnlyUnderTheirRunKey() throws {
        let stamp = SocketAdmissionStamp.stamp(runKey: Self.runKey)
        #expect(stamp.count == 64)
        try SocketAdmissionStamp.verify(stamp, runKey: Self.runKey, socket: "/s")
        #expect(throws: ECIError.self) { try SocketAdmissionStamp.verify(stamp, runKey: [UInt8](repeating: 8, count: 32), socket: "/s") }
        #expect(throws: ECIError.self) { try SocketAdmissionStamp.verify(nil, runKey: Self.runKey, socket: "/s") }
        #expect(throws: ECIError.self) { try SocketAdmissionStamp.verify("", runKey: Self.runKey, socket: "/s") }
        #expect(throws: ECIError.self) { try SocketAdmissionStamp.verify(stamp.uppercased(), runKey: Self.runKey, socket: "/s") }

        // The run key follows ECI's settings, not the file's other keys or its layout.
        let master = [UInt8](repeating: 1, count: 32)
        func key(_ text: String) throws -> [UInt8] { SocketAdmissionStamp.runKey(masterKey: master, settingsDigest: try SocketAdmissionStamp.settingsDigest(Array(text.utf8))) }
        let a = try key(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["docker:cli"]}}}}"#)
        let reformatted = try key("{ \"other\": 1,\n \"enhancedContainerIsolation\" : { \"dockerSocketMount\" : { \"imageList\" : { \"images\" : [ \"docker:cli\" ] } } } }")
        let b = try key(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["docker:cli","other:1"]}}}}"#)
        #expect(a == reformatted)
        #expect(a != b)
        #expect(a != SocketAdmissionStamp.runKey(masterKey: [UInt8](repeating: 2, count: 32), settingsDigest: try SocketAdmissionStamp.settingsDigest(Array("{}".utf8))))
        #expect(try key("{}") != a)

        #expect(try SocketAdmissionStamp.decodeKey(SocketAdmissionStamp.encodeKey(a), source: "k") == a)
        #expect(throws: ECIError.self) { try SocketAdmissionStamp.decodeKey(Array("zz".utf8), source: "k") }
        #expect(throws: ECIError.self) { try SocketAdmissionStamp.decodeKey(Array((String(repeating: "g", count: 64) + "\n").utf8), source: "k") }
        #expect(SocketAdmissionStamp.isBelow("1.41", "1.43") && SocketAdmissionStamp.isBelow("1.9", "1.43") && !SocketAdmissionStamp.isBelow("1.43", "1.43"))
        #expect(!SocketAdmissionStamp.isBelow("1.45", "1.43") && !SocketAdmissionStamp.isBelow("2", "1.43") && SocketAdmissionStamp.isBelow("1..2", "1.43"))
    }
}
