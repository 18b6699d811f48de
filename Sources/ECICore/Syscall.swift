import CShim
import Glibc

/// The one place system calls are retried and their failures turned into errors.
///
/// Two conventions meet here: libc's (-1 and `errno`) and the C shim's (-errno). Both retry
/// EINTR (a signal arriving mid-call is not a failure) and throw an `ECIError` that keeps the
/// errno, so callers branch on `error.errno == EINVAL`, never on a message's text. `what` is
/// built only when the call fails.
public enum Syscall {
    /// Runs a libc call until it does not fail with EINTR; returns its result (>= 0).
    /// - Throws: `ECIError.system(what, errno:)`.
    @discardableResult
    public static func retrying<T: FixedWidthInteger & SignedInteger>(_ what: @autoclosure () -> String, _ call: () -> T) throws -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw ECIError.system(what(), errno: err)
        }
    }

    /// Runs a C shim call (which returns -errno on failure) until it does not fail with EINTR.
    /// - Throws: `ECIError.system(what, errno:)`.
    @discardableResult
    public static func shim<T: FixedWidthInteger & SignedInteger>(_ what: @autoclosure () -> String, _ call: () -> T) throws -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let err = Int32(truncatingIfNeeded: -result)
            if err == EINTR { continue }
            throw ECIError.system(what(), errno: err)
        }
    }

    /// Writes every byte of `buffer` to `fd`: short writes continued, EINTR retried. Sockets
    /// are written with MSG_NOSIGNAL, so a reader that went away is an EPIPE error, not SIGPIPE.
    /// - Throws: `ECIError.system(what, errno:)` (EAGAIN when a send timeout expired; EIO
    ///   when the kernel accepted nothing).
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, socket: Bool = false, what: @autoclosure () -> String) throws {
        var offset = 0
        while offset < buffer.count {
            let base = buffer.baseAddress.map { $0 + offset }
            let count = buffer.count - offset
            let n = try retrying(what()) { socket ? Glibc.send(fd, base, count, Int32(MSG_NOSIGNAL)) : Glibc.write(fd, base, count) }
            guard n > 0 else { throw ECIError.system(what(), errno: EIO) }
            offset += n
        }
    }

    /// `writeAll` for a byte array.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], socket: Bool = false, what: @autoclosure () -> String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, socket: socket, what: what()) }
    }

    /// A close-on-exec pipe (non-blocking at both ends when asked), made in one call so that a
    /// fork on another thread can never inherit it.
    public static func pipe(nonblocking: Bool = false, what: @autoclosure () -> String = "pipe") throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        try shim(what()) { eci_pipe(&fds, nonblocking ? 1 : 0) }
        return (fds[0], fds[1])
    }
}
