/// The control port's requests (host → agent). Each has one reply type below.
public enum ControlOperation: String, Sendable, Equatable, CaseIterable {
    /// Who answers: `AgentHello`.
    case hello
    /// The boot step's report, the engine and the containers: `AgentStatus`.
    case status
    /// The settings in force: `SettingsInForce`.
    case settings
    /// Power the VM off (after answering): `ShutdownAccepted`.
    case shutdown
    /// A test hook: SIGKILL to ecid's main process, as a crash would (systemd restarts it):
    /// `EcidKilled`.
    case killEcid = "kill-ecid"
}

/// A control request: `{"op":"status","version":1}`.
public typealias ControlRequest = ContractRequest<ControlOperation>

/// The agent's answer to `hello`.
public struct AgentHello: ContractPayload, Equatable {
    public static let replyKey = "hello"
    /// The agent's name and release ("eci-agent 0.2").
    public var agent: String

    public init(agent: String) {
        self.agent = agent
    }
}

/// The agent's answer to `shutdown`, sent before it powers the VM off.
public struct ShutdownAccepted: ContractPayload, Equatable {
    public static let replyKey = "shutdown"
    public var ok: Bool

    public init() {
        ok = true
    }
}

/// The agent's answer to `kill-ecid`: the process it killed.
public struct EcidKilled: ContractPayload, Equatable {
    public static let replyKey = "killedEcid"
    public var pid: Int32

    public init(pid: Int32) {
        self.pid = pid
    }
}

/// The agent's answer to `status`.
public struct AgentStatus: ContractPayload, Equatable {
    public static let replyKey = "status"

    /// The agent's name and release.
    public var agent: String
    /// The boot step's report; nil (`null`) when prepare wrote none.
    public var prepare: PrepareReport?
    public var engine: EngineState
    /// Every container the engine has (empty when it does not answer).
    public var containers: [ContainerStatus]
    /// ECI's syscall supervisor: "running", or why not; nil from an agent that does not say.
    public var ecid: String?

    public init(agent: String, prepare: PrepareReport?, engine: EngineState, containers: [ContainerStatus], ecid: String? = nil) {
        self.agent = agent
        self.prepare = prepare
        self.engine = engine
        self.containers = containers
        self.ecid = ecid
    }

    private enum CodingKeys: String, CodingKey { case agent, prepare, engine, containers, ecid }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(agent, forKey: .agent)
        // `null`, not absent: scripts read `agent.prepare` and tell "no report" from "no key".
        try container.encode(prepare, forKey: .prepare)
        try container.encode(engine, forKey: .engine)
        try container.encode(containers, forKey: .containers)
        try container.encodeIfPresent(ecid, forKey: .ecid)
    }
}

/// The engine as the agent sees it.
public struct EngineState: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case running
        /// The boot step failed: the engine is kept stopped on purpose.
        case stoppedByPrepare = "stopped (isolation can't be guaranteed)"
        case notAnswering = "not answering"
    }

    public var state: State
    /// The engine's version (when it runs).
    public var version: String?

    public init(state: State, version: String? = nil) {
        self.state = state
        self.version = version
    }
}

/// One container of the engine, with the ID range the runtime gave it.
public struct ContainerStatus: Codable, Sendable, Equatable {
    public var id: String
    /// The engine's first name for it ("/watched").
    public var name: String?
    public var image: String?
    /// The engine's state ("running", "exited", ...).
    public var state: String?
    /// "base-end" of its exclusive ID range; nil when the runtime has no record (not started).
    public var idRange: String?

    public init(id: String, name: String?, image: String?, state: String?, idRange: String?) {
        self.id = id
        self.name = name
        self.image = image
        self.state = state
        self.idRange = idRange
    }

    private enum CodingKeys: String, CodingKey { case id, name, image, state, idRange }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // Unknown fields are `null`, not absent: every container has the same keys.
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(image, forKey: .image)
        try container.encode(state, forKey: .state)
        try container.encode(idRange, forKey: .idRange)
    }
}

/// The agent's answer to `settings`: ECI's settings in force.
public struct SettingsInForce: ContractPayload, Equatable {
    public static let replyKey = "settings"

    /// Where they came from; nil (`"unknown"`) when the boot step left no report.
    public var origin: SettingsOrigin?
    /// Images that may mount the engine socket (`["*"]`: any).
    public var socketMountImages: [String]
    public var allowDerivedImages: Bool
    public var commandList: CommandListInForce

    public init(origin: SettingsOrigin?, socketMountImages: [String], allowDerivedImages: Bool, commandList: CommandListInForce) {
        self.origin = origin
        self.socketMountImages = socketMountImages
        self.allowDerivedImages = allowDerivedImages
        self.commandList = commandList
    }

    private enum CodingKeys: String, CodingKey { case origin, socketMountImages, allowDerivedImages, commandList }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let origin = try container.decode(String.self, forKey: .origin)
        self.origin = origin == "unknown" ? nil : try container.decode(SettingsOrigin.self, forKey: .origin)
        socketMountImages = try container.decode([String].self, forKey: .socketMountImages)
        allowDerivedImages = try container.decode(Bool.self, forKey: .allowDerivedImages)
        commandList = try container.decode(CommandListInForce.self, forKey: .commandList)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(origin?.rawValue ?? "unknown", forKey: .origin)
        try container.encode(socketMountImages, forKey: .socketMountImages)
        try container.encode(allowDerivedImages, forKey: .allowDerivedImages)
        try container.encode(commandList, forKey: .commandList)
    }
}

/// The command list in force for containers that mount the socket.
public struct CommandListInForce: Codable, Sendable, Equatable {
    /// "allow" or "deny".
    public var type: String
    public var commands: [String]

    public init(type: String, commands: [String]) {
        self.type = type
        self.commands = commands
    }
}
