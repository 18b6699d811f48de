import ECICore
import Testing

@testable import ECIOCI

@Suite struct RuncCommandLineTests {
    @Test func parsesContainerdCreate() throws {
        let args = [
            "--root", "/run/docker/runtime-runc/moby", "--log", "/run/x/log.json", "--log-format", "json", "--systemd-cgroup",
            "create", "--bundle", "/run/x", "--pid-file", "/run/x/init.pid", "--console-socket", "/tmp/c.sock", "abc123",
        ]
        let line = try RuncCommandLine(args)
        #expect(line.command == "create")
        #expect(line.globalValue("root") == "/run/docker/runtime-runc/moby")
        #expect(line.globalValue("log-format") == "json")
        #expect(line.globalBool("systemd-cgroup"))
        #expect(!line.globalBool("debug"))
        let options = try line.commandOptions()
        #expect(options.value("bundle", "b") == "/run/x")
        #expect(options.positionals == ["abc123"])
        #expect(line.runcArguments == args)
    }

    @Test func acceptsSingleDashAndInlineValues() throws {
        let line = try RuncCommandLine(["-root=/r", "-debug", "run", "-b=/b", "-d", "id"])
        #expect(line.globalValue("root") == "/r")
        #expect(line.globalBool("debug"))
        let options = try line.commandOptions()
        #expect(options.value("bundle", "b") == "/b")
        #expect(options.bool("detach", "d"))
    }

    @Test func stripsECIFlagsOnly() throws {
        let line = try RuncCommandLine(["--eci-config", "/etc/eci/x.json", "--root", "/r", "--eci-config=/y", "state", "id"])
        #expect(line.globalValue("eci-config") == "/y")
        #expect(line.runcArguments == ["--root", "/r", "state", "id"])
    }

    @Test func unknownGlobalFlagIsAnError() {
        #expect(throws: ECIError.self) { try RuncCommandLine(["--rot", "/r", "state", "x"]) }
    }

    @Test func unknownCommandIsAnError() {
        #expect(throws: ECIError.self) { try RuncCommandLine(["--root", "/r", "destroy", "x"]) }
    }

    @Test func missingFlagValueIsAnError() {
        #expect(throws: ECIError.self) { try RuncCommandLine(["--root"]) }
        #expect(throws: ECIError.self) { try RuncCommandLine(["create", "--bundle"]).commandOptions() }
    }

    @Test func unknownCreateFlagIsAnError() {
        #expect(throws: ECIError.self) { try RuncCommandLine(["create", "--bogus", "x"]).commandOptions() }
    }

    @Test func passThroughCommandsKeepTheirArguments() throws {
        let line = try RuncCommandLine(["--root", "/r", "exec", "--process", "/p.json", "--detach", "id"])
        #expect(line.command == "exec")
        #expect(line.commandArguments == ["--process", "/p.json", "--detach", "id"])
    }

    @Test(arguments: ["", ".", "..", "../x", "a/b", "a b", String(repeating: "a", count: 1025)])
    func hostileContainerIDsAreRefused(_ id: String) {
        #expect(throws: ECIError.self) { try ContainerID.validate(id) }
    }

    @Test func normalContainerIDsPass() throws {
        try ContainerID.validate("4f2a9c0e_b+x-1.y")
    }
}

@Suite struct RuncBundleRewriteTests {
    @Test(arguments: [
        ["--root", "/r", "create", "--bundle", "/b", "--pid-file", "/p", "id"],
        ["--root", "/r", "create", "-b=/b", "--pid-file", "/p", "id"],
        ["--root", "/r", "create", "--pid-file", "/p", "-b", "/b", "id"],
    ])
    func bundleIsReplacedEverythingElseKept(_ args: [String]) throws {
        let line = try RuncCommandLine(["--eci-config", "/c.json"] + args)
        #expect(line.replacingBundle(with: "/eci/x") == ["--root", "/r", "create", "--bundle", "/eci/x", "--pid-file", "/p", "id"])
    }

    /// An exec's `--process` (every spelling) becomes the checked copy eci-runc hands runc.
    @Test(arguments: [
        ["--root", "/r", "exec", "--process", "/fifo", "--preserve-fds", "1", "id"],
        ["--root", "/r", "exec", "-p", "/fifo", "--preserve-fds", "1", "id"],
        ["--root", "/r", "exec", "--process=/fifo", "--preserve-fds", "1", "id"],
        ["--root", "/r", "exec", "--process", "/a", "--preserve-fds", "1", "-p=/fifo", "id"],
    ])
    func processIsReplaced(_ args: [String]) throws {
        let line = try RuncCommandLine(args)
        #expect(line.replacingCommandFlags(["process", "p"], with: ["--process", "/proc/self/fd/4"])
            == ["--root", "/r", "exec", "--process", "/proc/self/fd/4", "--preserve-fds", "1", "id"])
    }

    /// eci-init travels as two more preserved fds: the caller's count is replaced, once.
    @Test func preservedFDsAreReplaced() throws {
        let given = try RuncCommandLine(["--root", "/r", "create", "--preserve-fds", "2", "--bundle", "/b", "--preserve-fds=2", "id"])
        #expect(given.replacingBundle(with: "/eci/x", preserveFDs: 3) == ["--root", "/r", "create", "--bundle", "/eci/x", "--preserve-fds", "3", "id"])
        let absent = try RuncCommandLine(["run", "-d", "id"])
        #expect(absent.replacingBundle(with: "/eci/x", preserveFDs: 1) == ["run", "--bundle", "/eci/x", "--preserve-fds", "1", "-d", "id"])
    }

    @Test func bundleIsAddedWhenAbsent() throws {
        let line = try RuncCommandLine(["run", "--detach", "id"])
        #expect(line.replacingBundle(with: "/eci/x") == ["run", "--bundle", "/eci/x", "--detach", "id"])
    }
}
