import ECICore
import ECIOCI

/// ECI's keys of an `admin-settings.json` (Docker Desktop's format), which the agent reads
/// from the image or from the host at boot. Everything else in the file is ignored; a
/// malformed ECI section is an error (the engine then stays stopped: fail closed).
public struct AdminSettings: Sendable, Equatable {
    /// `dockerSocketMount.imageList.images`: images whose containers may mount the engine socket.
    public var socketMountImages: [ImageReference]
    /// Every image may mount the socket (`"*"` in the list).
    public var socketMountAnyImage: Bool
    /// `dockerSocketMount.imageList.allowDerivedImages` (default true).
    public var allowDerivedImages: Bool
    /// `dockerSocketMount.commandList`.
    public var commandList: CommandList
    /// `networkVolumeTypes`: the network file systems local volumes may mount (`nfs`, `nfs4`,
    /// `cifs`, `smb3`), named one by one; none by default. The VM's kernel mounts whatever server
    /// a volume names, so the admin opts in per type (and the filter adds `nosuid,nodev`).
    public var networkVolumeTypes: [String]

    /// The local driver's network file-system types an admin may allow.
    public static let networkVolumeTypeChoices = ["nfs", "nfs4", "cifs", "smb3"]

    /// Nothing may mount the socket; every command is allowed through it (nothing mounts it);
    /// no network volume.
    public static let defaults = AdminSettings(socketMountImages: [], socketMountAnyImage: false, allowDerivedImages: true, commandList: CommandList(type: .deny, patterns: []))

    public init(socketMountImages: [ImageReference], socketMountAnyImage: Bool, allowDerivedImages: Bool, commandList: CommandList, networkVolumeTypes: [String] = []) {
        self.socketMountImages = socketMountImages
        self.socketMountAnyImage = socketMountAnyImage
        self.allowDerivedImages = allowDerivedImages
        self.commandList = commandList
        self.networkVolumeTypes = networkVolumeTypes
    }

    /// The keys of `enhancedContainerIsolation`: Docker Desktop's (`value`, `locked`,
    /// `dockerSocketMount`) and ECI's own. Any other is an error: a typo must not silently
    /// leave a setting at its default.
    static let sectionKeys = ["value", "locked", "dockerSocketMount", "networkVolumeTypes"]

    /// Parses the file's bytes; `source` names it in errors.
    public static func parse(_ bytes: [UInt8], source: String) throws -> AdminSettings {
        let document = try JSONValue.parse(bytes)
        guard document.isObject else { throw ECIError(.invalidArgument, "\(source): not a JSON object") }
        guard let eci = document["enhancedContainerIsolation"] else { return .defaults }
        guard case let .object(members) = eci else { throw ECIError(.invalidArgument, "\(source): enhancedContainerIsolation must be an object") }
        for (key, _) in members where !sectionKeys.contains(key) {
            throw ECIError(.invalidArgument, "\(source): enhancedContainerIsolation has an unknown key \"\(key)\" (known: \(sectionKeys.joined(separator: ", ")))")
        }
        var settings = AdminSettings.defaults
        if let types = eci["networkVolumeTypes"] {
            settings.networkVolumeTypes = try networkVolumeTypes(types, source)
        }
        guard let socket = eci["dockerSocketMount"] else { return settings }
        if let list = socket["imageList"] {
            if let images = list["images"] {
                guard let items = images.arrayValue else { throw field(source, "imageList.images", "must be an array of strings") }
                for item in items {
                    guard let text = item.stringValue else { throw field(source, "imageList.images", "must be an array of strings") }
                    if text == "*" {
                        settings.socketMountAnyImage = true
                    } else {
                        guard let reference = ImageReference(text) else { throw field(source, "imageList.images", "\"\(text)\" is not an image reference") }
                        settings.socketMountImages.append(reference)
                    }
                }
            }
            if let derived = list["allowDerivedImages"] {
                guard let value = derived.boolValue else { throw field(source, "imageList.allowDerivedImages", "must be true or false") }
                settings.allowDerivedImages = value
            }
        }
        if let commands = socket["commandList"] {
            var type = CommandList.ListType.deny
            if let t = commands["type"] {
                guard let text = t.stringValue, let parsed = CommandList.ListType(rawValue: text) else {
                    throw field(source, "commandList.type", "must be \"allow\" or \"deny\"")
                }
                type = parsed
            }
            var patterns: [String] = []
            if let list = commands["commands"] {
                guard let items = list.arrayValue?.compactMap(\.stringValue), items.count == list.arrayValue?.count else {
                    throw field(source, "commandList.commands", "must be an array of strings")
                }
                patterns = items
            }
            settings.commandList = CommandList(type: type, patterns: patterns)
        }
        return settings
    }

    /// `networkVolumeTypes`: an array of distinct names among `networkVolumeTypeChoices`.
    static func networkVolumeTypes(_ value: JSONValue, _ source: String) throws -> [String] {
        let problem = "must be an array of distinct names among \(networkVolumeTypeChoices.joined(separator: ", "))"
        guard let items = value.arrayValue else { throw ECIError(.invalidArgument, "\(source): enhancedContainerIsolation.networkVolumeTypes \(problem)") }
        var types: [String] = []
        for item in items {
            guard let name = item.stringValue, networkVolumeTypeChoices.contains(name), !types.contains(name) else {
                throw ECIError(.invalidArgument, "\(source): enhancedContainerIsolation.networkVolumeTypes \(problem), not \(item.serialized())")
            }
            types.append(name)
        }
        return types
    }

    static func field(_ source: String, _ name: String, _ problem: String) -> ECIError {
        ECIError(.invalidArgument, "\(source): enhancedContainerIsolation.dockerSocketMount.\(name) \(problem)")
    }
}

/// An image reference normalised as the engine does: `docker:cli` is
/// `docker.io/library/docker:cli`, no tag means `latest`, `*` as tag means any tag.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// Registry and repository, e.g. "docker.io/library/docker".
    public var name: String
    /// A tag, "*" for any, or nil when a digest is given.
    public var tag: String?
    /// "sha256:…" when the reference pins a digest.
    public var digest: String?

    public init?(_ text: String) {
        guard !text.isEmpty, !text.contains(" ") else { return nil }
        var rest = text
        if let at = rest.firstIndex(of: "@") {
            let digest = String(rest[rest.index(after: at)...])
            guard digest.hasPrefix("sha256:"), digest.count == 71 else { return nil }
            self.digest = digest
            rest = String(rest[..<at])
        }
        // A ":" after the last "/" is a tag separator (before it, a registry port).
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = String(rest[..<colon])
            guard tag?.isEmpty == false else { return nil }
        } else if digest == nil {
            tag = "latest"
        }
        guard !rest.isEmpty, rest.allSatisfy({ $0.isLowercase || $0.isNumber || "._-/:".contains($0) }) else { return nil }
        var parts = rest.split(separator: "/").map(String.init)
        let first = parts.first ?? ""
        let hasRegistry = parts.count > 1 && (first.contains(".") || first.contains(":") || first == "localhost")
        if !hasRegistry {
            if parts.count == 1 { parts.insert("library", at: 0) }
            parts.insert("docker.io", at: 0)
        }
        name = parts.joined(separator: "/")
    }

    public var description: String {
        name + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0 } ?? "")
    }
}
