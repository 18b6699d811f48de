import ECICore
import ECIOCI

/// The engine API filter's rules: what a request to the engine may do, decided before the
/// engine sees it. Pure: the facts it needs from the VM (what a path resolves to, what an image
/// is) come through the `Lookups` the caller provides, so every rule is unit-tested both ways.
///
/// The engine decodes JSON with Go's encoding/json, which matches object keys to fields
/// case-insensitively (and folds `ſ` to `s`, `K` to `k`). A filter that read only `"Binds"`
/// would miss `"binds"`; so every field is read through `FoldedObject`, two spellings of one
/// field are refused as ambiguous, and rewritten fields are written under one canonical key.
public struct EngineAPIPolicy: Sendable {
    /// Who is calling: the VM's users (through the host tunnel), or a container that mounts the
    /// engine socket (the command list applies to it).
    public enum Origin: String, Sendable {
        case user
        case container
    }

    /// The engine sockets as VM paths, for telling a socket mount from other bind mounts.
    public struct Sockets: Sendable, Equatable {
        /// Sockets users and containers name to mount "the Docker socket" (the filtered one).
        public var filtered: [String]
        /// The container-facing filtered socket an admitted mount is pointed at.
        public var forContainers: String
        /// The engine's own socket: never mountable.
        public var raw: String

        public init(filtered: [String], forContainers: String, raw: String) {
            self.filtered = filtered
            self.forContainers = forContainers
            self.raw = raw
        }

        /// The layout the agent sets up in the VM.
        public static let vm = Sockets(filtered: ["/run/docker.sock"], forContainers: "/run/eci-api/docker.sock", raw: "/run/eci/engine/docker.sock")
    }

    /// What the policy asks of the VM.
    public struct Lookups: Sendable {
        /// Canonical absolute names of a host path (symlinks and `..` resolved); the path itself
        /// when it does not exist yet.
        public var resolve: @Sendable (String) -> [String]
        /// The engine's facts about an image as a container names it; nil if there is none.
        public var image: @Sendable (String) -> ImageFacts?
        /// Local images that may be admitted parents of a derived image.
        public var candidateBases: @Sendable () -> [ImageFacts]
        /// An existing container (one inspection); nil if there is no such container (the
        /// default: `VolumesFrom` is then refused).
        public var container: @Sendable (String) -> ContainerFacts?
        /// The mounts through which the VM's lookups of a resolved path (and of everything below
        /// it: binds are recursive) would still follow symlinks; empty when all are `nosymfollow`.
        public var symlinkFollowingMounts: @Sendable (String) -> [String]

        public init(
            resolve: @escaping @Sendable (String) -> [String], image: @escaping @Sendable (String) -> ImageFacts?, candidateBases: @escaping @Sendable () -> [ImageFacts],
            container: @escaping @Sendable (String) -> ContainerFacts? = { _ in nil },
            symlinkFollowingMounts: @escaping @Sendable (String) -> [String] = { _ in [] }
        ) {
            self.resolve = resolve
            self.image = image
            self.candidateBases = candidateBases
            self.container = container
            self.symlinkFollowingMounts = symlinkFollowingMounts
        }
    }

    /// What the engine reports about an existing container (`GET /containers/{name}/json`).
    public struct ContainerFacts: Sendable, Equatable {
        /// The ID of the image it was created from ("" when the engine did not say).
        public var imageID: String
        /// The host sources of its mounts, binds and volumes alike (what `--volumes-from` hands on).
        public var mountSources: [String]

        public init(imageID: String, mountSources: [String]) {
            self.imageID = imageID
            self.mountSources = mountSources
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Forward; `body`, when set, replaces the request's JSON body.
        case forward(body: JSONValue?)
        /// Forward to `path` (the query kept); `body` as for `forward`. An admitted socket mount
        /// is created at an API version whose requests keep `HostConfig.Annotations`.
        case forwardTo(path: String, body: JSONValue?)
        /// Refuse with this HTTP status and message.
        case refuse(status: Int, message: String)
    }

