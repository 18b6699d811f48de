import ECICore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One kernel feature isolation needs, and whether this kernel has it (`eci-agent probe`).
public struct ProbeResult: Sendable, Equatable, Codable {
    public var name: String
    public var ok: Bool
    /// What was tried and what happened, for the user who must fix the VM.
    public var detail: String

    public init(name: String, ok: Bool, detail: String) {
        self.name = name
        self.ok = ok
        self.detail = detail
    }
}

/// Where the settings in force came from.
public enum SettingsOrigin: String, Sendable, Codable {
    /// Passed by the host at boot (QEMU fw_cfg); overrides the image's.
    case host
    /// Baked into the image.
    case image
    /// No file: nothing may mount the socket.
    case defaults
}

/// What `eci-agent prepare` found and did; written to `AgentPaths.prepareReport` and served on
/// the control port inside `AgentStatus`. The engine runs only when `ok`.
public struct PrepareReport: Sendable, Codable, Equatable {
    public var ok: Bool
    public var probes: [ProbeResult]
    public var settingsOrigin: SettingsOrigin?
    /// Why the engine stays stopped (empty when ok).
    public var problems: [String]
    /// Keys of the admin's daemon.json that ECI overrode.
    public var overriddenEngineKeys: [String]

    public init(ok: Bool, probes: [ProbeResult], settingsOrigin: SettingsOrigin?, problems: [String], overriddenEngineKeys: [String]) {
        self.ok = ok
        self.probes = probes
        self.settingsOrigin = settingsOrigin
        self.problems = problems
        self.overriddenEngineKeys = overriddenEngineKeys
    }

    /// The agent's reasons for keeping the engine stopped, joined; nil when it may run (or
    /// when it failed without saying why).
    public var stoppedBecause: String? {
        guard !ok, !problems.isEmpty else { return nil }
        return problems.joined(separator: "; ")
    }

    public static func read(_ path: String) throws -> PrepareReport {
        do {
            return try JSONDecoder().decode(PrepareReport.self, from: Data(try FileSystem.read(path)))
        } catch let error as ECIError {
            throw error
        } catch {
            throw ECIError(.invalidState, "\(path) is not a prepare report", cause: error)
        }
    }

    /// The report file's bytes (pretty, for people reading /run/eci/prepare.json).
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return ((try? encoder.encode(self)).map { Array($0) } ?? Array("{\"ok\":false}".utf8)) + [0x0A]
    }
}
