import ECICore

/// One option a kernel-config fragment requires.
public struct KernelRequirement: Sendable, Equatable {
    public var option: String
    /// The requested value ("y"; "m" or "n" are taken literally).
    public var value: String
    /// The module that provides it when built as `=m` (`# module: NAME`).
    public var module: String?
    /// Reported but never failing (`# optional: WHY`).
    public var optional: Bool
    /// Where it was declared, e.g. "filesystems.conf:9".
    public var origin: String
}

/// The fragments in `kernel-config/` and the minimum kernel version.
public struct KernelFragments: Sendable, Equatable {
    public var requirements: [KernelRequirement]
    public var minimumVersion: KernelVersion

    /// Parses one fragment. Lines are `CONFIG_X=V`, `# CONFIG_X is not set`, comments and
    /// blanks; a `# module: NAME` or `# optional: WHY` comment applies to the next option.
    public static func parseFragment(_ text: String, name: String) throws -> [KernelRequirement] {
        var out: [KernelRequirement] = []
        var module: String?
        var optional = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let origin = "\(name):\(index + 1)"
            if line.hasPrefix("# module:") {
                module = line.dropFirst("# module:".count).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("# optional:") {
                optional = true
            } else if line.hasPrefix("# CONFIG_"), line.hasSuffix(" is not set") {
                let option = String(line.dropFirst(2).dropLast(" is not set".count))
                out.append(KernelRequirement(option: option, value: "n", module: nil, optional: optional, origin: origin))
                (module, optional) = (nil, false)
            } else if line.hasPrefix("CONFIG_") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[1].isEmpty, parts[0].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) else {
                    throw ECIError(.invalidArgument, "\(origin): expected CONFIG_NAME=VALUE, got \"\(line)\"")
                }
                out.append(KernelRequirement(option: parts[0], value: parts[1], module: module, optional: optional, origin: origin))
                (module, optional) = (nil, false)
            } else if !line.isEmpty && !line.hasPrefix("#") {
                throw ECIError(.invalidArgument, "\(origin): not an option or a comment: \"\(line)\"")
            }
        }
        return out
    }

    /// Loads every `*.conf` in `directory` (sorted) and `minimum-version`.
    public static func load(directory: String) throws -> KernelFragments {
        let names = try FileSystem.listDirectory(directory).filter { $0.hasSuffix(".conf") }.sorted()
        guard !names.isEmpty else { throw ECIError(.notFound, "no kernel-config fragments (*.conf) in \(directory)") }
        var requirements: [KernelRequirement] = []
        for name in names {
            requirements += try parseFragment(try FileSystem.readText(join(directory, name)), name: name)
        }
        let versionText = try FileSystem.readText(join(directory, "minimum-version")).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let version = KernelVersion(versionText) else {
            throw ECIError(.invalidArgument, "\(directory)/minimum-version: \"\(versionText)\" is not a kernel version")
        }
        return KernelFragments(requirements: requirements, minimumVersion: version)
    }
}

/// A kernel release, compared by its numeric parts ("6.12.117+deb13-cloud-amd64" → 6.12.117).
public struct KernelVersion: Sendable, Comparable, CustomStringConvertible {
    public var parts: [Int]

    public init?(_ text: String) {
        let numeric = text.prefix { $0.isNumber || $0 == "." }
        let parts = numeric.split(separator: ".").compactMap { Int($0) }
        guard !parts.isEmpty else { return nil }
        self.parts = parts
    }

    /// Equal when every part is (missing parts count as 0: 6.3 == 6.3.0).
    public static func == (a: KernelVersion, b: KernelVersion) -> Bool { !(a < b) && !(b < a) }

    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        for i in 0..<max(a.parts.count, b.parts.count) {
            let x = i < a.parts.count ? a.parts[i] : 0
            let y = i < b.parts.count ? b.parts[i] : 0
            if x != y { return x < y }
        }
        return false
    }

    public var description: String { parts.map(String.init).joined(separator: ".") }
}

/// A kernel `.config`: option → value ("y", "m", a number or a string; "n" for "is not set").
public struct KernelConfigFile: Sendable, Equatable {
    public var values: [String: String]

