import CShim
import ECICore
import ECIPolicy
import Glibc

/// Judges a bind source by what the kernel says it is, whatever the engine sent and whatever
/// the API filter let through (the runtime holds alone):
///
/// - its file system (statfs of the open fd, and mountinfo's type for what statfs cannot tell
///   apart) is no kernel pseudo file system, and, for a recursive bind, no mount below it is one
///   nor shows a restricted directory under any of its names;
/// - a stacked file system (overlayfs) at or below it is judged by its layers, each as a bind
///   source of its own (restricted paths, allowed roots, pseudo file systems, engine sockets);
/// - it is no socket the engine's processes listen on, and no directory holding one
///   (`EngineListeners`, scanned once, only when a source could be either).
struct SourceIdentityJudge {
    let policy: RestrictedMountPolicy
    let restricted: [String]
    let containerID: String
    let mounts: [MountInfoEntry]
    /// Scanned at the first source that is a directory or a socket; most creates need none.
    private var listeners: EngineListeners?

    /// overlayfs can stack at most two levels (FILESYSTEM_MAX_STACK_DEPTH); deeper is refused.
    static let maximumDepth = 3

    init(policy: RestrictedMountPolicy, restricted: [String], containerID: String, mounts: [MountInfoEntry]) {
        self.policy = policy
        self.restricted = restricted
        self.containerID = containerID
        self.mounts = mounts
    }