    public var origin: Origin
    public var settings: AdminSettings
    public var restricted: RestrictedMountPolicy
    public var sockets: Sockets
    /// The runtime every container is forced onto.
    public var runtime: String
    /// The run key socket admissions are stamped with (`SocketAdmissionStamp`); nil: no stamp
    /// (a plain host, or an engine older than API 1.43, where the runtime checks none).
    public var admissionKey: [UInt8]?

    public init(origin: Origin, settings: AdminSettings, restricted: RestrictedMountPolicy, sockets: Sockets = .vm, runtime: String = "eci", admissionKey: [UInt8]? = nil) {
        self.origin = origin
        self.settings = settings
        self.restricted = restricted
        self.sockets = sockets
        self.runtime = runtime
        self.admissionKey = admissionKey
    }

    /// Whether deciding on a request needs its body (a JSON document).
    public static func needsBody(method: String, path: String) -> Bool {
        let route = Route(method: method, path: path)
        return route.is("POST", "containers", "create") || route.is("POST", "volumes", "create") || route.isContainerStart || route.isContainerUpdate
    }

    /// Decides on one request. `body` is the request's body when `needsBody` said so;
    /// `contentType` is its Content-Type header.
    public func decide(method: String, path: String, query: [(String, String)], body: [UInt8]?, contentType: String? = nil, lookups: Lookups) -> Decision {
        // Only routes the filter knows pass, for users and containers alike: a route it does not
        // know is one it cannot vet. The table is the engine's own (pinned in the image), so
        // users lose nothing but the engine's 404; an engine upgrade that adds routes fails
        // closed until the table knows them.
        guard let known = KnownRoutes.match(method: method, path: path) else {
            return .refuse(status: 403, message: "enhanced container isolation: the engine API route \(method.uppercased()) \(Route.unversioned(path)) is not known to the engine API filter, so it is refused")
        }
        if known == KnownRoutes.legacyCopy {
            return .refuse(status: 403, message: "enhanced container isolation: the legacy copy route is not allowed; docker cp uses /containers/{id}/archive")
        }
        if origin == .container, let refusal = settings.commandList.refusal(method: method, path: path) {
            return .refuse(status: 403, message: refusal)
        }
        // The engine's ParseForm reads a form-encoded body as parameters, ahead of the query the
        // filter vetted (`networkmode=host` in a build's body). No docker client sends one.
        let mediaType = contentType?.split(separator: ";").first.map { String($0.filter { !$0.isWhitespace }).lowercased() }
        // Multipart bodies too: Go's FormValue parses them when a handler did not call ParseForm.
        if mediaType == "application/x-www-form-urlencoded" || mediaType?.hasPrefix("multipart/") == true {
            return .refuse(status: 400, message: "enhanced container isolation: form-encoded request bodies are not accepted by the engine API filter")
        }
        let route = Route(method: method, path: path)
        do {
            if route.is("POST", "containers", "create") { return try containerCreate(body, path: path, lookups) }
            if route.isContainerUpdate { return try containerUpdate(body) }
            if route.is("POST", "volumes", "create") { return try volumeCreate(body, lookups) }
            if route.isContainerStart {
                // API < 1.24 let `start` carry a HostConfig; the engine may still accept one
                // (DOCKER_MIN_API_VERSION), and it would skip every check above.
                if let body, !isEmptyBody(body) {
                    throw ECIError(.refused, "enhanced container isolation: a host configuration on container start is not allowed; pass it at create")
                }
                try vetStart(container: route.containerName, lookups)
                return .forward(body: nil)
            }
            if route.method == "POST", route.parts.count >= 3, route.parts[0] == "containers", route.parts.last == "restart" {
                try vetStart(container: route.containerName, lookups)
                return .forward(body: nil)
            }
            if route.method == "POST", route.parts.first == "build" || route.parts.first == "session" {
                try vetBuild(query)
                return .forward(body: nil)
            }
            if route.parts.count >= 3, route.parts[0] == "containers", route.parts.last == "archive" {
                try vetArchive(container: route.parts[1..<(route.parts.count - 1)].joined(separator: "/"), lookups)
                return .forward(body: nil)
            }
            if route.method == "POST", route.parts.count >= 3, route.parts[0] == "containers", route.parts.last == "checkpoints" {
                throw ECIError(.refused, "enhanced container isolation: checkpoints are not supported (a restored container would bypass the isolated runtime)")
            }
            if route.method != "GET", route.method != "HEAD", route.parts.first == "plugins" {
                throw ECIError(.refused, "enhanced container isolation: engine plugins can't be installed or changed (they run outside the isolated runtime)")
            }
            if route.method != "GET", route.method != "HEAD", ["swarm", "services"].contains(route.parts.first ?? "") {
                throw ECIError(.refused, "enhanced container isolation: swarm mode is not supported (its tasks would bypass the API filter)")
            }
            return .forward(body: nil)
        } catch let error as ECIError {
            return .refuse(status: error.code == .invalidArgument ? 400 : 403, message: error.message)
        } catch {
            return .refuse(status: 400, message: "\(error)")
        }
    }

