import ECICore
import ECIOCI
import ECIPolicy
import ECIRuntime
import Foundation
import Glibc
import Logging

/// runc's message with a notify fd (runtime-spec "container process state").
public struct HandOver: Sendable, Equatable {
    public var fds: [String]
    /// The process the fd's filter belongs to (init at create, the new process at exec).
    public var pid: Int32
    public var metadata: String?
    public var containerID: String
    public var status: String
    /// The container's init.
    public var initPID: Int32
    public var bundle: String?

    public init(json: [UInt8]) throws {
        let doc = try JSONValue.parse(json)
        guard let state = doc["state"], let id = state["id"]?.stringValue, !id.isEmpty,
            let pid = doc["pid"]?.int64Value, let pid32 = Int32(exactly: pid), pid32 > 0
        else { throw ECIError(.invalidArgument, "runc's message lacks pid or state.id") }
        fds = (doc["fds"]?.arrayValue ?? []).compactMap(\.stringValue)
        self.pid = pid32
        metadata = doc["metadata"]?.stringValue
        containerID = id
        status = state["status"]?.stringValue ?? ""
        initPID = state["pid"]?.int64Value.flatMap { Int32(exactly: $0) } ?? pid32
        bundle = state["bundle"]?.stringValue
    }
}

/// The containers ecid supervises, each with its initial mounts and the number of notify fds
/// (init's, and one per exec) still open.
final class Registry: @unchecked Sendable {
    final class Container: @unchecked Sendable {
        let id: String
        let initial: MountCallPolicy.InitialMounts
        var fds = 0
        private let callLock = NSLock()

        init(id: String, initial: MountCallPolicy.InitialMounts) {
            self.id = id
            self.initial = initial
        }

        func serialized<T>(_ body: () -> T) -> T { callLock.withLock(body) }
    }

    private let lock = NSLock()
    private var containers: [String: Container] = [:]

    var count: Int { lock.withLock { containers.count } }

    /// The container for a hand-over: the known one (an exec), or a new record whose initial
    /// mounts are read now, before any of its trapped calls is answered.
    func attach(_ message: HandOver, log: Logger) throws -> Container {
        if let known = lock.withLock({ containers[message.containerID] }) {
            lock.withLock { known.fds += 1 }
            return known
        }
        let initial = try Self.initialMounts(of: message, log: log)
        return lock.withLock {
            let container = containers[message.containerID] ?? Container(id: message.containerID, initial: initial)
            containers[message.containerID] = container
            container.fds += 1
            return container
        }
    }

    func detach(_ container: Container) {
        lock.withLock {
            container.fds -= 1
            if container.fds <= 0, containers[container.id] === container { containers[container.id] = nil }
        }
    }

    /// The container's mounts as its init sees them (runc sends the fd after the masks and
    /// read-only paths are in place, before the container's own program runs), plus the spec's
    /// masked and read-only paths from the bundle runc ran.
    static func initialMounts(of message: HandOver, log: Logger) throws -> MountCallPolicy.InitialMounts {
        let text = try FileSystem.readText("/proc/\(message.initPID)/mountinfo")
        let mounts = MountInfo.parse(text).map(MountHelper.policyMount)
        var masked: [String] = []
        var readonly: [String] = []
        if let bundle = message.bundle, let bytes = try? FileSystem.read(join(bundle, "config.json")), let spec = try? JSONValue.parse(bytes) {
            masked = (spec["linux"]?["maskedPaths"]?.arrayValue ?? []).compactMap(\.stringValue)
            readonly = (spec["linux"]?["readonlyPaths"]?.arrayValue ?? []).compactMap(\.stringValue)
        } else {
            log.warning("bundle unreadable: masks protected by their place under /proc and /sys only", metadata: ["container": "\(message.containerID)"])
        }
        guard !mounts.isEmpty else { throw ECIError(.invalidState, "container \(message.containerID): no mounts in /proc/\(message.initPID)/mountinfo") }
        return MountCallPolicy.InitialMounts(mounts: mounts, maskedPaths: masked, readonlyPaths: readonly)
    }
}
