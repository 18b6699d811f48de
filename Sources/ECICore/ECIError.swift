/// The one error type of ECI: a code a caller can branch on, a message a user can act on,
/// and the underlying cause when there is one.
public struct ECIError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is. An extensible set, compared by value.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The caller asked for something malformed (bad flag, bad spec, bad path).
        public static let invalidArgument = Code("invalid-argument")
        /// A file, container or record that was needed does not exist.
        public static let notFound = Code("not-found")
        /// The request is well-formed but ECI's isolation policy refuses it.
        public static let refused = Code("refused")
        /// A pool or table is full.
        public static let exhausted = Code("exhausted")
        /// The kernel or host lacks a feature isolation needs.
        public static let unsupported = Code("unsupported")
        /// A system call failed.
        public static let system = Code("system")
        /// Persisted state is corrupt or inconsistent.
        public static let invalidState = Code("invalid-state")
        /// A delegated program (runc) failed.
        public static let delegateFailed = Code("delegate-failed")
        /// An operation (a socket read, a peer's answer) did not complete within its timeout.
        public static let timedOut = Code("timed-out")
        /// Anything else.
        public static let internalError = Code("internal")
    }

    public let code: Code
    public let message: String
    /// The error that caused this one, rendered as text so the type stays `Sendable` and `Equatable`.
    public let cause: String?
    /// The errno of the failed system call, when this error is one (callers branch on
    /// `error.errno == EINVAL`, never on the message's text). Kept through `ECIError`s that
    /// wrap another: see `init(_:_:cause:)`.
    public let errno: Int32?

    /// - Parameter cause: the error behind this one; an `ECIError` cause passes its errno on.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.cause = cause.map { "\($0)" }
        self.errno = errno ?? (cause as? ECIError)?.errno
    }

    /// A system-call failure with the errno it returned (`code` `.system` unless told).
    public static func system(_ what: String, errno value: Int32, code: Code = .system) -> ECIError {
        ECIError(code, "\(what): \(errnoDescription(value))", errno: value)
    }

    public var description: String {
        guard let cause else { return message }
        return "\(message) (cause: \(cause))"
    }
}

#if canImport(Glibc)
import Glibc

/// `strerror` text with the symbolic errno number, e.g. "Invalid argument (errno 22)".
public func errnoDescription(_ value: Int32) -> String {
    guard let text = strerror(value) else { return "errno \(value)" }
    return "\(String(cString: text)) (errno \(value))"
}
#endif
