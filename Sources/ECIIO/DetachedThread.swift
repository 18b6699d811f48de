import CShim
import ECICore
import Glibc
import Synchronization

/// The one way ECI starts a thread: a detached POSIX thread for blocking I/O (a connection
/// direction, an accept loop, a reaper). Starting one can fail (no memory, the thread limit),
/// so `start` throws and every caller decides what that failure means for its work.
public enum DetachedThread {
    private final class Box {
        let name: String?
        let body: @Sendable () -> Void
        init(_ name: String?, _ body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    private static let live = Mutex(0)

    /// How many threads started here are still running (tests check none is leaked).
    public static var running: Int { live.withLock { $0 } }

    /// Runs `body` on a new detached thread.
    /// - Parameters:
    ///   - name: the thread's name in ps and gdb (cut to 15 bytes).
    ///   - stackSize: bytes of stack; nil for the system default (threads that run callers'
    ///     code). Threads that spend their life blocked in read or write need little.
    /// - Throws: `ECIError.system("pthread_create", errno:)`; `body` then never runs.
    public static func start(_ name: String? = nil, stackSize: Int? = 512 * 1024, _ body: @escaping @Sendable () -> Void) throws {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
        live.withLock { $0 += 1 }
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            if let name = box.name { eci_set_thread_name(name) }
            box.body()
            DetachedThread.live.withLock { $0 -= 1 }
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(context).release()
            live.withLock { $0 -= 1 }
            throw ECIError.system("pthread_create", errno: rc)
        }
    }
}
