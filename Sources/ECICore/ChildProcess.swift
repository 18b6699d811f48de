import CShim
import Glibc

/// What a child process gets: the one description of a spawn, for every process ECI starts
/// (runc, QEMU, host tools, the agent's probe, test programs). Everything not named is inherited,
/// except descriptors: a child gets stdio and the ones passed by name (`inheritOtherFDs`).
public struct SpawnAttributes: Sendable {
    /// Where a standard descriptor of the child comes from.
    public enum Stdio: Sendable, Equatable {
        /// This process's own.
        case inherit
        /// /dev/null.
        case null
        /// A descriptor of this process (it stays open here; the child gets a copy).
        case fd(Int32)
    }

    /// The executable: a path, never searched for on PATH.
    public var executable: String
    /// argv, argv[0] included.
    public var arguments: [String]
    /// The whole environment of the child.
    public var environment: [String: String]
    public var stdin: Stdio = .inherit
    public var stdout: Stdio = .inherit
    public var stderr: Stdio = .inherit
    /// The working directory; nil keeps this process's.
    public var directory: String?
    /// A process group of its own: a terminal's Ctrl-C reaches only us, and we stop the child our way.
    public var newProcessGroup = false
    /// A session of its own (setsid): the child outlives our terminal.
    public var newSession = false
    /// Sent to the child when the *thread* that spawned it ends (PR_SET_PDEATHSIG): spawn from
    /// a thread that lives as long as the child should.
    public var parentDeathSignal: Int32?
    /// The child starts with no signal blocked, whatever this thread blocks (ecibuild blocks its
    /// stop signals to take them on a thread).
    public var resetSignalMask = true
    /// Signals this process ignores go back to their default action in the child, as a shell
    /// would give its children. Off by default: eci-runc hands runc what its caller set.
    public var defaultSignalActions = false
    /// More descriptors of this process the child gets, each at the number given (>= 3, all
    /// different, at most 8), not close-on-exec there.
    public var passedFDs: [(fd: Int32, as: Int32)] = []
    /// Whether the child also keeps every descriptor of this process that is not close-on-exec.
    /// Off by default: a child gets stdio and `passedFDs` only, whatever our own parent leaked
    /// into us (a test runner's pipes pushed mmdebstrap's descriptors past 9, where its
    /// `sh -c 'cat >&N'` hook fails). eci-runc turns it on: runc's caller passes descriptors
    /// (`--preserve-fds`, a console socket) that way.
    public var inheritOtherFDs = false
    /// A seccomp filter the child installs as its last step before exec, so the program and
    /// every descendant of it run under it (eci-runc's floor for runc and its containers).
    public var seccompFilter: SeccompFilter?

    /// `arguments[0]` is the executable.
    public init(_ arguments: [String], environment: [String: String]) {
        self.executable = arguments.first ?? ""
        self.arguments = arguments
        self.environment = environment
    }
}

