import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// State shared between threads that some of them wait on ("until QEMU exited or a stop was
/// asked", "until the response to request 7 arrived").
///
/// `Mutex<State>` (Synchronization) is the rule for shared state; it has no condition variable,
/// so state that threads *wait on* lives here instead: the same closure-scoped access (the
/// state cannot be touched without the lock), plus waiting. Every `withLock` wakes the waiters,
/// which re-check their predicate, so no caller has to remember to signal.
public final class WaitableState<State: Sendable>: @unchecked Sendable {
    // @unchecked: `state` is read and written only between `condition.lock()` and
    // `condition.unlock()` (in `withLock` and `wait`), and never escapes them but by copy.
    private let condition = PthreadCondition()
    private var state: State

    public init(_ initial: State) {
        state = initial
    }

    /// Runs `body` with the state locked, then wakes every waiter.
    public func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return try body(&state)
    }

    /// Waits until `ready` returns a value (it runs with the state locked, after every change),
    /// or until `timeout` has passed (nil: no limit). Returns nil on timeout.
    @discardableResult
    public func wait<Result>(timeout: Duration? = nil, until ready: (inout State) throws -> Result?) rethrows -> Result? {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.seconds) }
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let result = try ready(&state) { return result }
            if let deadline {
                guard condition.wait(until: deadline) else { return try ready(&state) }
            } else {
                condition.wait()
            }
        }
    }
}
