import ECIIO
import Glibc

/// SIGINT, SIGTERM and SIGHUP mean "stop the VM cleanly"; one thread takes them with sigwait.
public enum StopSignals {
    /// Blocks the stop signals in the calling thread. Call it first thing in the process,
    /// before any thread exists (Foundation's Process starts one): threads inherit the mask,
    /// and a thread without it would let the default action kill the supervisor mid-run. QEMU
    /// gets a clear mask from eci_spawn_bound.
    @discardableResult
    public static func block() -> sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        return signals
    }

    /// Takes the stop signals on a thread of their own and calls `action` with each.
    static func handle(_ action: @escaping @Sendable (Int32) -> Void) throws {
        let signals = block()
        try DetachedThread.start {
            var set = signals
            var caught: Int32 = 0
            while sigwait(&set, &caught) == 0 { action(caught) }
        }
    }
}
