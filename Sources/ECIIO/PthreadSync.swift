#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A pthread mutex, for the few places that lock and unlock across statements (a write lock
/// held for a whole frame, two locks taken in order) where `Mutex<State>`'s closure does not fit.
///
/// It replaces `NSLock`: that type is in full Foundation only, and the modules the agent links
/// use FoundationEssentials, so the static agent does not carry Foundation and its ICU data.
public final class PthreadMutex: @unchecked Sendable {
    // @unchecked: the pthread mutex is the synchronisation; `raw` is set once and never moves
    // (pthread objects must not be copied).
    let raw: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        raw = .allocate(capacity: 1)
        raw.initialize(to: pthread_mutex_t())
        pthread_mutex_init(raw, nil)
    }

    deinit {
        pthread_mutex_destroy(raw)
        raw.deallocate()
    }

    public func lock() { pthread_mutex_lock(raw) }
    public func unlock() { pthread_mutex_unlock(raw) }

    /// Runs `body` with the mutex held.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A pthread condition variable used with a `PthreadMutex` that several of them may share (a
/// tunnel keeps one lock and a condition per kind of waiter, so a frame wakes only the threads
/// it concerns). Callers loop on their predicate.
public final class PthreadConditionVariable: @unchecked Sendable {
    // @unchecked: as for PthreadMutex; it is only waited on with its mutex held.
    let raw: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        raw = .allocate(capacity: 1)
        raw.initialize(to: pthread_cond_t())
        pthread_cond_init(raw, nil)
    }

    deinit {
        pthread_cond_destroy(raw)
        raw.deallocate()
    }

    /// Waits for a signal; `mutex` must be held.
    public func wait(_ mutex: PthreadMutex) { pthread_cond_wait(raw, mutex.raw) }

    /// Waits for a signal until `deadline` (wall clock, like `NSCondition.wait(until:)`);
    /// `mutex` must be held. Returns false when the deadline passed.
    public func wait(_ mutex: PthreadMutex, until deadline: Date) -> Bool {
        let seconds = deadline.timeIntervalSince1970
        guard seconds > 0 else { return false }
        let whole = seconds.rounded(.down)
        var time = timespec(tv_sec: Int(whole), tv_nsec: Int((seconds - whole) * 1_000_000_000))
        return pthread_cond_timedwait(raw, mutex.raw, &time) != ETIMEDOUT
    }

    public func signal() { pthread_cond_signal(raw) }
    public func broadcast() { pthread_cond_broadcast(raw) }
}

/// A mutex and a condition variable in one, with `NSCondition`'s interface (which is in full
/// Foundation only): lock, wait in a loop on a predicate, signal or broadcast, unlock.
public final class PthreadCondition: Sendable {
    private let mutex = PthreadMutex()
    private let variable = PthreadConditionVariable()

    public init() {}

    public func lock() { mutex.lock() }
    public func unlock() { mutex.unlock() }

    /// Waits for a signal; the lock must be held.
    public func wait() { variable.wait(mutex) }

    /// Waits for a signal until `deadline` (wall clock); the lock must be held. Returns false
    /// when the deadline passed.
    public func wait(until deadline: Date) -> Bool { variable.wait(mutex, until: deadline) }

    public func signal() { variable.signal() }
    public func broadcast() { variable.broadcast() }
}
