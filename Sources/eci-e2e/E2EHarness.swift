import ECITestSupport
import Foundation
import Synchronization

/// One end-to-end case: a name and a body that drives the VM through `E2EContext`.
struct E2ECase: Sendable {
    let name: String
    let body: @Sendable (E2EContext) throws -> Void
}

/// What a case sees: the docker CLI on the host socket (every command and its output go to the
/// case's own log), expectations that record failures and go on, and the fixtures.
final class E2EContext: Sendable {
    let dockerHost: String
    let fixtures: E2EFixtures
    let work: String
    /// `ecibuild` and the VM's directory, for `status`.
    let ecibuild: String
    let vmDirectory: String
    private let log: FileHandle
    private let recorded = Mutex<[String]>([])
    /// The expectations that failed so far.
    var failures: [String] { recorded.withLock { $0 } }

    init(dockerHost: String, fixtures: E2EFixtures, work: String, ecibuild: String, vmDirectory: String, logPath: String) throws {
        self.dockerHost = dockerHost
        self.ecibuild = ecibuild
        self.vmDirectory = vmDirectory
        self.fixtures = fixtures
        self.work = work
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    }

    deinit { try? log.close() }

    func note(_ text: String) {
        log.write(Data((text + "\n").utf8))
    }

    /// The real docker CLI against the VM, as a user would run it.
    @discardableResult
    func docker(_ args: [String], input: String? = nil, environment: [String: String] = [:]) throws -> TestSupport.Output {
        let result = try TestSupport.run(["/usr/bin/docker"] + args, environment: ["DOCKER_HOST": dockerHost].merging(environment) { $1 }, input: input)
        note("$ docker \(args.joined(separator: " "))\n[exit \(result.status)]\n\(result.stdout)\(result.stderr.isEmpty ? "" : "[stderr] " + result.stderr)")
        return result
    }

    /// `ecibuild status --format json` of the VM under test.
    func status() throws -> String {
        let result = try TestSupport.run([ecibuild, "status", "--vm-dir", vmDirectory, "--format", "json"])
        note("$ ecibuild status --format json\n[exit \(result.status)]\n\(result.stdout)\(result.stderr)")
        return result.stdout
    }

    /// `ecibuild debug OP` against the VM under test (test hooks the agent answers on the host channel).
    @discardableResult
    func debug(_ op: String) throws -> TestSupport.Output {
        let result = try TestSupport.run([ecibuild, "debug", op, "--vm-dir", vmDirectory])
        note("$ ecibuild debug \(op)\n[exit \(result.status)]\n\(result.stdout)\(result.stderr)")
        return result
    }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        guard !condition else { return }
        let text = message()
        recorded.withLock { $0.append(text) }
        note("FAILED: \(text)")
    }

    /// A command that must be refused with `message` in its error.
    func expectRefused(_ args: [String], _ message: String) throws {
        let result = try docker(args)
        expect(result.status != 0 && result.stderr.contains(message), "`docker \(args.joined(separator: " "))` must be refused with \"\(message)\"; got exit \(result.status): \(result.stderr.prefix(400))")
    }

    /// The container's uid_map base ("0 BASE 65536"), nil if the map is not a 65536-ID range.
    static func mapBase(_ text: String) -> UInt64? {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 3, fields[0] == "0", fields[2] == "65536" else { return nil }
        return UInt64(fields[1])
    }
}

/// Boots the VM, runs the cases one by one (each with its own log), scans the console, always
/// shuts the VM down (also on failure or Ctrl-C), and ends with `N passed, N failed`.
final class E2EHarness: Sendable {
    let ecibuild: String
    let imageDirectory: String
    let work: String
    let logs: String
    var vmDirectory: String { work + "/vm" }
    /// Whether this run started a VM it must stop (the signal thread may stop it too).
    private let vmStarted = Mutex(false)

    init(ecibuild: String, imageDirectory: String, work: String, logs: String) {
        self.ecibuild = ecibuild
        self.imageDirectory = imageDirectory
        self.work = work
        self.logs = logs
    }

    func say(_ text: String) {
        FileHandle.standardError.write(Data("e2e: \(text)\n".utf8))
    }

    /// Stops the VM if this run started it. Safe to call twice, from a signal thread too.
    func stopVM() {
        let started = vmStarted.withLock { started in
            defer { started = false }
            return started
        }
        guard started else { return }
        say("stopping the VM")
        let stop = try? TestSupport.run([ecibuild, "stop", "--vm-dir", vmDirectory, "--timeout", "90"])
        if stop?.status != 0 { say("ecibuild stop: \(stop?.stderr ?? "did not run")") }
        // Whatever happened, no QEMU of this run outlives it.
        _ = try? TestSupport.sh("pkill -9 -f -- '-pidfile \(vmDirectory)/qemu.pid' || true")
    }