/// A child process started from `SpawnAttributes` by the C shim (no Swift code runs between
/// fork and exec), waited for by pid.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    public init(pid: pid_t) { self.pid = pid }

    /// Starts a child. A failed exec is a failed spawn (the errno is the exec's).
    /// - Throws: `ECIError.system("start EXECUTABLE", errno:)`.
    public static func spawn(_ attributes: SpawnAttributes) throws -> ChildProcess {
        guard !attributes.executable.isEmpty else { throw ECIError(.invalidArgument, "nothing to run: the argument list is empty") }
        var null: Int32 = -1
        defer { if null >= 0 { close(null) } }
        func descriptor(_ stdio: SpawnAttributes.Stdio) throws -> Int32 {
            switch stdio {
            case .inherit: return -1
            case .fd(let fd): return fd
            case .null:
                if null < 0 { null = try Syscall.retrying("open /dev/null") { open("/dev/null", O_RDWR | O_CLOEXEC) } }
                return null
            }
        }
        let stdin = try descriptor(attributes.stdin)
        let stdout = try descriptor(attributes.stdout)
        let stderr = try descriptor(attributes.stderr)
        let argv = attributes.arguments.map { strdup($0) } + [nil]
        let envp = attributes.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let filter = try attributes.seccompFilter?.kernelInstructions() ?? []
        let passedSources = attributes.passedFDs.map(\.fd)
        let passedTargets = attributes.passedFDs.map(\.as)
        let pid = attributes.executable.withCString { path in
            (attributes.directory ?? "").withCString { directory in
                argv.withUnsafeBufferPointer { argvBuffer in
                    envp.withUnsafeBufferPointer { envpBuffer in
                        var attr = eci_spawn_attr()
                        attr.path = path
                        attr.argv = argvBuffer.baseAddress
                        attr.envp = envpBuffer.baseAddress
                        attr.stdin_fd = stdin
                        attr.stdout_fd = stdout
                        attr.stderr_fd = stderr
                        attr.directory = attributes.directory == nil ? nil : directory
                        attr.new_process_group = attributes.newProcessGroup ? 1 : 0
                        attr.new_session = attributes.newSession ? 1 : 0
                        attr.death_signal = attributes.parentDeathSignal ?? 0
                        attr.reset_signal_mask = attributes.resetSignalMask ? 1 : 0
                        attr.default_signal_actions = attributes.defaultSignalActions ? 1 : 0
                        attr.inherit_other_fds = attributes.inheritOtherFDs ? 1 : 0
                        return passedSources.withUnsafeBufferPointer { sources in
                            passedTargets.withUnsafeBufferPointer { targets in
                                filter.withUnsafeBufferPointer { program in
                                    attr.passed_fds = sources.baseAddress
                                    attr.passed_fd_targets = targets.baseAddress
                                    attr.passed_count = Int32(sources.count)
                                    attr.seccomp_filter = program.isEmpty ? nil : program.baseAddress
                                    attr.seccomp_filter_length = UInt16(program.count)
                                    return eci_spawn(&attr)
                                }
                            }
                        }
                    }
                }
            }
        }
        guard pid > 0 else { throw ECIError.system("start \(attributes.executable)", errno: -pid) }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child to exit and returns its exit code (128+signal when a signal killed
    /// it, as shells report it).
    public func wait() throws -> Int32 {
        var status: Int32 = 0
        try Syscall.retrying("waitpid \(pid)") { waitpid(pid, &status, 0) }
        return Self.exitCode(status)
    }

    /// The exit code if the child has exited (it is then reaped), nil while it runs.
    public func exited() throws -> Int32? {
        var status: Int32 = 0
        let reaped = try Syscall.retrying("waitpid \(pid)") { waitpid(pid, &status, WNOHANG) }
        return reaped == 0 ? nil : Self.exitCode(status)
    }

    /// Kills the child with SIGKILL and reaps it (for a child abandoned on an error path).
    public func killAndReap() {
        _ = kill(pid, SIGKILL)
        _ = try? wait()
    }

    /// A wait status as an exit code: the status, or 128+signal.
    public static func exitCode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    // MARK: Running to completion

    /// What a program that ran to completion printed, and how it ended.
    public struct Output: Sendable {
        /// The exit code (128+signal when killed).
        public var status: Int32
        public var stdout: [UInt8]
        /// Standard error, when it was captured (at most its last `stderrLimit` bytes).
        public var stderr: [UInt8]
    }

    /// Runs a program to completion, capturing its standard output (and its standard error,
    /// unless `captureStderr` is false) and feeding it `input`. Both outputs are drained
    /// together, so a chatty child never blocks on a full pipe.
    /// - Parameters:
    ///   - input: written to the child's stdin, then closed; nil leaves `attributes.stdin`.
    ///   - captureStderr: capture standard error (else `attributes.stderr` applies).
    ///   - stderrLimit: keep only the last this many bytes of standard error.
    public static func run(
        _ attributes: SpawnAttributes, input: [UInt8]? = nil, captureStderr: Bool = true, stderrLimit: Int = .max
    ) throws -> Output {
        var attributes = attributes
        var ours: [Int32] = []  // our ends, closed on the way out
        var theirs: [Int32] = []  // the child's ends, closed once it has them
        defer { (ours + theirs).forEach { close($0) } }
        let out = try Syscall.pipe()
        ours.append(out.read)
        theirs.append(out.write)
        attributes.stdout = .fd(out.write)
        var errRead: Int32 = -1
        if captureStderr {
            let err = try Syscall.pipe()
            ours.append(err.read)
            theirs.append(err.write)
            errRead = err.read
            attributes.stderr = .fd(err.write)
        }
        var inWrite: Int32 = -1
        if input != nil {
            let pipe = try Syscall.pipe()
            ours.append(pipe.write)
            theirs.append(pipe.read)
            inWrite = pipe.write
            attributes.stdin = .fd(pipe.read)
            _ = fcntl(inWrite, F_SETFL, O_NONBLOCK)
        }
        let child = try spawn(attributes)
        theirs.forEach { close($0) }
        theirs = []
        var output = Output(status: 0, stdout: [], stderr: [])
        var pending = input ?? []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var reading: [Int32: Bool] = [out.read: true]
        if errRead >= 0 { reading[errRead] = true }
        if inWrite >= 0, pending.isEmpty {
            close(inWrite)
            ours.removeAll { $0 == inWrite }
            inWrite = -1
        }
        while !reading.isEmpty || inWrite >= 0 {
            var polls = reading.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if inWrite >= 0 { polls.append(pollfd(fd: inWrite, events: Int16(POLLOUT), revents: 0)) }
            try Syscall.retrying("poll the output of \(attributes.executable)") { poll(&polls, nfds_t(polls.count), -1) }
            for p in polls where p.revents != 0 {
                if p.fd == inWrite {
                    let n = pending.withUnsafeBytes { Glibc.write(inWrite, $0.baseAddress, $0.count) }
                    if n > 0 { pending.removeFirst(n) }
                    // The child stopped reading (EPIPE) or took everything: close its stdin.
                    if pending.isEmpty || (n < 0 && Glibc.errno != EAGAIN && Glibc.errno != EINTR) {
                        close(inWrite)
                        ours.removeAll { $0 == inWrite }
                        inWrite = -1
                    }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { Glibc.read(p.fd, $0.baseAddress, $0.count) }
                if n < 0, Glibc.errno == EINTR || Glibc.errno == EAGAIN { continue }
                if n <= 0 {
                    reading[p.fd] = nil
                } else if p.fd == out.read {
                    output.stdout += buffer[0..<n]
                } else {
                    output.stderr += buffer[0..<n]
                    if output.stderr.count > stderrLimit { output.stderr.removeFirst(output.stderr.count - stderrLimit) }
                }
            }
        }
        output.status = try child.wait()
        return output
    }
}
