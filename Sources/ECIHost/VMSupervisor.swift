import CShim
import ECIChannel
import ECICore
import ECIIO
import ECIOCI
import Foundation
import Logging

/// The host half of a running ECI VM (`ecibuild run`): starts QEMU, speaks to the agent over
/// the two virtio-serial ports, serves the engine API on a host unix socket (each client
/// connection a stream of the tunnel), answers `ecibuild status` and `stop` on its admin
/// socket, and shuts the VM down cleanly (agent first, then QEMU, killed after a timeout).
///
/// Threads: the tunnel session, the two accept loops and QEMU's reaper each have one; state
/// shared between them is behind `lock`.
public final class VMSupervisor: @unchecked Sendable {
    public let launch: QEMULaunch
    public var bootTimeout: Duration = .seconds(900)
    public var stopTimeout: Duration = .seconds(90)
    private let logger: Logger
    private var vm: VMDirectory { launch.vm }

    private let lock = NSCondition()
    private var state: VMState
    private var qemuPid: pid_t = -1
    private var qemuExited = false
    private var stopRequested = false
    private var tunnel: TunnelEndpoint?
    private var control: ControlClient?
    private var listeners: [UnixSocket] = []

    public init(launch: QEMULaunch, logger: Logger) {
        self.launch = launch
        self.logger = logger
        state = VMState(
            phase: .booting, supervisorPid: getpid(), qemuPid: nil, accelerator: launch.accelerator, image: launch.image.directory,
            dockerHost: "unix://" + launch.vm.dockerSocket, consoleLog: launch.vm.consoleLog, startedAt: Date().timeIntervalSince1970)
    }

    // MARK: Running

    /// Boots the VM and serves it until it stops. `onReady` runs once the engine answers through
    /// the tunnel. Throws (after cleaning up) when the VM can't be booted or never gets ready.
    public func run(onReady: @Sendable (VMState) -> Void) throws {
        try prepareDirectory()
        let waited = Self.blockStopSignals()
        signal(SIGPIPE, SIG_IGN)
        try DetachedThread.start { [self] in
            var caught: Int32 = 0
            var set = waited
            while sigwait(&set, &caught) == 0 {
                logger.info("signal: stopping the VM", metadata: ["signal": "\(caught)"])
                requestStop()
            }
        }
        defer { cleanup() }
        do {
            try startQEMU()
            try connectPorts()
            try serveSockets()
            try waitUntilReady()
        } catch {
            update { $0.phase = .failed; $0.error = "\(error)" }
            shutdown()
            throw error
        }
        update { $0.phase = .ready }
        onReady(snapshot())
        lock.lock()
        while !stopRequested, !qemuExited { lock.wait() }
        lock.unlock()
        shutdown()
    }

