import ECIContract
import ECICore
import Foundation
import Logging
import Testing

@testable import ECIAgent

/// The agent's side of the control contract: typed replies, and a clear refusal of a host that
/// speaks another version.
struct AgentControlTests {
    func control() throws -> (AgentControl, AgentPaths, String) {
        let dir = FileManager.default.temporaryDirectory.path + "/eci-control-\(UUID().uuidString)"
        try FileSystem.makeDirectories(dir + "/run", mode: 0o755)
        var paths = AgentPaths()
        paths.stateDirectory = dir + "/run"
        paths.engineDirectory = dir + "/run/engine"
        // No engine listens here: the status says so.
        paths.sockets = .init(filtered: [dir + "/docker.sock"], forContainers: dir + "/api.sock", raw: dir + "/raw.sock")
        let control = AgentControl(paths: paths, logger: Logger(label: "test")) {}
        return (control, paths, dir)
    }

    func ask<Reply: ContractPayload>(_ control: AgentControl, _ op: ControlOperation, _ type: Reply.Type) throws -> Reply {
        try ContractReply.decode(type, from: control.handle(ControlRequest(op).encoded()), peer: "the agent", receiver: "test")
    }

    @Test func eachRequestGetsItsTypedReply() throws {
        let (control, paths, dir) = try control()
        defer { try? FileSystem.removeTree(dir) }
        #expect(try ask(control, .hello, AgentHello.self).agent == AgentControl.version)

        var status = try ask(control, .status, AgentStatus.self)
        #expect(status.prepare == nil && status.engine.state == .notAnswering && status.containers.isEmpty)
        let report = PrepareReport(
            ok: false, probes: [ProbeResult(name: "fuse", ok: false, detail: "no /dev/fuse")], settingsOrigin: .image, problems: ["kernel probe fuse failed: no /dev/fuse"],
            overriddenEngineKeys: [])
        try FileSystem.write(paths.prepareReport, report.encoded(), mode: 0o644)
        status = try ask(control, .status, AgentStatus.self)
        #expect(status.prepare == report && status.engine.state == .stoppedByPrepare)

        // No settings in force (the boot step failed): the agent's error, not a reply.
        #expect {
            _ = try ask(control, .settings, SettingsInForce.self)
        } throws: { ($0 as? ECIError)?.code == .peerError && "\($0)".contains("no settings in force") }
        try FileSystem.write(paths.effectiveSettings, Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["docker:cli"]}}}}"#.utf8), mode: 0o600)
        let settings = try ask(control, .settings, SettingsInForce.self)
        #expect(settings.origin == .image && settings.socketMountImages.count == 1 && settings.commandList.type == "deny")
    }

    @Test func aHostOfAnotherVersionGetsAClearRefusal() throws {
        let (control, _, dir) = try control()
        defer { try? FileSystem.removeTree(dir) }
        for request in [#"{"op":"status","version":2}"#, #"{"op":"status"}"#] {
            let reply = control.handle(Array(request.utf8))
            #expect {
                _ = try ContractReply.decode(AgentStatus.self, from: reply, peer: "the VM's agent", receiver: "ecibuild")
            } throws: { error in
                guard let error = error as? ECIError else { return false }
                return error.code == .protocolVersion && error.message.contains("control protocol") && error.message.contains(AgentControl.version)
            }
        }
        // Garbage and unknown ops are refused too, and the agent keeps answering.
        for request in ["status", #"{"op":"reboot","version":1}"#, ""] {
            #expect(throws: ECIError.self) {
                _ = try ContractReply.decode(AgentStatus.self, from: control.handle(Array(request.utf8)), peer: "a", receiver: "b")
            }
        }
        #expect(try ask(control, .hello, AgentHello.self).agent == AgentControl.version)
    }
}
