import ECIChannel
import ECIContract
import ECICore

/// The host's typed requests to the agent: each control operation of the contract, sent over
/// the control port and answered with its reply type.
public struct AgentClient: Sendable {
    let control: ControlClient

    public init(control: ControlClient) {
        self.control = control
    }

    public func hello(timeout: Duration) throws -> AgentHello {
        try call(.hello, AgentHello.self, timeout: timeout)
    }

    public func status(timeout: Duration) throws -> AgentStatus {
        try call(.status, AgentStatus.self, timeout: timeout)
    }

    public func settings(timeout: Duration) throws -> SettingsInForce {
        try call(.settings, SettingsInForce.self, timeout: timeout)
    }

    /// Asks the agent to power the VM off; returns once it accepted.
    public func shutdown(timeout: Duration) throws {
        _ = try call(.shutdown, ShutdownAccepted.self, timeout: timeout)
    }

    /// A test hook: the agent kills ecid's main process with SIGKILL (systemd restarts it).
    public func killEcid(timeout: Duration) throws -> EcidKilled {
        try call(.killEcid, EcidKilled.self, timeout: timeout)
    }

    /// `request` as the status document shows it: the answer, the agent's error (including a
    /// protocol-version mismatch, which the user must see), or silence (no answer in time).
    public static func answer<Value>(_ request: () throws -> Value) -> AgentAnswer<Value> {
        do {
            return .answered(try request())
        } catch let error as ECIError where [.peerError, .protocolVersion, .malformedMessage].contains(error.code) {
            return .failed(error.message)
        } catch {
            return .silent
        }
    }

    private func call<Reply: ContractPayload>(_ op: ControlOperation, _ type: Reply.Type, timeout: Duration) throws -> Reply {
        let reply = try control.request(ControlRequest(op).encoded(), timeout: timeout)
        return try ContractReply.decode(type, from: reply, peer: "the VM's agent", receiver: "ecibuild")
    }
}
