import ECICore

/// Bind sources whose file system stacks other directories (overlayfs, eCryptfs): what the
/// container sees is those directories, so they are judged like bind sources themselves.
///
/// The layers are read from the super options the kernel shows in mountinfo. Only a fully
/// understood option list is accepted: an unknown option, a relative path or a malformed layer
/// list could hide a layer, so anything unparseable refuses the source (fail closed).
public enum StackedSourcePolicy {
    /// What a mount's options say about the directories it stacks.
    public enum Layers: Sendable, Equatable {
        /// Not a stacking file system.
        case notStacked
        /// Absolute paths of every directory the mount shows or writes to (lower, data-only,
        /// upper and work directories), as the mounter named them.
        case layers([String])
        /// The options could not be read with certainty: refuse.
        case unreadable(String)
    }

    /// File-system types (mountinfo's names) whose content comes from other directories.
    public static let overlayTypes: Set<String> = ["overlay", "overlayfs"]

    /// Overlay options that name no directory, with or without a value (Linux 6.1 to 6.18, plus
    /// the generic super-block flags mountinfo prints).
    static let overlayFlags: Set<String> = [
        "rw", "ro", "sync", "dirsync", "mand", "lazytime", "default_permissions", "volatile", "userxattr", "nouserxattr",
    ]
    static let overlayKeys: Set<String> = ["redirect_dir", "index", "uuid", "nfs_export", "xino", "metacopy", "verity", "override_creds", "fsync"]

    /// The layers of a mount of type `fsType` from mountinfo's `source` and `superOptions`
    /// (already split at the kernel's commas and with its octal escapes undone).
    public static func layers(fsType: String, source: String, superOptions: [String]) -> Layers {
        if fsType == "ecryptfs" {
            // eCryptfs shows its lower directory as the mount source.
            return source.hasPrefix("/") ? .layers([source]) : .unreadable("its eCryptfs lower directory \(source) is not an absolute path")
        }
        guard overlayTypes.contains(fsType) else { return .notStacked }
        return overlayLayers(superOptions)
    }

    /// Reads overlayfs's `lowerdir=` (layers split at unescaped `:`, `::` before data-only
    /// layers), `lowerdir+=`, `datadir+=`, `upperdir=` and `workdir=`; overlayfs's own escape
    /// (a backslash before any character, e.g. `\:` and `\,`) is undone in each path.
    public static func overlayLayers(_ superOptions: [String]) -> Layers {
        var paths: [String] = []
        var lowers = 0
        for option in superOptions {
            guard let equals = option.firstIndex(of: "=") else {
                guard overlayFlags.contains(option) else { return .unreadable("unknown overlay option \"\(option)\"") }
                continue
            }
            let key = String(option[..<equals])
            let value = String(option[option.index(after: equals)...])
            switch key {
            case "lowerdir":
                guard let layers = splitLayerList(value) else { return .unreadable("malformed lowerdir \"\(value)\"") }
                paths += layers
                lowers += layers.count
            case "lowerdir+", "datadir+", "upperdir", "workdir":
                guard let path = unescape(value), !path.isEmpty else { return .unreadable("malformed \(key) \"\(value)\"") }
                paths.append(path)
                if key != "upperdir" && key != "workdir" { lowers += 1 }
            default:
                guard overlayKeys.contains(key) else { return .unreadable("unknown overlay option \"\(option)\"") }
            }
        }
        guard lowers > 0 else { return .unreadable("no lower layer named") }
        if let relative = paths.first(where: { !$0.hasPrefix("/") }) {
            return .unreadable("its layer \(relative) is not an absolute path")
        }
        return .layers(paths)
    }

    /// Splits a `lowerdir=` value at unescaped colons. Data-only layers follow a `::`; any other
    /// empty element (leading, trailing, or `:::`) is malformed. Nil when malformed.
    static func splitLayerList(_ text: String) -> [String]? {
        guard let elements = splitUnescaped(text, at: ":") else { return nil }
        guard let first = elements.first, let last = elements.last, !first.isEmpty, !last.isEmpty else { return nil }
        for (a, b) in zip(elements, elements.dropFirst()) where a.isEmpty && b.isEmpty { return nil }
        return elements.filter { !$0.isEmpty }
    }

    /// Undoes overlayfs's escape: a backslash makes the next character literal. Nil for a
    /// trailing lone backslash.
    static func unescape(_ text: String) -> String? {
        var out = ""
        var escaped = false
        for ch in text {
            if escaped {
                out.append(ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                out.append(ch)
            }
        }
        return escaped ? nil : out
    }
}
