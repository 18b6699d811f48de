import ECICore
import ECIOCI

/// What `FilesystemStager` must build for one container: decided by `RootfsPlanner` and the
/// runtime (policy and planning), carried out by the stager (mechanism).
public struct StagePlan: Sendable, Equatable {
    /// A path under one of the idmapped roots.
    public struct LayerPath: Sendable, Equatable {
        public var root: Int
        public var relative: String
    }

    /// How the container's root filesystem is made.
    public enum Rootfs: Sendable, Equatable {
        /// A new overlay on idmapped layers: `roots` are cloned and idmapped once each, the
        /// layers are addressed under them.
        case overlay(roots: [String], lowers: [LayerPath], upper: LayerPath, work: LayerPath)
        /// An idmapped bind of a plain directory.
        case directory(String)
    }

    /// Base of the container's ID range (container root's host ID).
    public var rangeBase: UInt32
    /// Mount point of the private tmpfs where everything is staged.
    public var stageRoot: String
    public var rootfs: Rootfs
}
