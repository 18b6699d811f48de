import ECICore
import ECISupervisor
import Glibc
import Logging

// ecid: ECI's syscall supervisor. `ecid [--state-dir DIR] [--holder-grace SECONDS] [--debug]`
// serves in the foreground; `ecid mount-helper` is the long-lived helper it starts per
// container and namespace pair (see HelperPool) and `ecid fd-holder --dir DIR --grace SECONDS`
// the process that keeps the notify fds across a restart of ecid (neither for direct use).
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "mount-helper" {
    exit(MountHelper.main())
}
if arguments.first == "fd-holder" {
    var directory: String?
    var grace = FDHolder.defaultGrace
    var rest = arguments.dropFirst()
    while let option = rest.popFirst() {
        switch (option, rest.popFirst()) {
        case let ("--dir", value?): directory = value
        case let ("--grace", value?) where Double(value) != nil: grace = Double(value) ?? grace
        default: exit(2)
        }
    }
    guard let directory else { exit(2) }
    exit(FDHolder.main(directory: directory, grace: grace))
}

// Whatever started ecid (a test runner, a shell) may have blocked signals it inherits:
// SIGTERM must end it. A helper that dies early must not take ecid down with SIGPIPE.
var unblocked = sigset_t()
sigemptyset(&unblocked)
sigprocmask(SIG_SETMASK, &unblocked, nil)
signal(SIGTERM, SIG_DFL)
signal(SIGINT, SIG_DFL)
signal(SIGPIPE, SIG_IGN)

// Every container's helpers and notify fds are descriptors of ecid: the soft limit (1024 under
// systemd) would let a few dozen containers starve everyone's calls. The hard limit is ecid's.
var files = rlimit()
if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0, files.rlim_cur < files.rlim_max {
    files.rlim_cur = files.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
}

var stateDirectory = ProcessInfoEnvironment.value("ECI_STATE_DIR") ?? "/run/eci"
var holderGrace = ProcessInfoEnvironment.value("ECI_ECID_HOLDER_GRACE").flatMap(Double.init) ?? FDHolder.defaultGrace
var level = Logger.Level.info
var index = 0
while index < arguments.count {
    switch arguments[index] {
    case "--state-dir" where index + 1 < arguments.count:
        stateDirectory = arguments[index + 1]
        index += 1
    case "--holder-grace" where index + 1 < arguments.count && Double(arguments[index + 1]) != nil:
        holderGrace = Double(arguments[index + 1]) ?? holderGrace
        index += 1
    case "--debug": level = .debug
    default:
        FileHandleError.write("usage: ecid [--state-dir DIR] [--holder-grace SECONDS] [--debug]\n")
        exit(2)
    }
    index += 1
}
let log = Logger(label: "ecid") { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = level
    return handler
}
do {
    let me = try FileSystem.realPath("/proc/self/exe")
    let supervisor = Supervisor(options: .init(directory: join(stateDirectory, "ecid"), helperPath: me, holderGrace: holderGrace), log: log)
    try supervisor.serve()
} catch {
    log.critical("ecid stopped", metadata: ["error": "\(error)"])
    exit(1)
}

enum ProcessInfoEnvironment {
    static func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

enum FileHandleError {
    static func write(_ text: String) { _ = text.withCString { Glibc.write(2, $0, strlen($0)) } }
}
