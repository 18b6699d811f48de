import ECICore
import ECIOCI
import ECIPolicy
import ECIRuntime
import Foundation
import Logging

/// The agent's answers on the control port. Requests are JSON objects `{"op": ...}`:
/// - `status`: the boot step's report (probes, settings origin, problems), the engine's state
///   and version, and every container with its ID range;
/// - `settings`: the settings in force;
/// - `shutdown`: answers, then powers the VM off.
/// Anything else, or malformed JSON, gets `{"error": ...}`: the host may send garbage.
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

    public func handle(_ request: [UInt8]) -> [UInt8] {
        let reply: JSONValue
        if let document = try? JSONValue.parse(request), let op = document["op"]?.stringValue {
            switch op {
            case "status": reply = status()
            case "settings": reply = settings()
            case "shutdown":
                logger.notice("the host asked for a shutdown")
                let powerOff = self.powerOff
                // Answer first: the host waits for the reply before it waits for QEMU to exit.
                Thread.detachNewThread {
                    Thread.sleep(forTimeInterval: 0.5)
                    powerOff()
                }
                reply = .object([("ok", .bool(true))])
            default: reply = .object([("error", .string("unknown op \"\(op.prefix(40))\""))])
            }
        } else {
            reply = .object([("error", .string("a request is a JSON object with an \"op\""))])
        }
        return Array(reply.serialized().utf8)
    }

    func status() -> JSONValue {
        let report = try? PrepareReport.read(paths.prepareReport)
        let prepare: JSONValue = report.flatMap { try? JSONValue.parse($0.encoded()) } ?? .null
        let engine = EngineClient(socketPath: paths.sockets.raw, timeout: 3)
        var engineState: [(key: String, value: JSONValue)] = []
        var containers: [JSONValue] = []
        if let version = try? engine.get("/version"), version.isSuccess {
            engineState = [("state", .string("running")), ("version", version.json?["Version"] ?? .null)]
            let ranges = idRanges()
            if let list = try? engine.get("/containers/json?all=1"), let items = list.json?.arrayValue {
                containers = items.map { item in
                    let id = item["Id"]?.stringValue ?? ""
                    return .object([
                        ("id", .string(id)), ("name", item["Names"]?.arrayValue?.first ?? .null), ("image", item["Image"] ?? .null),
                        ("state", item["State"] ?? .null), ("idRange", ranges[id].map { .string($0) } ?? .null),
                    ])
                }
            }
        } else {
            engineState = [("state", .string(report?.ok == false ? "stopped (isolation can't be guaranteed)" : "not answering"))]
        }
        return .object([
            ("agent", .string(Self.version)), ("prepare", prepare), ("engine", .object(engineState)), ("containers", .array(containers)),
        ])
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

    func settings() -> JSONValue {
        guard let settings = try? AgentSettingsLoader.loadEffective(paths: paths) else {
            return .object([("error", .string("no settings in force (the boot step failed; see status)"))])
        }
        let report = try? PrepareReport.read(paths.prepareReport)
        return .object([
            ("origin", .string(report?.settingsOrigin?.rawValue ?? "unknown")),
            ("socketMountImages", .array((settings.socketMountAnyImage ? ["*"] : settings.socketMountImages.map(\.description)).map { .string($0) })),
            ("allowDerivedImages", .bool(settings.allowDerivedImages)),
            ("commandList", .object([("type", .string(settings.commandList.type.rawValue)), ("commands", .array(settings.commandList.patterns.map { .string($0) }))])),
        ])
    }
}
