import ECICore
import ECIOCI

/// Everything the single-threaded staging helper needs to prepare a container's filesystems
/// in its private mount namespace and then exec runc there. Written by the parent eci-runc
/// (which decides) and read by the helper (which only carries out).
public struct StagePlan: Sendable, Codable {
    /// A path under one of the idmapped roots.
    public struct LayerPath: Sendable, Codable, Equatable {
        public var root: Int
        public var relative: String
    }

    /// How the container's root filesystem is made.
    public enum Rootfs: Sendable, Codable, Equatable {
        /// A new overlay on idmapped layers: `roots` are cloned and idmapped once each, the
        /// layers are addressed under them.
        case overlay(roots: [String], lowers: [LayerPath], upper: LayerPath, work: LayerPath)
        /// An idmapped bind of a plain directory.
        case directory(String)
    }

    /// Base of the container's ID range (container root's host ID).
    public var rangeBase: UInt32
    /// Mount point of the helper's private tmpfs, where everything is staged.
    public var stageRoot: String
    /// Where the helper writes the final config.json (the bundle runc is given).
    public var bundleDirectory: String
    /// The spec after the isolation rewrite; bind sources are absolute and still the originals.
    public var spec: String
    public var rootfs: Rootfs
    /// The real runc and its full argument vector (argv[0] included).
    public var runcPath: String
    public var runcArguments: [String]
    /// Where warnings go (runc's --log and --log-format).
    public var logPath: String?
    public var logFormat: String
}
