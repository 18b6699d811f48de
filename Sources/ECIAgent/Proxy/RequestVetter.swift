/// The engine API filter's rules: decides, for each request, whether it reaches the engine.
/// Implementations are pure (no I/O of their own beyond lookups through an `EngineClient`) and
/// are called from many connection threads at once.
public protocol RequestVetter: Sendable {
    /// Whether the vetter needs the request body to decide (e.g. POST /containers/create).
    func wantsBody(_ head: HTTPRequestHead) -> Bool
    /// Decides on one request. `body` is the decoded body when wantsBody was true.
    func vet(_ head: HTTPRequestHead, body: [UInt8]?) -> Verdict
}

/// A vetter's decision on one request.
public enum Verdict: Sendable {
    /// Forward this (possibly rewritten) head; when body is non-nil it replaces the original body.
    case forward(HTTPRequestHead, body: [UInt8]?)
    /// Answer the client with this status and message; nothing reaches the engine.
    case refuse(status: Int, message: String)
}
