import ECICore
import ECIOCI
import ECIPolicy

/// The engine API filter as the proxy sees it: each request decided by `EngineAPIPolicy`
/// (pure rules) with facts looked up in the VM and the engine (`VMLookups`).
public struct FilterVetter: RequestVetter {
    public let policy: EngineAPIPolicy
    public let lookups: EngineAPIPolicy.Lookups

    public init(policy: EngineAPIPolicy, lookups: EngineAPIPolicy.Lookups) {
        self.policy = policy
        self.lookups = lookups
    }

    public func wantsBody(_ head: HTTPRequestHead) -> Bool {
        EngineAPIPolicy.needsBody(method: head.method, path: head.path)
    }

    public func vet(_ head: HTTPRequestHead, body: [UInt8]?) -> Verdict {
        let decision = policy.decide(
            method: head.method, path: head.path, query: head.queryItems.map { ($0.name, $0.value) }, body: body,
            contentType: head["Content-Type"], lookups: lookups)
        switch decision {
        case let .forward(rewritten):
            return .forward(head, body: rewritten.map { Array($0.serialized().utf8) })
        case let .forwardTo(path, rewritten):
            // The policy's path (plain ASCII it built) with the request's query as sent.
            var moved = head
            let query = head.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first
            moved.target = path + (query.map { "?" + $0 } ?? "")
            return .forward(moved, body: rewritten.map { Array($0.serialized().utf8) })
        case let .refuse(status, message):
            return .refuse(status: status, message: message)
        }
    }
}
