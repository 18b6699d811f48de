import ECIContract
import Foundation

extension VMStatus {
    /// The supervisor's record and what the agent answered, as `ecibuild status` shows them.
    init(record: VMState, now: Double, agent: AgentAnswer<AgentStatus>, settings: AgentAnswer<SettingsInForce>) {
        self.init(
            phase: record.phase, supervisorPid: record.supervisorPid, qemuPid: record.qemuPid, accelerator: record.accelerator, image: record.image,
            dockerHost: record.dockerHost, consoleLog: record.consoleLog, uptimeSeconds: Int(now - record.startedAt), error: record.error, agent: agent,
            settings: settings)
    }
}

/// `ecibuild status` for people.
public enum VMStatusText {
    public static func render(_ status: VMStatus) -> String {
        var lines = [
            "VM:          \(status.phase.rawValue) (\(status.accelerator.rawValue), up \(status.uptimeSeconds) s)",
            "image:       \(status.image)",
            "DOCKER_HOST: \(status.dockerHost)",
            "console:     \(status.consoleLog)",
        ]
        if let error = status.error { lines.append("error:       \(error)") }
        guard let agent = status.agent.value else {
            if case .failed(let why) = status.agent { lines.append("agent:       \(why)") } else { lines.append("agent:       not answering") }
            return lines.joined(separator: "\n")
        }
        lines.append("agent:       \(agent.agent), engine \(agent.engine.state.rawValue)")
        if let ecid = agent.ecid { lines.append("ecid:        \(ecid)") }
        if let settings = status.settings.value {
            let images = settings.socketMountImages
            lines.append(
                "settings:    from \(settings.origin?.rawValue ?? "unknown"); socket mounts: \(images.isEmpty ? "none" : images.joined(separator: ", ")); command list: \(settings.commandList.type) [\(settings.commandList.commands.joined(separator: ", "))]"
            )
        }
        for probe in agent.prepare?.probes ?? [] {
            lines.append("  probe \(probe.name): \(probe.ok ? "ok" : "FAILED: " + probe.detail)")
        }
        for problem in agent.prepare?.problems ?? [] { lines.append("  problem: \(problem)") }
        lines.append("containers:  \(agent.containers.count)")
        for container in agent.containers {
            lines.append("  \(container.id.prefix(12))  \(container.image ?? "?")  \(container.state ?? "?")  ids \(container.idRange ?? "-")")
        }
        return lines.joined(separator: "\n")
    }
}
