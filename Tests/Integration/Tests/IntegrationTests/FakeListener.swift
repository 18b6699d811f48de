import ECICore
import Foundation

/// A process that listens on a unix socket under a command name of the test's choosing (comm is
/// the executed file's name: a symlink to perl named `dockerd`, `containerd-shim`, ...), standing
/// in for an engine whose sockets the runtime must find by identity.
enum FakeListener {
    /// Starts perl as `directory/(link ?? command)` listening on `socket`; returns once the
    /// socket exists. The caller kills it (SIGKILL: a test runner's children may inherit an
    /// ignored SIGTERM).
    static func start(as command: String, on socket: String, in directory: String, link: String? = nil) throws -> Process {
        let program = directory + "/" + (link ?? command)
        try FileManager.default.createDirectory(atPath: parentDirectory(program), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: program, withDestinationPath: "/usr/bin/perl")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = ["-MIO::Socket::UNIX", "-e", "my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 5) or die $!; sleep 120", socket]
        try p.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
        return p
    }
}
