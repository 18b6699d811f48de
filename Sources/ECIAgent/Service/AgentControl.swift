import ECICore
import ECIIO
// Re-exported: the agent's API (PrepareReport, ProbeResult, SettingsOrigin) is made of the
// contract's types, so whoever uses the agent gets them with it.
@_exported import ECIContract
import ECIOCI
import ECIPolicy
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// The agent's answers on the control port: the contract's `ControlRequest`s (ECIContract),
/// each answered with its reply type:
/// - `hello`: `AgentHello` (who answers);
/// - `status`: `AgentStatus` (the boot step's report, the engine's state and version, and every
///   container with its ID range);
/// - `settings`: `SettingsInForce`;
/// - `shutdown`: `ShutdownAccepted`, then the VM powers off;
/// - `kill-ecid`: `EcidKilled` (a test hook: SIGKILL to ecid, which systemd restarts).
/// A request of another protocol version, an unknown op or malformed bytes get a
/// `ContractFailure` (the host may send garbage); so does `settings` when none are in force.
public struct AgentControl: Sendable {
    public static let version = "eci-agent 0.2"

    public var paths: AgentPaths
    public var logger: Logger
    /// Powers the VM off (systemctl poweroff in the VM; replaced in tests).
    public var powerOff: @Sendable () -> Void

    public init(paths: AgentPaths, logger: Logger, powerOff: @escaping @Sendable () -> Void) {
        self.paths = paths
        self.logger = logger
        self.powerOff = powerOff
    }

    public func handle(_ bytes: [UInt8]) -> [UInt8] {
        do {
            let request = try ControlRequest.decode(bytes, from: "the host", receiver: Self.version)
            switch request.op {
            case .hello: return try ContractReply.encode(AgentHello(agent: Self.version))
            case .status: return try ContractReply.encode(status())
            case .settings: return try ContractReply.encode(try settings())
            case .shutdown:
                logger.notice("the host asked for a shutdown")
                let powerOff = self.powerOff
                // Answer first: the host waits for the reply before it waits for QEMU to exit.
                try DetachedThread.start("eci-poweroff") {
                    usleep(500_000)
                    powerOff()
                }
                return try ContractReply.encode(ShutdownAccepted())
            case .killEcid: return try ContractReply.encode(try killEcid())
            }
        } catch let error as ECIError {
            if error.code == .protocolVersion { logger.error("control request refused", metadata: ["error": "\(error.message)"]) }
            return ContractReply.encode(ContractFailure(error))
        } catch {
            return ContractReply.encode(ContractFailure(code: ECIError.Code.internalError.name, message: "\(error)"))
        }
    }

    func status() -> AgentStatus {
        let report = try? PrepareReport.read(paths.prepareReport)
        let engine = EngineClient(socketPath: paths.sockets.raw, timeout: 3)
        guard let version = try? engine.get("/version"), version.isSuccess else {
            return AgentStatus(
                agent: Self.version, prepare: report, engine: EngineState(state: report?.ok == false ? .stoppedByPrepare : .notAnswering), containers: [],
                ecid: EcidCheck(paths: paths).state())
        }
        var containers: [ContainerStatus] = []
        let ranges = idRanges()
        // The engine's API is not ours: its JSON is read by key, and what is missing stays nil.
        if let list = try? engine.get("/containers/json?all=1"), let items = list.json?.arrayValue {
            containers = items.map { item in
                let id = item["Id"]?.stringValue ?? ""
                return ContainerStatus(
                    id: id, name: item["Names"]?.arrayValue?.first?.stringValue, image: item["Image"]?.stringValue, state: item["State"]?.stringValue,
                    idRange: ranges[id])
            }
        }
        return AgentStatus(
            agent: Self.version, prepare: report, engine: EngineState(state: .running, version: version.json?["Version"]?.stringValue), containers: containers,
            ecid: EcidCheck(paths: paths).state())
    }

    /// SIGKILL to ecid's main process only (systemd's MainPID), as a crash would: ecid's fd
    /// holder lives on, and systemd restarts ecid (Restart=always). A test hook of restart safety.
    func killEcid() throws -> EcidKilled {
        var attributes = SpawnAttributes(["/usr/bin/systemctl", "show", "--property=MainPID", "--value", "ecid.service"], environment: ProcessInfo.processInfo.environment)
        attributes.stdin = .null
        attributes.defaultSignalActions = true
        let shown = try ChildProcess.run(attributes, captureStderr: true)
        let text = String(decoding: shown.stdout, as: UTF8.self).filter { !$0.isWhitespace }
        guard let pid = Int32(text), pid > 1 else { throw ECIError(.notFound, "ecid.service has no main process (systemctl: \(text))") }
        guard kill(pid, SIGKILL) == 0 else { throw ECIError.system("kill \(pid)", errno: errno) }
        logger.notice("killed ecid for the host (a test hook)", metadata: ["pid": "\(pid)"])
        return EcidKilled(pid: pid)
    }

    /// Container ID → "base-end" from the runtime's range table.
    func idRanges() -> [String: String] {
        guard let configuration = try? RuntimeConfiguration.load(path: nil, environment: [:]),
            let records = try? RangeStore(configuration: configuration, log: logger).records()
        else { return [:] }
        var ranges: [String: String] = [:]
        for record in records { ranges[record.key.id] = "\(record.base)-\(record.base + 65535)" }
        return ranges
    }

    func settings() throws -> SettingsInForce {
        guard let settings = try? AgentSettingsLoader.loadEffective(paths: paths) else {
            throw ECIError(.notFound, "no settings in force (the boot step failed; see status)")
        }
        let report = try? PrepareReport.read(paths.prepareReport)
        return SettingsInForce(
            origin: report?.settingsOrigin,
            socketMountImages: settings.socketMountAnyImage ? ["*"] : settings.socketMountImages.map(\.description),
            allowDerivedImages: settings.allowDerivedImages,
            commandList: CommandListInForce(type: settings.commandList.type.rawValue, commands: settings.commandList.patterns))
    }
}
