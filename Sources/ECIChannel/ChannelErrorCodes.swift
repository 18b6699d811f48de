import ECICore

extension ECIError.Code {
    /// The port is not connected, or it disconnected while the operation waited.
    public static let channelDisconnected = ECIError.Code("channel-disconnected")
    /// The peer did not answer in time.
    public static let channelTimeout = ECIError.Code("channel-timeout")
    /// The peer broke the protocol badly enough that the session was dropped
    /// (for example a flood of bytes that never form a frame).
    public static let channelProtocol = ECIError.Code("channel-protocol")
    /// The peer refused or failed a request or stream (a `reset` frame, with its reason).
    public static let channelRefused = ECIError.Code("channel-refused")
}
