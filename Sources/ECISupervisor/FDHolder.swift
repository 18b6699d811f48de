import CSeccomp
import CShim
import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// `ecid fd-holder`: the small process that keeps a reference to every notify fd ecid
/// supervises, so a restart or crash of ecid loses none of them (a notify fd whose last
/// reference closes is gone for good: the kernel then answers every trapped call of that
/// container with ENOSYS, and runc cannot hand it over again).
///
/// Single-threaded: one poll(2) over its listening socket, the attached ecid's connection and
/// every held fd (for POLLHUP only: a held fd never wakes it for a pending notification, so it
/// uses no CPU while ecid is away). It never reads a notification.
///
/// Protocol (SOCK_SEQPACKET, one message each, text):
/// - ecid → holder: `hello` (the holder answers `held KEY` + fd for every fd, then `end`),
///   `put KEY` + fd (a new notify fd; one with the same key is replaced), `drop KEY`.
/// - KEY is `CONTAINER-ID/SLOT` (runc's container IDs have no `/`), or a key without `/` for an
///   fd of ecid's own that containers depend on (`emulation`: the /dev/fuse connection whose
///   files are bound into every container).
///
/// Fail closed, never hang: while no ecid is attached for `grace` seconds, it closes every fd
/// (the kernel answers the pending and the future trapped calls with ENOSYS) and exits; it
/// exits at once when its ecid detaches and it holds no container's fd (ecid's own are worth
/// keeping only for containers: without one, a new ecid makes them afresh).
public enum FDHolder {
    public static let defaultGrace = 10.0

    /// The holder's socket in ecid's directory.
    public static func socketPath(directory: String) -> String { join(directory, "holder.sock") }

    /// Runs the holder until it holds nothing and no ecid is attached. Returns the exit code.
    public static func main(directory: String, grace: Double) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        // Nothing ecid's own parent left open without close-on-exec (a pipe a test runner or a
        // service manager waits on) may live as long as the holder.
        _ = eci_close_from(3)
        let path = socketPath(directory: directory)
        // One holder: a live one answers; a stale socket file is replaced.
        let probe = eci_seqpacket_connect(path)
        if probe >= 0 {
            close(probe)
            say("another holder answers at \(path)")
            return 0
        }
        let listener = eci_seqpacket_listen(path, 0o600)
        guard listener >= 0 else {
            say("cannot listen at \(path): \(errnoDescription(-listener))")
            return 1
        }
        var held: [String: Int32] = [:]
        var ecid: Int32 = -1
        var detachedSince = monotonicSeconds()
        // Until its first ecid connects (the one that spawned it), it waits for it, even empty.
        var everAttached = false
        var buffer = [UInt8](repeating: 0, count: 4096)

        func closeAll() {
            held.values.forEach { close($0) }
            held.removeAll()
        }

        while true {
            if ecid < 0 {
                if everAttached && !held.keys.contains(where: { $0.contains("/") }) {
                    say("no ecid and no container's fd held: exiting")
                    closeAll()
                    break
                }
                if monotonicSeconds() - detachedSince >= grace {
                    say("no ecid for \(grace) s: closing \(held.count) notify fds (their trapped calls now fail with ENOSYS)")
                    closeAll()
                    break
                }
            }
            let keys = Array(held.keys)
            var polled = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: ecid, events: Int16(POLLIN), revents: 0)]
            // events 0: POLLHUP (every process under the filter has exited) is always reported.
            polled += keys.map { pollfd(fd: held[$0] ?? -1, events: 0, revents: 0) }
            let timeout: Int32 = ecid >= 0 ? -1 : Int32(max(0, (grace - (monotonicSeconds() - detachedSince)) * 1000)) + 1
            let ready = poll(&polled, nfds_t(polled.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                say("poll: \(errnoDescription(errno))")
                closeAll()
                break
            }
            for (index, key) in keys.enumerated() where polled[index + 2].revents != 0 {
                // Every process under that filter has exited (or the fd is bad): nothing to keep.
                if let fd = held.removeValue(forKey: key) { close(fd) }
            }
            if polled[1].revents != 0 {
                let (n, received) = FDMessage.receive(ecid, into: &buffer)
                if n <= 0 {
                    received.forEach { close($0) }
                    close(ecid)
                    ecid = -1
                    detachedSince = monotonicSeconds()
                    say("ecid detached: holding \(held.count) notify fds for at most \(grace) s")
                } else {
                    let text = String(decoding: buffer[0..<n], as: UTF8.self)
                    handle(text, fds: received, held: &held, ecid: ecid)
                }
            }
            if polled[0].revents != 0 {
                let connection = eci_accept(listener)
                if connection >= 0 {
                    // The newest ecid is the one: an older connection left open belongs to an
                    // ecid that is being replaced.
                    if ecid >= 0 { close(ecid) }
                    say("ecid attached: holding \(held.count) notify fds")
                    ecid = connection
                    everAttached = true
                }
            }
        }
        close(listener)
        // The socket file goes with the holder unless a successor already replaced it.
        unlink(path)
        return 0
    }

    static func handle(_ text: String, fds: [Int32], held: inout [String: Int32], ecid: Int32) {
        let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("hello", 1):
            fds.forEach { close($0) }
            for (key, fd) in held {
                var one = [fd]
                let message = Array("held \(key)".utf8)
                _ = message.withUnsafeBytes { eci_send_with_fds(ecid, $0.baseAddress, $0.count, &one, 1) }
            }
            let end = Array("end".utf8)
            _ = end.withUnsafeBytes { eci_send_with_fds(ecid, $0.baseAddress, $0.count, nil, 0) }
        case ("put", 2) where fds.count == 1:
            if let old = held.updateValue(fds[0], forKey: parts[1]) { close(old) }
        case ("drop", 2):
            fds.forEach { close($0) }
            if let fd = held.removeValue(forKey: parts[1]) { close(fd) }
        default:
            fds.forEach { close($0) }
            say("unknown message \(text.prefix(80))")
        }
    }

    /// The project's one monotonic clock (`ContinuousClock`), in seconds since an arbitrary start.
    static func monotonicSeconds() -> Double {
        (ContinuousClock.now - start).seconds
    }

    private static let start = ContinuousClock.now

    static func say(_ text: String) {
        let line = "ecid fd-holder[\(getpid())]: \(text)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}