    /// SIGINT/SIGTERM stop the VM, then the run.
    func handleSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        Thread.detachNewThread { [self] in
            var signals = waited
            var caught: Int32 = 0
            guard sigwait(&signals, &caught) == 0 else { return }
            say("interrupted (signal \(caught))")
            stopVM()
            exit(130)
        }
    }

    func run(cases: [E2ECase], fixtures: E2EFixtures, settings: String, only: String?) -> Int32 {
        handleSignals()
        defer { stopVM() }
        var boot: TestSupport.Output
        var started = Date()
        var attempt = 1
        while true {
            say("booting \(imageDirectory) with ecibuild run --detach (console: \(vmDirectory)/console.log)")
            started = Date()
            vmStarted.withLock { $0 = true }
            do {
                boot = try TestSupport.run([ecibuild, "run", "--detach", "--vm-dir", vmDirectory, "--settings", settings, imageDirectory])
            } catch {
                say("ecibuild run: \(error)")
                print("0 passed, 1 failed")
                return 1
            }
            // QEMU's TCG (no KVM) now and then faults a vCPU on the kernel's own live code
            // patching at boot ("Oops: int3" in patched text), an emulator fault, not ECI's;
            // the image's panic=1 makes the VM exit at once. One more boot, said loudly; the
            // failed boot's console stays with the logs, and every later panic still fails
            // the run (console-clean).
            let console = (FileManager.default.contents(atPath: vmDirectory + "/console.log")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            guard boot.status != 0, attempt == 1, console.contains("Kernel panic"), console.contains("Oops: int3") else { break }
            let kept = logs + "/console-boot-\(attempt).log"
            try? console.write(toFile: kept, atomically: true, encoding: .utf8)
            say("WARNING: the VM's kernel panicked while booting (an int3 fault in patched kernel text, QEMU TCG's): \(kept); booting once more")
            stopVM()
            try? FileManager.default.removeItem(atPath: vmDirectory + "/console.log")
            attempt += 1
        }
        guard boot.status == 0, let line = boot.stdout.split(separator: "\n").first(where: { $0.hasPrefix("DOCKER_HOST=") }) else {
            say("the VM did not start: \(boot.stderr)")
            copyConsole()
            print("0 passed, 1 failed")
            return 1
        }
        let dockerHost = String(line.dropFirst("DOCKER_HOST=".count))
        say(String(format: "engine ready after %.0f s at %@", Date().timeIntervalSince(started), dockerHost))

        var passed = 0
        var failed: [String] = []
        // The first case loads the test images every other case uses: it always runs.
        // `--only` is one name part, or several separated by commas.
        let parts = only?.split(separator: ",").map(String.init) ?? []
        let selected = cases.enumerated().filter { item in item.offset == 0 || parts.isEmpty || parts.contains { item.element.name.contains($0) } }.map(\.element)
        for (index, testCase) in selected.enumerated() {
            let logPath = String(format: "%@/%02d-%@.log", logs, index + 1, testCase.name)
            let caseStart = Date()
            var failures: [String]
            do {
                let context = try E2EContext(dockerHost: dockerHost, fixtures: fixtures, work: work, ecibuild: ecibuild, vmDirectory: vmDirectory, logPath: logPath)
                do { try testCase.body(context) } catch { context.expect(false, "error: \(error)") }
                failures = context.failures
            } catch {
                failures = ["can't start the case: \(error)"]
            }
            let seconds = Date().timeIntervalSince(caseStart)
            if failures.isEmpty {
                passed += 1
                say(String(format: "PASS %@ (%.1f s)", testCase.name, seconds))
            } else {
                failed.append(testCase.name)
                say(String(format: "FAIL %@ (%.1f s): %@ — log: %@", testCase.name, seconds, failures.first ?? "", logPath))
            }
        }
        stopVM()
        // The console, kept with the logs, must show no kernel trouble over the whole run.
        let console = copyConsole()
        // Kernel trouble only: a userspace crash in a container is that program's business.
        let trouble = ["Kernel panic", "Oops:", "BUG:", "general protection fault", "Call Trace:"].filter { console.contains($0) }
        if trouble.isEmpty {
            passed += 1
            say("PASS console-clean")
        } else {
            failed.append("console-clean")
            say("FAIL console-clean: the console shows \(trouble.joined(separator: ", ")) — \(logs)/console.log")
        }
        if !failed.isEmpty { say("failed: \(failed.joined(separator: ", ")); logs in \(logs)") }
        print("\(passed) passed, \(failed.count) failed")
        return failed.isEmpty ? 0 : 1
    }

    @discardableResult
    func copyConsole() -> String {
        let console = (FileManager.default.contents(atPath: vmDirectory + "/console.log")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        try? console.write(toFile: logs + "/console.log", atomically: true, encoding: .utf8)
        if let supervisor = FileManager.default.contents(atPath: vmDirectory + "/supervisor.log") {
            _ = FileManager.default.createFile(atPath: logs + "/supervisor.log", contents: supervisor)
        }
        return console
    }
}
