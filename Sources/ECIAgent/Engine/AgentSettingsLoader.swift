import ECICore
import ECIContract
import ECIPolicy
import Glibc

// `SettingsOrigin` is the control contract's (ECIContract): the host shows it in `status`.

/// Reads ECI's admin settings: the host's copy if the host passed one, else the image's, else
/// the defaults. A file that is malformed, or that anyone but root could have written, is an
/// error: the agent then keeps the engine stopped rather than guess what the admin meant.
public enum AgentSettingsLoader {
    public struct Loaded: Sendable {
        public var settings: AdminSettings
        public var origin: SettingsOrigin
        /// The file's bytes, copied to the effective-settings file.
        public var bytes: [UInt8]
    }

    public static func load(paths: AgentPaths) throws -> Loaded {
        if FileSystem.exists(paths.hostSettings) {
            return try load(paths.hostSettings, origin: .host, owner: nil)
        }
        if FileSystem.exists(paths.imageSettings) {
            return try load(paths.imageSettings, origin: .image, owner: paths.trustedOwner)
        }
        return Loaded(settings: .defaults, origin: .defaults, bytes: Array("{}\n".utf8))
    }

    /// The settings in force, as `prepare` recorded them.
    public static func loadEffective(paths: AgentPaths) throws -> AdminSettings {
        try AdminSettings.parse(try FileSystem.read(paths.effectiveSettings), source: paths.effectiveSettings)
    }

    static func load(_ path: String, origin: SettingsOrigin, owner: uid_t?) throws -> Loaded {
        // fw_cfg files are the kernel's (root-only by construction); the image's file must be
        // root's (`owner`) and writable by nobody else.
        if let owner {
            var st = stat()
            guard stat(path, &st) == 0 else { throw ECIError.system("stat \(path)", errno: errno) }
            guard st.st_uid == owner, st.st_mode & 0o022 == 0 else {
                throw ECIError(.refused, "\(path) must be owned by root and writable by root only (owner \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)))")
            }
        }
        let bytes = try FileSystem.read(path)
        guard bytes.count <= 1 << 20 else { throw ECIError(.invalidArgument, "\(path) is larger than 1 MiB") }
        return Loaded(settings: try AdminSettings.parse(bytes, source: path), origin: origin, bytes: bytes)
    }
}
