/// What the engine reports about one local image (`GET /images/{name}/json`): enough to tell
/// where it came from, not just what it is called.
public struct ImageFacts: Sendable, Equatable {
    /// The image ID: the digest of its configuration, a content address nothing can forge.
    public var id: String
    /// `name:tag` entries; local and rewritable by anyone with `docker tag`.
    public var repoTags: [String]
    /// `name@sha256:…` entries: manifest digests recorded when the image was pulled from a
    /// registry. `docker tag`, `load` and `import` never add one.
    public var repoDigests: [String]
    /// The image's layer digests (`RootFS.Layers`), bottom first.
    public var layers: [String]

    public init(id: String, repoTags: [String] = [], repoDigests: [String] = [], layers: [String] = []) {
        self.id = id
        self.repoTags = repoTags
        self.repoDigests = repoDigests
        self.layers = layers
    }
}

/// Which containers may mount the engine socket: ECI's image allow-list
/// (`dockerSocketMount.imageList`), decided on what the image *is*, not on what it is called.
///
/// A local tag proves nothing (retagging a disallowed image with an allowed name is the attack),
/// so an entry admits an image only on evidence that cannot be rewritten locally:
/// - `name@sha256:D`: the image's ID is D, or it was pulled from `name` with manifest digest D;
/// - `name:tag` / `name:*`: the container asks for that name and tag, and the engine recorded a
///   registry digest of the image under `name` (it was pulled from that repository);
/// - with `allowDerivedImages`, a local-only image (no registry digest) whose layers extend
///   those of a locally present image the list admits (built `FROM` it).
public struct SocketMountPolicy: Sendable, Equatable {
    public var settings: AdminSettings

    public init(settings: AdminSettings) {
        self.settings = settings
    }

    /// Whether the list admits `image`, which the container names `requested`. `bases` are the
    /// other local images that may be admitted parents (for derived images).
    /// With `requested` nil (a container that exists: its image is known by ID), the image's
    /// own tags stand for the name.
    public func admits(requested: ImageReference?, image: ImageFacts, bases: [ImageFacts]) -> Bool {
        if settings.socketMountAnyImage { return true }
        if let requested {
            if admitsDirectly(requested: requested, image: image) { return true }
        } else if admitsOwnName(image) {
            return true
        }
        guard settings.allowDerivedImages, image.repoDigests.isEmpty else { return false }
        return bases.contains { base in
            base.id != image.id && base.layers.count < image.layers.count
                && Array(image.layers.prefix(base.layers.count)) == base.layers
                && admitsOwnName(base)
        }
    }

    /// Admission without lineage: by digest, or by name with registry provenance.
    func admitsDirectly(requested: ImageReference, image: ImageFacts) -> Bool {
        settings.socketMountImages.contains { entryAdmits($0, names: [requested], image: image) }
    }

    /// A parent is admitted under any of its own tags (it is not what the container asked for).
    func admitsOwnName(_ base: ImageFacts) -> Bool {
        let names = base.repoTags.compactMap(ImageReference.init)
        return settings.socketMountImages.contains { entryAdmits($0, names: names, image: base) }
    }

    func entryAdmits(_ entry: ImageReference, names: [ImageReference], image: ImageFacts) -> Bool {
        let digests = image.repoDigests.compactMap(Self.parseDigest)
        if let digest = entry.digest {
            return image.id == digest || digests.contains { $0.name == entry.name && $0.digest == digest }
        }
        guard digests.contains(where: { $0.name == entry.name }) else { return false }
        return names.contains { $0.name == entry.name && (entry.tag == "*" || entry.tag == $0.tag) }
    }

    /// The names of local images that could be admitted parents: those an entry names.
    public func isCandidateBase(_ image: ImageFacts) -> Bool {
        let names = Set(settings.socketMountImages.map(\.name))
        let own = (image.repoTags + image.repoDigests).compactMap(ImageReference.init).map(\.name)
        return own.contains { names.contains($0) } || settings.socketMountImages.contains { $0.digest == image.id }
    }

    static func parseDigest(_ text: String) -> (name: String, digest: String)? {
        guard let reference = ImageReference(text), let digest = reference.digest else { return nil }
        return (reference.name, digest)
    }

    /// ECI's refusal, worded as Docker Desktop words it.
    public static func refusal(image: String) -> String {
        "enhanced container isolation: docker socket mount denied for container with image \"\(image)\"; image is not in the allowed list; if you wish to allow it, configure the docker socket image list in the admin settings"
    }
}
