import CSeccomp

/// One message on a socket with the descriptors it carried: the one Swift entry to
/// `eci_recv_with_fds` for ecid's hand-overs, its helpers and the fd holder.
enum FDMessage {
    /// Reads one message into `buffer`. `count` is the bytes received (0: the peer hung up;
    /// negative: -errno); `fds` are close-on-exec, at most `maxFDs` (the C side closes the rest).
    static func receive(_ socket: Int32, into buffer: inout [UInt8], maxFDs: Int = 8) -> (count: Int, fds: [Int32]) {
        var fds = [Int32](repeating: -1, count: max(maxFDs, 1))
        var received: Int32 = 0
        let n = buffer.withUnsafeMutableBytes { raw in
            fds.withUnsafeMutableBufferPointer { eci_recv_with_fds(socket, raw.baseAddress, raw.count, $0.baseAddress, Int32(maxFDs), &received) }
        }
        return (n, Array(fds.prefix(Int(received))))
    }
}