    public init(text: String) {
        var values: [String: String] = [:]
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("# CONFIG_"), line.hasSuffix(" is not set") {
                values[String(line.dropFirst(2).dropLast(" is not set".count))] = "n"
            } else if line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") {
                values[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        self.values = values
    }
}

/// What the image does with modules: which exist in it and which it loads at boot.
public struct KernelModules: Sendable, Equatable {
    /// Module names present under /lib/modules/VERSION (dashes as underscores).
    public var available: Set<String>
    /// Module names loaded at boot (modules-load.d, initramfs-tools' modules list).
    public var loadedAtBoot: Set<String>

    public init(available: Set<String>, loadedAtBoot: Set<String>) {
        self.available = Set(available.map(Self.normalize))
        self.loadedAtBoot = Set(loadedAtBoot.map(Self.normalize))
    }

    static func normalize(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }
}

/// The result of checking a kernel against the fragments.
public struct KernelCheckReport: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Built in (or, for a non-"y" request, exactly the requested value).
        case builtIn = "=y"
        /// A module that is in the image and loaded at boot.
        case module = "=m"
        case missing
    }

    public struct Line: Sendable, Equatable {
        public var requirement: KernelRequirement
        public var actual: String?
        public var status: Status
        public var note: String
    }

    public var lines: [Line]
    public var version: KernelVersion?
    public var minimumVersion: KernelVersion

    public var versionOK: Bool { version.map { $0 >= minimumVersion } ?? false }
    /// Required options that are missing.
    public var failures: [Line] { lines.filter { $0.status == .missing && !$0.requirement.optional } }
    public var passed: Bool { failures.isEmpty && versionOK }

    /// Checks `config` against `fragments`. `modules` describes the image; without it an `=m`
    /// option cannot be shown to be present and loaded, and counts as missing.
    public static func check(_ config: KernelConfigFile, fragments: KernelFragments, version: KernelVersion?, modules: KernelModules?) -> KernelCheckReport {
        let lines = fragments.requirements.map { requirement -> Line in
            let actual = config.values[requirement.option]
            func line(_ status: Status, _ note: String) -> Line { Line(requirement: requirement, actual: actual, status: status, note: note) }
            if requirement.value != "y" {
                return actual == requirement.value || (requirement.value == "n" && actual == nil)
                    ? line(.builtIn, "") : line(.missing, "requested \(requirement.value)")
            }
            switch actual {
            case "y": return line(.builtIn, "")
            case "m":
                guard let module = requirement.module else { return line(.missing, "built as a module, and no module name is declared to verify it") }
                guard let modules else { return line(.missing, "module \(module): not verifiable without an image") }
                let name = KernelModules.normalize(module)
                guard modules.available.contains(name) else { return line(.missing, "module \(module) is not in the image") }
                guard modules.loadedAtBoot.contains(name) else { return line(.missing, "module \(module) is not loaded at boot") }
                return line(.module, "module \(module), loaded at boot")
            default: return line(.missing, actual == nil ? "not in the kernel" : "is \(actual ?? "")")
            }
        }
        return KernelCheckReport(lines: lines, version: version, minimumVersion: fragments.minimumVersion)
    }

    /// Modules the image must load at boot for its `=m` requirements to count.
    public static func modulesToLoad(_ config: KernelConfigFile, fragments: KernelFragments) -> [String] {
        fragments.requirements.compactMap { config.values[$0.option] == "m" ? $0.module : nil }
    }

    /// A table for people: one line per option.
    public var text: String {
        var out = lines.map { line in
            let flag = line.requirement.optional ? "optional" : "required"
            let status = line.status == .missing && line.requirement.optional ? "missing (optional)" : line.status.rawValue
            let option = line.requirement.option.padding(toLength: 36, withPad: " ", startingAt: 0)
            return "\(option) \(flag.padding(toLength: 9, withPad: " ", startingAt: 0)) \(status.padding(toLength: 19, withPad: " ", startingAt: 0)) \(line.note)"
        }
        out.append("kernel version \(version?.description ?? "unknown") (minimum \(minimumVersion)): \(versionOK ? "ok" : "too old")")
        out.append(passed ? "kernel check passed" : "kernel check FAILED: \(failures.count) required option(s) missing\(versionOK ? "" : ", kernel too old")")
        return out.joined(separator: "\n")
    }
}
