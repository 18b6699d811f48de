import ECICore

/// Error codes of the HTTP layer, each mapped to the status a server answers with
/// (see `httpStatus`). Malformed input uses `.invalidArgument` (400).
extension ECIError.Code {
    /// The request head exceeds `HTTPRequestHead.maximumSize` (431).
    public static let httpHeadTooLarge = ECIError.Code("http-head-too-large")
    /// A body the filter must read exceeds its cap (413).
    public static let httpBodyTooLarge = ECIError.Code("http-body-too-large")
    /// A transfer coding other than a single `chunked` (501).
    public static let httpNotImplemented = ECIError.Code("http-not-implemented")
    /// An HTTP version other than 1.0 or 1.1 (505).
    public static let httpVersionNotSupported = ECIError.Code("http-version-not-supported")
}

extension ECIError {
    /// The HTTP status a server answers this error with: 400 for malformed input, the specific
    /// status for the HTTP codes above, 500 for anything else.
    public var httpStatus: Int {
        switch code {
        case .invalidArgument: return 400
        case .httpHeadTooLarge: return 431
        case .httpBodyTooLarge: return 413
        case .httpNotImplemented: return 501
        case .httpVersionNotSupported: return 505
        case .timedOut: return 408
        default: return 500
        }
    }

    /// A malformed-request error (400).
    static func badRequest(_ message: String) -> ECIError { ECIError(.invalidArgument, message) }
}
