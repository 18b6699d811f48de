/// How the VM is accelerated: KVM when this machine can run KVM guests, else QEMU's TCG.
public enum Accelerator: String, Sendable, Codable, CaseIterable {
    case kvm
    case tcg
}

/// Where a VM is in its life, as its supervisor records it.
public enum VMPhase: String, Sendable, Codable {
    case booting
    case ready
    case stopping
    case failed
}

/// The admin socket's requests (`ecibuild status` and `stop` → the VM's supervisor).
public enum AdminOperation: String, Sendable, Equatable, CaseIterable {
    /// The VM and its agent: `VMStatus`.
    case status
    /// Stop the VM cleanly: `StopAccepted`.
    case stop
    /// A test hook, relayed to the agent: kill ecid with SIGKILL (systemd restarts it): `EcidKilled`.
    case killEcid = "kill-ecid"
}

/// An admin request: `{"op":"stop","version":1}`, one line per connection.
public typealias AdminRequest = ContractRequest<AdminOperation>

/// The supervisor's answer to `stop`, sent before it starts the shutdown.
public struct StopAccepted: ContractPayload, Equatable {
    public static let replyKey = "stop"
    public var stopping: Bool

    public init() {
        stopping = true
    }
}

/// What the agent said when asked: its answer, its error, or nothing (it did not answer).
/// On the wire: the answer itself, `{"error":"..."}`, or `null`.
public enum AgentAnswer<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case answered(Value)
    case failed(String)
    case silent

    public var value: Value? {
        guard case .answered(let value) = self else { return nil }
        return value
    }

    private struct Failure: Codable {
        var error: String
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .silent
        } else if let failure = try? container.decode(Failure.self) {
            self = .failed(failure.error)
        } else {
            self = .answered(try container.decode(Value.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .answered(let value): try container.encode(value)
        case .failed(let message): try container.encode(Failure(error: message))
        case .silent: try container.encodeNil()
        }
    }
}

/// The supervisor's answer to `status`: its record of the VM, and what the agent says.
/// `ecibuild status --format json` prints exactly this object.
public struct VMStatus: ContractPayload, Equatable {
    public static let replyKey = "status"

    public var phase: VMPhase
    public var supervisorPid: Int32
    /// nil (`null`) before QEMU started.
    public var qemuPid: Int32?
    public var accelerator: Accelerator
    /// The image directory booted.
    public var image: String
    /// `unix://...`: the host socket of the engine API.
    public var dockerHost: String
    public var consoleLog: String
    public var uptimeSeconds: Int
    /// Why the VM failed (phase failed).
    public var error: String?
    public var agent: AgentAnswer<AgentStatus>
    public var settings: AgentAnswer<SettingsInForce>

    public init(
        phase: VMPhase, supervisorPid: Int32, qemuPid: Int32?, accelerator: Accelerator, image: String, dockerHost: String, consoleLog: String,
        uptimeSeconds: Int, error: String?, agent: AgentAnswer<AgentStatus>, settings: AgentAnswer<SettingsInForce>
    ) {
        self.phase = phase
        self.supervisorPid = supervisorPid
        self.qemuPid = qemuPid
        self.accelerator = accelerator
        self.image = image
        self.dockerHost = dockerHost
        self.consoleLog = consoleLog
        self.uptimeSeconds = uptimeSeconds
        self.error = error
        self.agent = agent
        self.settings = settings
    }

    private enum CodingKeys: String, CodingKey {
        case phase, supervisorPid, qemuPid, accelerator, image, dockerHost, consoleLog, uptimeSeconds, error, agent, settings
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        phase = try container.decode(VMPhase.self, forKey: .phase)
        supervisorPid = try container.decode(Int32.self, forKey: .supervisorPid)
        qemuPid = try container.decodeIfPresent(Int32.self, forKey: .qemuPid)
        accelerator = try container.decode(Accelerator.self, forKey: .accelerator)
        image = try container.decode(String.self, forKey: .image)
        dockerHost = try container.decode(String.self, forKey: .dockerHost)
        consoleLog = try container.decode(String.self, forKey: .consoleLog)
        uptimeSeconds = try container.decode(Int.self, forKey: .uptimeSeconds)
        error = try container.decodeIfPresent(String.self, forKey: .error)
        // A missing key is `null`: the agent did not answer.
        agent = try container.decodeIfPresent(AgentAnswer<AgentStatus>.self, forKey: .agent) ?? .silent
        settings = try container.decodeIfPresent(AgentAnswer<SettingsInForce>.self, forKey: .settings) ?? .silent
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(phase, forKey: .phase)
        try container.encode(supervisorPid, forKey: .supervisorPid)
        try container.encode(qemuPid, forKey: .qemuPid)  // `null` before QEMU starts
        try container.encode(accelerator, forKey: .accelerator)
        try container.encode(image, forKey: .image)
        try container.encode(dockerHost, forKey: .dockerHost)
        try container.encode(consoleLog, forKey: .consoleLog)
        try container.encode(uptimeSeconds, forKey: .uptimeSeconds)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encode(agent, forKey: .agent)
        try container.encode(settings, forKey: .settings)
    }
}
