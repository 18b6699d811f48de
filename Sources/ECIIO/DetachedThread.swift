import ECICore
import Foundation
import Glibc

/// Starts detached POSIX threads for blocking I/O (one per connection direction).
public enum DetachedThread {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var live = 0

    /// How many threads started here are still running (tests check none is leaked).
    public static var running: Int { lock.withLock { live } }

    /// Runs `body` on a new detached thread with a `stackSize`-byte stack.
    public static func start(stackSize: Int = 512 * 1024, _ body: @escaping @Sendable () -> Void) throws {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, stackSize)
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        lock.withLock { live += 1 }
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            box.body()
            DetachedThread.lock.withLock { DetachedThread.live -= 1 }
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(context).release()
            lock.withLock { live -= 1 }
            throw ECIError.system("pthread_create", errno: rc)
        }
    }
}