    /// SIGINT, SIGTERM and SIGHUP mean "stop the VM cleanly"; one thread takes them with
    /// sigwait. Call this first thing in the process, before any thread exists (Foundation's
    /// Process starts one): threads inherit the mask, and a thread without it would let the
    /// default action kill the supervisor mid-run. QEMU gets a clear mask from eci_spawn_bound.
    @discardableResult
    public static func blockStopSignals() -> sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        return signals
    }

    func prepareDirectory() throws {
        try vm.validate()
        try FileSystem.makeDirectories(vm.path, mode: 0o700)
        if let running = try? VMState.read(vm.stateFile), running.supervisorPid != getpid(), kill(running.supervisorPid, 0) == 0,
            (try? UnixSocket.connect(to: vm.adminSocket))?.close() != nil
        {
            throw ECIError(.invalidState, "a VM already runs from \(vm.path) (supervisor \(running.supervisorPid)); `ecibuild stop` first")
        }
        for socket in [vm.dockerSocket, vm.adminSocket, vm.controlPort, vm.tunnelPort, vm.qmp] { unlink(socket) }
        try DiskOverlay(image: launch.image, vm: vm, logger: logger).ensure()
        try FileSystem.write(vm.consoleLog, [], mode: 0o644)
        try state.write(vm.stateFile)
    }

    func startQEMU() throws {
        guard FileSystem.exists(launch.qemu) else {
            throw ECIError(.notFound, "\(launch.qemu) is not installed (Debian: apt-get install qemu-system-x86)")
        }
        let argv = [launch.qemu] + launch.arguments
        let log = open(vm.supervisorLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { if log >= 0 { close(log) } }
        let pid = Spawn.bound(argv, environment: ProcessInfo.processInfo.environment, output: log)
        guard pid > 0 else { throw ECIError.system("start \(launch.qemu)", errno: -pid) }
        lock.lock()
        qemuPid = pid
        lock.unlock()
        update { $0.qemuPid = pid }
        logger.info("QEMU started", metadata: ["pid": "\(pid)", "accelerator": "\(launch.accelerator.rawValue)"])
        try DetachedThread.start { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            logger.info("QEMU exited", metadata: ["status": "\(status)"])
            lock.lock()
            qemuExited = true
            lock.broadcast()
            lock.unlock()
            tunnel?.stop()
        }
    }

    var isQEMURunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !qemuExited
    }

    /// QEMU creates its port sockets as it starts: wait for them, then connect.
    func connectPorts() throws {
        let deadline = ContinuousClock.now + .seconds(30)
        func connect(_ path: String) throws -> UnixSocket {
            while true {
                if let socket = try? UnixSocket.connect(to: path) { return socket }
                guard isQEMURunning else { throw ECIError(.delegateFailed, "QEMU exited while starting; see \(vm.supervisorLog)") }
                guard ContinuousClock.now < deadline else { throw ECIError(.delegateFailed, "QEMU did not open \(path) within 30 s; see \(vm.supervisorLog)") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        let controlSocket = try connect(vm.controlPort)
        let tunnelSocket = try connect(vm.tunnelPort)
        let tunnel = TunnelEndpoint(role: .host, name: "ecibuild", logger: logger)
        let control = ControlClient(name: "ecibuild", logger: logger)
        lock.lock()
        self.tunnel = tunnel
        self.control = control
        lock.unlock()
        let tunnelFD = tunnelSocket.release()
        let controlFD = controlSocket.release()
        try DetachedThread.start { [self] in
            do { try tunnel.run(port: tunnelFD) } catch { logger.warning("tunnel ended", metadata: ["error": "\(error)"]) }
        }
        try DetachedThread.start { [self] in
            do { try control.run(port: controlFD) } catch { logger.warning("control port ended", metadata: ["error": "\(error)"]) }
        }
    }

    /// The host docker socket (each connection a tunnel stream) and the admin socket.
    func serveSockets() throws {
        let docker = try UnixSocket.listen(at: vm.dockerSocket, mode: 0o600, group: nil)
        let admin = try UnixSocket.listen(at: vm.adminSocket, mode: 0o600, group: nil)
        lock.lock()
        listeners = [docker, admin]
        lock.unlock()
        try DetachedThread.start { [self] in
            while let client = try? docker.accept() {
                guard let tunnel = currentTunnel else { client.close(); continue }
                do { _ = try tunnel.attach(client.release()) } catch {
                    logger.warning("engine connection refused: the tunnel is down", metadata: ["error": "\(error)"])
                }
            }
        }
        try DetachedThread.start { [self] in
            while let client = try? admin.accept() {
                try? DetachedThread.start { [self] in self.serveAdmin(client) }
            }
        }
    }

    var currentTunnel: TunnelEndpoint? {
        lock.lock()
        defer { lock.unlock() }
        return tunnel
    }

    /// Waits for the engine to answer `/_ping` through the tunnel; gives up early when the agent
    /// reports that the engine stays stopped (a failed probe, bad settings).
    func waitUntilReady() throws {
        let deadline = ContinuousClock.now + bootTimeout
        var lastAgentCheck = ContinuousClock.now - .seconds(10)
        while ContinuousClock.now < deadline {
            guard isQEMURunning else { throw ECIError(.delegateFailed, "the VM stopped while booting; console log: \(vm.consoleLog)") }
            if EnginePing.ping(socket: vm.dockerSocket) { return }
            if ContinuousClock.now - lastAgentCheck > .seconds(5) {
                lastAgentCheck = ContinuousClock.now
                if let status = agentStatus(timeout: .seconds(2)), let problems = Self.prepareProblems(status) {
                    throw ECIError(.refused, "the VM's engine stays stopped: \(problems)")
                }
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw ECIError(.delegateFailed, "the engine did not answer within \(bootTimeout); console log: \(vm.consoleLog)")
    }

    /// The agent's reasons for keeping the engine stopped, if its status has any.
    static func prepareProblems(_ status: JSONValue) -> String? {
        guard let prepare = status["prepare"], prepare["ok"]?.boolValue == false else { return nil }
        let problems = prepare["problems"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    // MARK: Status and stop

    func agentStatus(timeout: Duration) -> JSONValue? {
        agentRequest("status", timeout: timeout)
    }

    /// One control request to the agent (`status`, `settings`); nil when it does not answer.
    func agentRequest(_ op: String, timeout: Duration) -> JSONValue? {
        lock.lock()
        let control = self.control
        lock.unlock()
        guard let control, let reply = try? control.request(Array("{\"op\":\"\(op)\"}".utf8), timeout: timeout) else { return nil }
        return try? JSONValue.parse(reply)
    }

    /// The supervisor's record with the agent's status (when it answers) as `agent`.
    func statusDocument() -> JSONValue {
        let record = snapshot()
        var members: [(key: String, value: JSONValue)] = [
            ("phase", .string(record.phase.rawValue)), ("supervisorPid", .integer(record.supervisorPid)),
            ("qemuPid", record.qemuPid.map { .integer($0) } ?? .null), ("accelerator", .string(record.accelerator.rawValue)),
            ("image", .string(record.image)), ("dockerHost", .string(record.dockerHost)), ("consoleLog", .string(record.consoleLog)),
            ("uptimeSeconds", .integer(Int(Date().timeIntervalSince1970 - record.startedAt))),
        ]
        if let error = record.error { members.append(("error", .string(error))) }
        members.append(("agent", agentStatus(timeout: .seconds(5)) ?? .null))
        members.append(("settings", agentRequest("settings", timeout: .seconds(5)) ?? .null))
        return .object(members)
    }

    /// One admin request per connection: a line `status` or `stop`, answered with one JSON line.
    func serveAdmin(_ client: UnixSocket) {
        defer { client.close() }
        client.setReceiveTimeout(10)
        var buffer = [UInt8](repeating: 0, count: 256)
        guard let n = try? client.read(into: &buffer), n > 0 else { return }
        let request = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let reply: JSONValue
        switch request {
        case "status": reply = statusDocument()
        case "stop":
            reply = .object([("stopping", .bool(true))])
            requestStop()
        default: reply = .object([("error", .string("unknown request \"\(request.prefix(40))\""))])
        }
        try? client.write(Array((reply.serialized() + "\n").utf8))
    }

    func requestStop() {
        lock.lock()
        stopRequested = true
        lock.broadcast()
        lock.unlock()
    }

    /// Asks the agent to power the VM off, waits for QEMU, then kills it after `stopTimeout`.
    func shutdown() {
        update { if $0.phase != .failed { $0.phase = .stopping } }
        lock.lock()
        let pid = qemuPid
        let control = self.control
        lock.unlock()
        guard pid > 0 else { return }
        if isQEMURunning {
            if (try? control?.request(Array(#"{"op":"shutdown"}"#.utf8), timeout: .seconds(5))) == nil {
                logger.warning("the agent did not take the shutdown request; powering off through QEMU")
                QMP.send(socket: vm.qmp, command: "system_powerdown")
            }
        }
        let deadline = Date().addingTimeInterval(Double(stopTimeout.components.seconds))
        lock.lock()
        while !qemuExited, Date() < deadline { _ = lock.wait(until: deadline) }
        let exited = qemuExited
        lock.unlock()
        if !exited {
            logger.warning("the VM did not power off in time: killing QEMU", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
            lock.lock()
            while !qemuExited { lock.wait() }
            lock.unlock()
        }
    }

    func cleanup() {
        lock.lock()
        let sockets = listeners
        listeners = []
        let tunnel = self.tunnel
        let control = self.control
        lock.unlock()
        sockets.forEach { $0.close() }
        tunnel?.stop()
        control?.stop()
        for socket in [vm.dockerSocket, vm.adminSocket] { unlink(socket) }
        unlink(vm.stateFile)
    }

    func snapshot() -> VMState {
        lock.lock()
        defer { lock.unlock() }
        return state
    }

    func update(_ change: (inout VMState) -> Void) {
        lock.lock()
        change(&state)
        let record = state
        lock.unlock()
        do { try record.write(vm.stateFile) } catch { logger.warning("can't write the VM state", metadata: ["error": "\(error)"]) }
    }
}