    func isEmptyBody(_ body: [UInt8]) -> Bool {
        let text = String(decoding: body, as: UTF8.self).filter { !$0.isWhitespace }
        return text.isEmpty || text == "{}" || text == "null"
    }

    // MARK: Builds

    /// The classic builder creates its build containers inside the engine, with a host
    /// configuration made from these parameters, and never through the filter: what `create`
    /// refuses is refused here. Every parameter of moby's `newImageBuildOptions` (26.1):
    /// - `cgroupparent`: refused (as `run --cgroup-parent`); `networkmode=host`: refused (as
    ///   `run --network=host`; BuildKit would also need the `network.host` entitlement, off);
    /// - `securityopt`: the engine refuses it on Linux; `isolation`: only "default" on Linux;
    /// - `memory`, `memswap`, `cpushares`, `cpuperiod`, `cpuquota`, `cpusetcpus`, `cpusetmems`,
    ///   `shmsize`, `ulimits`, `extrahosts`: resource limits and /etc/hosts lines, which
    ///   `create` allows too;
    /// - `dockerfile`, `t`, `q`, `nocache`, `rm`, `forcerm`, `pull`, `squash`, `target`,
    ///   `buildargs`, `labels`, `cachefrom`, `platform`, `version`, `buildid`, `session`: what is
    ///   built and how it is named, nothing of the VM;
    /// - `remote`: a git or http(s) context the engine fetches itself (no local path: moby takes
    ///   only git and http URLs); `outputs`: BuildKit's `local` and `tar` exporters write
    ///   through the client's session, not to a VM path.
    func vetBuild(_ query: [(String, String)]) throws {
        if query.contains(where: { $0.0 == "networkmode" && $0.1 == "host" }) {
            throw ECIError(.refused, "enhanced container isolation: docker build with --network=host is not allowed")
        }
        if query.contains(where: { $0.0 == "cgroupparent" && !$0.1.isEmpty }) {
            throw ECIError(.refused, "enhanced container isolation: docker build with --cgroup-parent is not allowed")
        }
    }

    // MARK: Container update

    /// `POST /containers/{id}/update` carries a `Resources` (and a restart policy). The engine
    /// applies only CPU, memory, block-I/O weight, pids and realtime limits from it (moby's
    /// `UpdateContainer`), but what `create` refuses is refused here too, so that no engine
    /// version that applies more can hand a running container a VM cgroup or devices.
    func containerUpdate(_ body: [UInt8]?) throws -> Decision {
        guard let body, !isEmptyBody(body) else { return .forward(body: nil) }
        let update = try FoldedObject(parsing: body, what: "update config")
        try vetResources(update, what: "docker update")
        return .forward(body: nil)
    }

    /// The fields of a `Resources` that reach past the container: a cgroup placed anywhere in the
    /// VM's tree, device cgroup rules, devices and device requests. `what` names the request.
    func vetResources(_ resources: FoldedObject, what: String) throws {
        if let parent = try resources.string("CgroupParent"), !parent.isEmpty {
            throw ECIError(.refused, "enhanced container isolation: \(what) with a cgroup parent is not allowed")
        }
        for (field, words) in [("DeviceCgroupRules", "device cgroup rules"), ("Devices", "devices"), ("DeviceRequests", "device requests")] {
            if let items = try resources.array(field), !items.isEmpty {
                throw ECIError(.refused, "enhanced container isolation: \(what) with \(words) is not allowed (containers never get VM devices)")
            }
        }
    }

