import ECIChannel
import ECIContract
import ECICore
import ECIIO
import Foundation
import Logging

/// The host half of a running ECI VM (`ecibuild run`): holds the VM directory, starts QEMU
/// (`QEMUProcess`), connects the ports (`GuestPorts`), serves the engine API (`EngineSocket`)
/// and the admin socket (`AdminServer`), records its state (`VMStateRecord`), and shuts the VM
/// down cleanly (agent first, then QEMU, killed after a timeout). This type only orders them.
///
/// Threads: the stop signals, QEMU's reaper, the ports and the accept loops each have one; what
/// they share is `life` (waited on: a stop request, QEMU's exit) and `record`.
public final class VMSupervisor: Sendable {
    public let launch: QEMULaunch
    public let bootTimeout: Duration
    public let stopTimeout: Duration
    private let logger: Logger
    private let directoryLock: VMDirectoryLock
    private let record: VMStateRecord
    private let life = WaitableState(Life())
    private var vm: VMDirectory { launch.vm }

    /// What the supervisor's threads share.
    private struct Life: Sendable {
        var stopRequested = false
        var qemuExited = false
        var qemu: QEMUProcess?
        var ports: GuestPorts?
        var engineSocket: EngineSocket?
        var admin: AdminServer?
    }

    /// - Parameters:
    ///   - lock: the VM directory, held by this process (the supervisor) for the VM's life.
    public init(launch: QEMULaunch, lock: VMDirectoryLock, bootTimeout: Duration = .seconds(900), stopTimeout: Duration = .seconds(90), logger: Logger) {
        self.launch = launch
        self.directoryLock = lock
        self.bootTimeout = bootTimeout
        self.stopTimeout = stopTimeout
        self.logger = logger
        record = VMStateRecord(
            VMState(
                phase: .booting, supervisorPid: getpid(), qemuPid: nil, accelerator: launch.accelerator, image: launch.image.directory,
                dockerHost: "unix://" + launch.vm.dockerSocket, consoleLog: launch.vm.consoleLog, startedAt: Date().timeIntervalSince1970),
            path: launch.vm.stateFile, logger: logger)
    }

    // MARK: Running

    /// Boots the VM and serves it until it stops. `onReady` runs once the engine answers through
    /// the tunnel. Throws (after cleaning up) when the VM can't be booted or never gets ready.
    public func run(onReady: @Sendable (VMState) -> Void) throws {
        try StopSignals.handle { [self] signal in
            logger.info("signal: stopping the VM", metadata: ["signal": "\(signal)"])
            requestStop()
        }
        signal(SIGPIPE, SIG_IGN)
        try prepareDirectory()
        defer { cleanup() }
        do {
            let qemu = try QEMUProcess.start(launch, logger: logger) { [self] _ in qemuExited() }
            life.withLock { $0.qemu = qemu }
            record.update { $0.qemuPid = qemu.pid }
            let ports = try GuestPorts.connect(vm: vm, logger: logger) { qemu.isRunning }
            life.withLock { $0.ports = ports }
            try serveSockets()
            try waitUntilReady(qemu: qemu, agent: ports.agent)
        } catch {
            record.update { $0.phase = .failed; $0.error = "\(error)" }
            shutdown()
            throw error
        }
        record.update { $0.phase = .ready }
        onReady(record.current)
        life.wait { $0.stopRequested || $0.qemuExited ? true : nil }
        shutdown()
    }

    /// The directory is ours (the lock): refuse a QEMU left running without its supervisor,
    /// then clear what an earlier VM left and make the disk.
    func prepareDirectory() throws {
        try vm.validate()
        try QEMUPidFile.refuseIfRunning(vm)
        for socket in [vm.dockerSocket, vm.adminSocket, vm.controlPort, vm.tunnelPort, vm.qmp] { unlink(socket) }
        try DiskOverlay(image: launch.image, vm: vm, logger: logger).ensure()
        try FileSystem.write(vm.consoleLog, [], mode: 0o644)
        try record.publish()
    }

    private func qemuExited() {
        let ports = life.withLock { life in
            life.qemuExited = true
            return life.ports
        }
        ports?.tunnel.stop()
    }