    /// Checks the source opened at `fd` (named `source` in the spec, resolved to `resolved`,
    /// reachable under `names`). `recursive`: the bind carries the mounts below it.
    mutating func check(source: String, fd: Int32, resolved: String, names: [String], recursive: Bool) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ECIError.system("fstat bind mount source \(source)", errno: errno) }
        let magic = eci_fs_magic(fd)
        guard magic >= 0 else { throw ECIError.system("fstatfs bind mount source \(source)", errno: Int32(-magic)) }
        if case let .refuse(reason) = BindSourcePolicy.handling(magic: Int(magic), fileType: UInt32(st.st_mode & S_IFMT)) {
            throw ECIError(.refused, "can't mount \(source) because \(reason)")
        }
        let containing = MountInfo.containingMount(of: resolved, in: mounts)
        if Int(magic) == BindSourcePolicy.Magic.overlay, containing.map({ StackedSourcePolicy.overlayTypes.contains($0.fsType) }) != true {
            // The fd is on an overlay that mountinfo does not show where the source is: its
            // layers can't be read, so it can't be judged.
            throw ECIError(.refused, "can't mount \(source) because it's an overlay whose layers can't be found in mountinfo")
        }
        if let containing { try judge(containing, source: source, below: nil, depth: 0) }
        if recursive {
            for name in names {
                for entry in mounts where entry.mountPoint != name && isWithin(entry.mountPoint, name) {
                    // What the mount below shows, under every name the VM has for it, is judged
                    // as a source of its own: an rbind carried a VM-side mount of ECI's state
                    // directory into a container (an attack round), which no name of the
                    // source itself showed.
                    let shown = MountSources.aliases(of: entry.mountPoint, mounts: mounts)
                    try policy.check(source: "\(source) (the mount below it at \(entry.mountPoint))", names: shown, restricted: restricted, containerID: containerID)
                    try judge(entry, source: source, below: entry.mountPoint, depth: 0)
                }
            }
        }
        // The container-facing socket is admitted by name (exactSources) and the engine's own
        // files for this container are its own: neither is an engine listener to look for.
        let exempt = policy.exactSources.contains(lexicallyClean(source)) || policy.engineFiles(containerID: containerID).contains(resolved)
        if !exempt { try checkListeners(what: source, st) }
    }

    /// A mount runc makes itself from layers (a non-bind `overlay` in the spec): runc mounts it in
    /// the container's namespaces while the VM's tree is still visible there, so `lowerdir=/etc`
    /// would show the VM's /etc. Each layer is judged as a bind source of its own; options that
    /// can't be read are refused.
    mutating func checkStackedMount(destination: String, options: [String]) throws {
        let what = "the overlay at \(destination)"
        switch StackedSourcePolicy.overlayLayers(options) {
        case .notStacked:
            return
        case let .unreadable(why):
            throw ECIError(.refused, "can't mount \(what) because it can't be judged: \(why)")
        case let .layers(layers):
            for layer in layers { try judgeLayer(layer, source: what, depth: 1) }
        }
    }

    /// Refuses a mount (the one holding the source, or one below it at `below`) that is a
    /// pseudo file system, or a stacked one with a layer that may not be bound.
    private mutating func judge(_ mount: MountInfoEntry, source: String, below: String?, depth: Int) throws {
        if BindSourcePolicy.pseudoFileSystemTypes.contains(mount.fsType) {
            throw ECIError(.refused, BindSourcePolicy.pseudoRefusal(source: source, fileSystem: mount.fsType, below: below))
        }
        switch StackedSourcePolicy.layers(fsType: mount.fsType, source: mount.source, superOptions: mount.superOptions) {
        case .notStacked:
            return
        case let .unreadable(why):
            let which = below.map { "the \(mount.fsType) mounted below it at \($0)" } ?? "its \(mount.fsType) mount at \(mount.mountPoint)"
            throw ECIError(.refused, "can't mount \(source) because \(which) can't be judged: \(why)")
        case let .layers(layers):
            for layer in layers { try judgeLayer(layer, source: source, depth: depth + 1) }
        }
    }

    /// A layer is judged as a bind source of its own; refusals name the layer.
    private mutating func judgeLayer(_ layer: String, source: String, depth: Int) throws {
        let what = "\(source) (overlay layer \(layer))"
        guard depth <= Self.maximumDepth else { throw ECIError(.refused, "can't mount \(what) because its file systems are stacked too deep to judge") }
        let fd = eci_open_path(layer)
        guard fd >= 0 else { throw ECIError(.refused, "can't mount \(what) because the layer can't be opened to be judged: \(errnoDescription(-fd))") }
        defer { close(fd) }
        guard let resolved = KernelMounts.resolvedPath(of: fd) else { throw ECIError(.refused, "can't mount \(what) because the layer can't be resolved") }
        var names = [lexicallyClean(layer)]
        for alias in MountSources.aliases(of: resolved, mounts: mounts) where !names.contains(alias) { names.append(alias) }
        try policy.check(source: what, names: names, restricted: restricted, containerID: containerID)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ECIError.system("fstat \(layer)", errno: errno) }
        let magic = eci_fs_magic(fd)
        guard magic >= 0 else { throw ECIError.system("fstatfs \(layer)", errno: Int32(-magic)) }
        if case let .refuse(reason) = BindSourcePolicy.handling(magic: Int(magic), fileType: UInt32(st.st_mode & S_IFMT)) {
            throw ECIError(.refused, "can't mount \(what) because \(reason)")
        }
        try checkListeners(what: what, st)
        if let containing = MountInfo.containingMount(of: resolved, in: mounts) {
            try judge(containing, source: what, below: nil, depth: depth)
        }
    }

    /// Refuses an engine socket, or a directory holding one.
    private mutating func checkListeners(what: String, _ st: stat) throws {
        let type = st.st_mode & S_IFMT
        guard type == S_IFSOCK || type == S_IFDIR else { return }
        if listeners == nil { listeners = EngineListeners.scan() }
        guard let (listener, contained) = listeners?.listener(for: FileIdentity(st), isDirectory: type == S_IFDIR) else { return }
        if contained {
            throw ECIError(
                .refused,
                "can't mount \(what) because it's configured as a restricted host mount (it holds the engine's socket \(listener.path): \(listener.command), pid \(listener.pid), listens on it)")
        }
        throw ECIError(
            .refused, "can't mount \(what) because it's configured as a restricted host mount (it's the engine's socket \(listener.path): \(listener.command), pid \(listener.pid), listens on it)")
    }
}