    // MARK: Container create

    func containerCreate(_ body: [UInt8]?, path: String, _ lookups: Lookups) throws -> Decision {
        guard let body else { throw ECIError(.invalidArgument, "container create without a body") }
        var config = try FoldedObject(parsing: body, what: "container config")
        let imageName = try config.string("Image") ?? ""
        var host = try config.object("HostConfig") ?? FoldedObject(.object([]), what: "HostConfig")

        // Host namespaces, worded as the runtime words them.
        var shared: [String] = []
        for (field, type) in [("PidMode", "pid"), ("NetworkMode", "network"), ("IpcMode", "ipc"), ("UTSMode", "uts"), ("CgroupnsMode", "cgroup")] {
            if try host.string(field) == "host" { shared.append(type) }
        }
        if let first = shared.first {
            throw ECIError(.refused, NamespacePolicy.refusal(for: shared, first: first).message)
        }

        // Every container runs in the isolated runtime, whatever --runtime said.
        host.set("Runtime", .string(runtime))

        // Fields that reach past the container: VM devices by cgroup rule (an image can carry
        // device nodes), a cgroup placed anywhere in the VM's tree, an OOM score that makes the
        // VM kill the engine first, volume plugins.
        if let rules = try host.array("DeviceCgroupRules"), !rules.isEmpty {
            throw ECIError(.refused, "enhanced container isolation: device cgroup rules are not allowed (containers never get VM devices)")
        }
        if let parent = try host.string("CgroupParent"), !parent.isEmpty {
            throw ECIError(.refused, "enhanced container isolation: --cgroup-parent is not allowed")
        }
        if let score = try host.member("OomScoreAdj"), (score.int64Value ?? 0) < 0 {
            throw ECIError(.refused, "enhanced container isolation: a negative --oom-score-adj is not allowed (it would make the VM kill the engine first)")
        }
        if let driver = try host.string("VolumeDriver"), !driver.isEmpty, driver != "local" {
            throw ECIError(.refused, "enhanced container isolation: volume driver \"\(driver)\" is not allowed; only the local driver is")
        }
        // ECI's annotations (the socket-admission stamp) are written by the filter alone.
        var annotations: [(key: String, value: JSONValue)] = []
        if let given = try host.member("Annotations") {
            guard case let .object(members) = given else { throw ECIError(.invalidArgument, "HostConfig.Annotations must be an object") }
            for (key, _) in members where key.lowercased().hasPrefix(SocketAdmissionStamp.reservedPrefix) {
                throw ECIError(.refused, "enhanced container isolation: the annotation \"\(key)\" is reserved (annotations under \(SocketAdmissionStamp.reservedPrefix) are ECI's)")
            }
            // runc reads some annotations as its own configuration (systemd unit properties of
            // the container's scope among them): none reaches the spec from a request.
            try RuntimeAnnotationPolicy.check(members.map(\.key))
            annotations = members
        }

        var socketMount = false
        if let binds = try host.array("Binds") {
            var rewritten: [JSONValue] = []
            for bind in binds {
                guard let text = bind.stringValue else { throw ECIError(.invalidArgument, "HostConfig.Binds holds a non-string entry") }
                let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard let raw = parts.first, raw.hasPrefix("/"), parts.count >= 2 else {
                    rewritten.append(bind)  // a named or anonymous volume: vetted when it was created
                    continue
                }
                // The engine cleans the path (Go's path.Clean) before using it: check, and forward,
                // exactly that path, so `/missing/../etc` is judged as `/etc`.
                let source = lexicallyClean(raw)
                let checked = try vetBindSource(source, lookups) ? sockets.forContainers : source
                if checked == sockets.forContainers { socketMount = true }
                rewritten.append(.string(([checked] + parts.dropFirst()).joined(separator: ":")))
            }
            host.set("Binds", .array(rewritten))
        }
        if let mounts = try host.array("Mounts") {
            var rewritten: [JSONValue] = []
            for item in mounts {
                var mount = try FoldedObject(item, what: "HostConfig.Mounts entry")
                let type = try mount.string("Type") ?? ""
                switch type {
                case "bind":
                    guard let raw = try mount.string("Source"), raw.hasPrefix("/") else {
                        throw ECIError(.invalidArgument, "a bind mount needs an absolute Source")
                    }
                    let source = lexicallyClean(raw)
                    if try vetBindSource(source, lookups) {
                        socketMount = true
                        mount.set("Source", .string(sockets.forContainers))
                    } else {
                        mount.set("Source", .string(source))
                    }
                case "volume":
                    if var options = try mount.object("VolumeOptions"), var driver = try options.object("DriverConfig") {
                        let given = try driver.stringMap("Options")
                        let vetted = try vetVolumeDriver(name: try driver.string("Name") ?? "", options: given, lookups)
                        if vetted != given {
                            driver.set("Options", .object(vetted.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
                            options.set("DriverConfig", driver.value)
                            mount.set("VolumeOptions", options.value)
                        }
                    }
                case "tmpfs":
                    break
                default:
                    throw ECIError(.refused, "enhanced container isolation: mounts of type \"\(type)\" are not allowed")
                }
                rewritten.append(mount.value)
            }
            host.set("Mounts", .array(rewritten))
        }
        // --volumes-from hands on every mount of the named containers, the socket among them:
        // the new container's image must be admitted as if it named the socket itself.
        for item in try host.array("VolumesFrom") ?? [] {
            guard let text = item.stringValue else { throw ECIError(.invalidArgument, "HostConfig.VolumesFrom holds a non-string entry") }
            let name = String(text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            guard let container = lookups.container(name) else {
                throw ECIError(.invalidArgument, "enhanced container isolation: --volumes-from \"\(name)\": no such container")
            }
            if container.mountSources.contains(where: { isSocket($0, lookups) }) { socketMount = true }
        }
        var raisedPath: String?
        if socketMount {
            if let admitted = try vetSocketMount(imageName: imageName, lookups) {
                // Pin the image that was vetted: the name could be retagged before the engine resolves it.
                config.set("Image", .string(admitted))
            }
            if let admissionKey {
                // The stamp eci-runc checks at every create (restarts the engine makes by itself
                // included); the engine keeps annotations only at API >= 1.43.
                annotations.append((SocketAdmissionStamp.annotation, .string(SocketAdmissionStamp.stamp(runKey: admissionKey))))
                host.set("Annotations", .object(annotations))
                raisedPath = raisedCreatePath(path)
            }
        }
        config.set("HostConfig", host.value)
        if let raisedPath { return .forwardTo(path: raisedPath, body: config.value) }
        return .forward(body: config.value)
    }

    /// The create path at `SocketAdmissionStamp.minimumAPIVersion` when `path` names a lower
    /// version (the engine would drop the stamp); nil when it can stay (no version: the engine's
    /// own, which is higher on an engine that stores annotations). Raising 1.41 or 1.42 to 1.43
    /// changes, for create, only that the engine reads ConsoleSize and BindOptions'
    /// CreateMountpoint, and validates mount options instead of dropping misplaced ones.
    func raisedCreatePath(_ path: String) -> String? {
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let unversioned = Route.unversioned(route)
        guard unversioned != route else { return nil }
        let version = String(route.dropFirst(2).prefix { $0 != "/" })
        guard SocketAdmissionStamp.isBelow(version, SocketAdmissionStamp.minimumAPIVersion) else { return nil }
        return "/v\(SocketAdmissionStamp.minimumAPIVersion)/containers/create"
    }

    /// Refuses a restricted bind source; returns true when it is the engine socket (a socket
    /// mount, admitted by image later).
    func vetBindSource(_ raw: String, _ lookups: Lookups) throws -> Bool {
        let source = lexicallyClean(raw)
        let resolved = lookups.resolve(source)
        if isSocket(names: resolved) { return true }
        // The engine looks the literal path up again itself, as VM root, whenever it likes (the
        // local driver's `device=`, `mkdir -p` at start, `docker cp`), following whatever
        // symlinks are on it by then: the literal path is judged too, not only what it resolves
        // to today (a symlink in a container's upper dir can be re-pointed at will).
        let names = resolved.contains(source) ? resolved : [source] + resolved
        // Inside a named volume's data, a container writes (and plants symlinks) and no mount is
        // `nosymfollow`: the engine's own volume mount point (`_data`) may be named, nothing below it.
        if let inside = names.first(where: { restricted.isInsideVolumeData($0) }) {
            throw ECIError(
                .refused, "can't mount \(source) because it's configured as a restricted host mount (\(inside) is inside a named volume's data, which containers can change; use the volume by name)")
        }
        let restrictedPaths = restricted.restrictedPaths + mountableSockets + [sockets.raw]
        try restricted.check(source: source, names: names, restricted: restrictedPaths, containerID: "")
        // In an allowed root, the engine will look the path up itself (mkdir -p, the volume
        // driver's bind, docker cp): only through mounts that never follow a planted symlink.
        if let roots = restricted.allowedBindRoots {
            for name in names where roots.contains(where: { isWithin(name, $0) }) {
                let followers = lookups.symlinkFollowingMounts(name)
                guard followers.isEmpty else { throw RestrictedMountPolicy.symlinkFollowingRefusal(source: source, followers: followers) }
            }
        }
        return false
    }

    /// Whether a mount source is one of the filtered engine sockets.
    func isSocket(_ source: String, _ lookups: Lookups) -> Bool {
        isSocket(names: lookups.resolve(lexicallyClean(source)))
    }

    /// Whether resolved names are all one of the filtered engine sockets.
    func isSocket(names: [String]) -> Bool {
        !names.isEmpty && names.allSatisfy { mountableSockets.contains($0) }
    }

    /// The sockets a bind may name to mount "the Docker socket".
    var mountableSockets: [String] { sockets.filtered + [sockets.forContainers] }

    /// Admits the image to mount the socket, or refuses. Returns the admitted image's ID (nil
    /// when every image may mount it).
    func vetSocketMount(imageName: String, _ lookups: Lookups) throws -> String? {
        guard !settings.socketMountAnyImage else { return nil }
        let requested = ImageReference(imageName)
        let shown = requested?.name ?? imageName
        guard let requested, let facts = lookups.image(imageName) else {
            throw ECIError(.refused, SocketMountPolicy.refusal(image: shown))
        }
        try admit(facts, requested: requested, shown: shown, lookups)
        return facts.id
    }

    /// Refuses `image` the socket unless the allow-list admits it (`requested`: the name the
    /// container asks for; nil for an existing container, known by its image's ID).
    func admit(_ image: ImageFacts, requested: ImageReference?, shown: String, _ lookups: Lookups) throws {
        let bases = settings.allowDerivedImages && image.repoDigests.isEmpty ? lookups.candidateBases() : []
        guard SocketMountPolicy(settings: settings).admits(requested: requested, image: image, bases: bases) else {
            throw ECIError(.refused, SocketMountPolicy.refusal(image: shown))
        }
    }

    /// A container that mounts the engine socket is admitted again each time a user starts it,
    /// under the settings in force now (they may have changed since it was created).
    func vetStart(container: String, _ lookups: Lookups) throws {
        // A legacy link name (`web/db`) names a container the lookups can't inspect.
        guard !container.contains("/") else {
            throw ECIError(.refused, "enhanced container isolation: name the container by its ID or name to start it (not by a link name)")
        }
        guard let facts = lookups.container(container), facts.mountSources.contains(where: { isSocket($0, lookups) }) else { return }
        guard !settings.socketMountAnyImage else { return }
        guard let image = lookups.image(facts.imageID) else {
            throw ECIError(.refused, SocketMountPolicy.refusal(image: container))
        }
        try admit(image, requested: nil, shown: image.repoTags.first.flatMap(ImageReference.init)?.name ?? image.id, lookups)
    }

    /// `docker cp` makes the engine mount the container's bind sources itself, as root, even
    /// for a container that never started (the runtime never sees it): each source is checked
    /// again now, in case a symlink on the way was changed since create.
    func vetArchive(container: String, _ lookups: Lookups) throws {
        guard !container.contains("/") else {
            throw ECIError(.refused, "enhanced container isolation: name the container by its ID or name to copy files (not by a link name)")
        }
        guard let facts = lookups.container(container) else { return }  // the engine answers 404
        for source in facts.mountSources where source.hasPrefix("/") {
            _ = try vetBindSource(source, lookups)
        }
    }

    // MARK: Volumes

    func volumeCreate(_ body: [UInt8]?, _ lookups: Lookups) throws -> Decision {
        guard let body else { throw ECIError(.invalidArgument, "volume create without a body") }
        var volume = try FoldedObject(parsing: body, what: "volume config")
        let given = try volume.stringMap("DriverOpts")
        let vetted = try vetVolumeDriver(name: try volume.string("Driver") ?? "", options: given, lookups)
        guard vetted != given else { return .forward(body: nil) }
        volume.set("DriverOpts", .object(vetted.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        return .forward(body: volume.value)
    }

    /// The local driver mounts `device` with `type` and `o` in the VM when a container first
    /// uses the volume: a bind of a VM path, or of a VM block device, is a restricted mount; a
    /// network file system (whatever server the request names, mounted by the VM's kernel) only
    /// when the admin's settings name its type, and then never with set-user-ID files or device
    /// nodes. Returns the options to forward (`o` gains `nosuid,nodev` for a network type; the
    /// engine's mount parses flags in order, so they win over an earlier `suid` or `dev`).
    func vetVolumeDriver(name: String, options: [String: String], _ lookups: Lookups) throws -> [String: String] {
        guard name.isEmpty || name == "local" else {
            throw ECIError(.refused, "enhanced container isolation: volume driver \"\(name)\" is not allowed; only the local driver is")
        }
        let type = options["type"] ?? ""
        let flags = (options["o"] ?? "").split(separator: ",").map { String($0.split(separator: "=").first ?? "") }
        let device = options["device"] ?? ""
        let isBind = flags.contains("bind") || flags.contains("rbind")
        let isNetwork = AdminSettings.networkVolumeTypeChoices.contains(type)
        guard ["", "none", "tmpfs"].contains(type) || isNetwork else {
            throw ECIError(.refused, "enhanced container isolation: local volumes of type \"\(type)\" are not allowed (they would mount VM storage)")
        }
        if isNetwork, !settings.networkVolumeTypes.contains(type) {
            throw ECIError(
                .refused,
                "enhanced container isolation: local volumes of type \"\(type)\" are not allowed (the VM would mount any server a volume names); if you wish to allow it, add \"\(type)\" to enhancedContainerIsolation.networkVolumeTypes in the admin settings")
        }
        // A network device names a server (`:/export`, `//server/share`), not a VM path, unless
        // a bind flag makes the kernel ignore the type and bind the device path.
        if isBind || (!isNetwork && device.hasPrefix("/")) {
            guard device.hasPrefix("/") else { throw ECIError(.refused, "enhanced container isolation: a bind volume needs an absolute device path") }
            if try vetBindSource(device, lookups) {
                throw ECIError(.refused, "can't mount \(device) because it's configured as a restricted host mount")
            }
        }
        guard isNetwork else { return options }
        var vetted = options
        let given = options["o"] ?? ""
        vetted["o"] = given.isEmpty ? "nosuid,nodev" : given + ",nosuid,nodev"
        return vetted
    }
}

/// A request path split into its route: `/v1.43/containers/create` → POST ["containers", "create"].
struct Route {
    var method: String
    var parts: [String]

    init(method: String, path: String) {
        self.method = method.uppercased()
        parts = Self.unversioned(path).split(separator: "/").map(String.init)
    }

    /// The path without its query and its API version prefix (`/v1.43/info` → `/info`).
    static func unversioned(_ path: String) -> String {
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let segments = route.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard segments.count == 2, segments[0].isEmpty, segments[1].contains("/"), let first = segments[1].split(separator: "/", maxSplits: 1).first,
            first.hasPrefix("v"), first.count > 1, first.dropFirst().allSatisfy({ $0.isNumber || $0 == "." })
        else { return route }
        return String(segments[1].dropFirst(first.count))
    }

    func `is`(_ method: String, _ parts: String...) -> Bool { self.method == method && self.parts == parts }

    /// `POST /containers/{name}/start`, `{name}` possibly a legacy link name (`web/db`).
    var isContainerStart: Bool { method == "POST" && parts.count >= 3 && parts[0] == "containers" && parts.last == "start" }

    /// The container a `/containers/{name}/action` route names (a link name keeps its slash).
    var containerName: String { parts.count >= 3 ? parts[1..<(parts.count - 1)].joined(separator: "/") : "" }

    var isContainerUpdate: Bool { method == "POST" && parts.count >= 3 && parts[0] == "containers" && parts.last == "update" }
}

/// A JSON object read the way Go's encoding/json reads it into a struct: keys match fields
/// case-insensitively, with Unicode simple folding (`ſ` is `s`, the Kelvin sign is `k`).
struct FoldedObject {
    private(set) var value: JSONValue
    let what: String

    init(_ value: JSONValue, what: String) throws {
        guard value.isObject else { throw ECIError(.invalidArgument, "\(what) is not a JSON object") }
        self.value = value
        self.what = what
    }

    init(parsing bytes: [UInt8], what: String) throws {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw ECIError(.invalidArgument, "\(what): malformed JSON", cause: error) }
        try self.init(value, what: what)
    }

    static func fold(_ key: String) -> String {
        var folded = ""
        for scalar in key.unicodeScalars {
            switch scalar.value {
            case 0x17F: folded += "s"
            case 0x212A: folded += "k"
            default: folded += String(scalar).lowercased()
            }
        }
        return folded
    }

    /// The value of `field`; refuses two spellings of it (which one the engine takes is not ours to guess).
    func member(_ field: String) throws -> JSONValue? {
        guard case let .object(members) = value else { return nil }
        let folded = Self.fold(field)
        let matches = members.filter { Self.fold($0.key) == folded }
        guard matches.count <= 1 else { throw ECIError(.invalidArgument, "\(what): field \(field) is given more than once") }
        guard let found = matches.first?.value, found != .null else { return nil }
        return found
    }

    func string(_ field: String) throws -> String? {
        guard let found = try member(field) else { return nil }
        guard let text = found.stringValue else { throw ECIError(.invalidArgument, "\(what): \(field) must be a string") }
        return text
    }

    func array(_ field: String) throws -> [JSONValue]? {
        guard let found = try member(field) else { return nil }
        guard let items = found.arrayValue else { throw ECIError(.invalidArgument, "\(what): \(field) must be an array") }
        return items
    }

    func object(_ field: String) throws -> FoldedObject? {
        guard let found = try member(field) else { return nil }
        return try FoldedObject(found, what: "\(what).\(field)")
    }

    /// A map[string]string: its keys are data, matched exactly (as the engine does).
    func stringMap(_ field: String) throws -> [String: String] {
        guard let found = try member(field) else { return [:] }
        guard case let .object(members) = found else { throw ECIError(.invalidArgument, "\(what): \(field) must be an object") }
        var map: [String: String] = [:]
        for (key, item) in members {
            guard let text = item.stringValue else { throw ECIError(.invalidArgument, "\(what): \(field).\(key) must be a string") }
            map[key] = text
        }
        return map
    }

    /// Sets `field` under its canonical spelling, dropping every other spelling.
    mutating func set(_ field: String, _ newValue: JSONValue) {
        guard case var .object(members) = value else { return }
        let folded = Self.fold(field)
        if let index = members.firstIndex(where: { Self.fold($0.key) == folded }) {
            members[index] = (field, newValue)
            members = members.enumerated().filter { $0.offset == index || Self.fold($0.element.key) != folded }.map(\.element)
        } else {
            members.append((field, newValue))
        }
        value = .object(members)
    }
}