    /// The host docker socket (each connection a tunnel stream) and the admin socket.
    func serveSockets() throws {
        let engineSocket = try EngineSocket.serve(at: vm.dockerSocket, logger: logger) { [self] in life.withLock { $0.ports?.tunnel } }
        life.withLock { $0.engineSocket = engineSocket }
        let admin = try AdminServer.serve(
            at: vm.adminSocket,
            handlers: .init(
                status: { [self] in status() }, stop: { [self] in requestStop() },
                killEcid: { [self] in
                    guard let agent = life.withLock({ $0.ports?.agent }) else { throw ECIError(.notFound, "the VM's agent is not connected") }
                    return try agent.killEcid(timeout: .seconds(10))
                }))
        life.withLock { $0.admin = admin }
    }

    /// Waits for the engine to answer `/_ping` through the tunnel; gives up early when the agent
    /// reports that the engine stays stopped (a failed probe, bad settings) or speaks another
    /// version of the contract.
    func waitUntilReady(qemu: QEMUProcess, agent: AgentClient) throws {
        let deadline = ContinuousClock.now + bootTimeout
        var lastAgentCheck = ContinuousClock.now - .seconds(10)
        while ContinuousClock.now < deadline {
            guard qemu.isRunning else { throw ECIError(.delegateFailed, "the VM stopped while booting; console log: \(vm.consoleLog)") }
            if EnginePing.ping(socket: vm.dockerSocket) { return }
            if ContinuousClock.now - lastAgentCheck > .seconds(5) {
                lastAgentCheck = ContinuousClock.now
                do {
                    if let why = try agent.status(timeout: .seconds(2)).prepare?.stoppedBecause {
                        throw ECIError(.refused, "the VM's engine stays stopped: \(why)")
                    }
                } catch let error as ECIError where error.code == .refused || error.code == .protocolVersion {
                    throw error
                } catch {
                    // Not answering yet: the agent starts late in the boot.
                }
            }
            usleep(500_000)
        }
        throw ECIError(.delegateFailed, "the engine did not answer within \(bootTimeout); console log: \(vm.consoleLog)")
    }

    // MARK: Status and stop

    /// The supervisor's record with the agent's status and settings (when it answers).
    func status() -> VMStatus {
        let agent = life.withLock { $0.ports?.agent }
        return VMStatus(
            record: record.current, now: Date().timeIntervalSince1970,
            agent: agent.map { agent in AgentClient.answer { try agent.status(timeout: .seconds(5)) } } ?? .silent,
            settings: agent.map { agent in AgentClient.answer { try agent.settings(timeout: .seconds(5)) } } ?? .silent)
    }

    func requestStop() {
        life.withLock { $0.stopRequested = true }
    }

    /// Asks the agent to power the VM off, waits for QEMU, then kills it after `stopTimeout`.
    func shutdown() {
        record.update { if $0.phase != .failed { $0.phase = .stopping } }
        let (qemu, agent) = life.withLock { ($0.qemu, $0.ports?.agent) }
        guard let qemu else { return }
        if qemu.isRunning {
            do {
                guard let agent else { throw ECIError(.channelDisconnected, "the ports are not connected") }
                try agent.shutdown(timeout: .seconds(5))
            } catch {
                logger.warning("the agent did not take the shutdown request; powering off through QEMU", metadata: ["error": "\(error)"])
                QMP.send(socket: vm.qmp, command: "system_powerdown")
            }
        }
        if !qemu.waitForExit(timeout: stopTimeout) {
            logger.warning("the VM did not power off in time: killing QEMU", metadata: ["pid": "\(qemu.pid)"])
            qemu.kill()
            qemu.waitForExit(timeout: nil)
        }
    }

    /// Closes the sockets, stops the ports, removes the files of a running VM, and only then
    /// gives the directory up.
    func cleanup() {
        let (engineSocket, admin, ports) = life.withLock { life in
            defer {
                life.engineSocket = nil
                life.admin = nil
            }
            return (life.engineSocket, life.admin, life.ports)
        }
        engineSocket?.close()
        admin?.close()
        ports?.stop()
        for socket in [vm.dockerSocket, vm.adminSocket] { unlink(socket) }
        record.remove()
        directoryLock.release()
    }
}
