import ECICore

/// Where a container's cgroup may be: under the engine's own parents.
///
/// The API filter refuses a cgroup parent on `run`, `build` and `update`, but a BuildKit build
/// step takes its cgroup parent from the build's LLB (a `cgroup-parent` frontend attribute over
/// `/grpc`, or any `# syntax=` frontend), which no filter can read. Every step runs in eci-runc,
/// so the runtime holds the line alone: `linux.cgroupsPath` must lie below one of the policy's
/// `cgroupParents`, whatever the engine or BuildKit sent.
public enum CgroupPathPolicy {
    /// Refuses `path` (the spec's `linux.cgroupsPath`; nil when absent, which runc places at
    /// `/<id>`, a place no request chooses) unless it lies below one of `parents`.
    ///
    /// - cgroupfs form (`/docker/<id>`, BuildKit's `/docker/buildkit/<id>`): an absolute path
    ///   without `.` or `..` components, strictly below a parent given as an absolute path.
    /// - systemd form (`system.slice:docker:<id>`, with `--systemd-cgroup`): exactly three
    ///   fields, `slice:prefix` equal to a parent given in that form, and a name without `/`.
    public static func check(_ path: String?, parents: [String]) throws {
        guard let path, !path.isEmpty else { return }
        let refusal = ECIError(
            .refused, "enhanced container isolation: cgroup path \"\(path)\" is outside the engine's cgroups (\(parents.joined(separator: ", "))); a cgroup parent is not allowed")
        if path.hasPrefix("/") {
            let components = path.split(separator: "/", omittingEmptySubsequences: true)
            guard !components.contains(where: { $0 == "." || $0 == ".." || $0.contains(":") }) else { throw refusal }
            let clean = "/" + components.joined(separator: "/")
            guard parents.contains(where: { $0.hasPrefix("/") && clean != lexicallyClean($0) && isWithin(clean, lexicallyClean($0)) }) else { throw refusal }
            return
        }
        let fields = path.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 3, !fields[2].isEmpty, !fields[2].contains("/"), fields[2] != "..", fields[2] != "." else { throw refusal }
        // runc's systemd driver takes a name ending in ".slice" as the unit itself, which systemd
        // places by its dashes (`user-1000.slice`), not as a scope inside the parent slice.
        guard !fields[2].lowercased().hasSuffix(".slice") else { throw refusal }
        guard parents.contains(fields[0] + ":" + fields[1]) else { throw refusal }
    }
}
