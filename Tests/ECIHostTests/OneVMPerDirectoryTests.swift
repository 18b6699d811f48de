import ECIContract
import ECICore
import Foundation
import Testing

@testable import ECIHost

/// A scratch VM directory, removed at the end.
struct ScratchVM {
    let vm: VMDirectory

    init(_ label: String) throws {
        // Short: the VM's socket paths must fit in sun_path.
        vm = VMDirectory(path: "/tmp/eci-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileSystem.makeDirectories(vm.path, mode: 0o700)
    }

    func remove() { try? FileSystem.removeTree(vm.path) }
}

/// A long-running process standing in for QEMU (or for a supervisor holding the lock): its
/// command line is `sh -c SCRIPT ARGS...`, so it can name a VM's pid file like QEMU does.
final class FakeProcess: Sendable {
    let process: Process
    var pid: pid_t { process.processIdentifier }

    init(_ executable: String, _ arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// One process holding `path`'s flock, as a supervisor does (flock(1) would fork a child
    /// that keeps the lock after the parent is killed).
    static func lockHolder(_ path: String) throws -> FakeProcess {
        try FakeProcess("/bin/sh", ["-c", #"exec 9>>"$0" && /usr/bin/flock --exclusive 9 && exec sleep 300"#, path])
    }

    /// A QEMU look-alike: `-pidfile PATH` on its command line; exits on SIGTERM.
    static func qemu(pidFile: String) throws -> FakeProcess {
        try FakeProcess("/bin/sh", ["-c", #"trap "exit 0" TERM; while :; do sleep 0.2 & wait $!; done"#, "fake-qemu", "-pidfile", pidFile])
    }

    var isRunning: Bool { process.isRunning }

    func waitForExit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }

    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

func eventually(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else { return false }
        usleep(20_000)
    }
    return true
}

@Suite(.serialized) struct OneVMPerDirectoryTests {
    @Test func aSecondSupervisorIsRefusedWhileTheFirstHoldsTheDirectory() throws {
        let scratch = try ScratchVM("lock")
        defer { scratch.remove() }
        let vm = scratch.vm
        #expect(VMDirectoryLock.holder(of: vm) == nil)
        let first = try VMDirectoryLock.acquire(vm)
        #expect(VMDirectoryLock.holder(of: vm) == getpid())
        // flock belongs to the open file, so a second acquire in this process conflicts too.
        #expect {
            _ = try VMDirectoryLock.acquire(vm)
        } throws: { error in
            guard let error = error as? ECIError else { return false }
            return error.code == .invalidState && error.message.contains("a VM already runs from \(vm.path) (supervisor \(getpid()))")
        }
        #expect(throws: ECIError.self) { try VMDirectoryLock.refuseIfHeld(vm) }
        first.release()
        // A process another test forks at this moment holds a copy of the descriptor until it
        // execs (O_CLOEXEC acts at exec): the lock is free once that copy is gone.
        #expect(eventually { VMDirectoryLock.holder(of: vm) == nil })
        try VMDirectoryLock.refuseIfHeld(vm)
        let second = try VMDirectoryLock.acquire(vm)
        second.release()
    }

    /// The lock lives exactly as long as the process holding it, whoever that is.
    @Test func aLockHeldByAnotherProcessEndsWithIt() throws {
        let scratch = try ScratchVM("lock-proc")
        defer { scratch.remove() }
        let vm = scratch.vm
        let holder = try FakeProcess.lockHolder(vm.lockFile)
        defer { holder.stop() }
        #expect(eventually { VMDirectoryLock.holder(of: vm) != nil })
        #expect(throws: ECIError.self) { _ = try VMDirectoryLock.acquire(vm) }
        kill(holder.pid, SIGKILL)
        #expect(holder.waitForExit(seconds: 5))
        #expect(eventually { VMDirectoryLock.holder(of: vm) == nil })
        try VMDirectoryLock.acquire(vm).release()
    }

    /// `ecibuild run` on a directory in use refuses before it starts anything, detached or not,
    /// and leaves the running VM's files alone.
    @Test func runRefusesADirectoryInUseAndLeavesItAlone() throws {
        let ecibuild = try Self.ecibuild()
        let scratch = try ScratchVM("run-busy")
        defer { scratch.remove() }
        let vm = scratch.vm
        let image = vm.path + "-image"
        try FileSystem.makeDirectories(image, mode: 0o755)
        defer { try? FileSystem.removeTree(image) }
        for file in ["eci.qcow2", "eci-kernel", "eci-initrd.img", "manifest.json"] { try FileSystem.write(image + "/" + file, [], mode: 0o644) }
        try FileSystem.write(image + "/eci-cmdline", Array("console=ttyS0".utf8), mode: 0o644)
        // The running VM's files, which a refused run must not touch.
        let first = try FakeProcess.lockHolder(vm.lockFile)
        defer { first.stop() }
        #expect(eventually { VMDirectoryLock.holder(of: vm) != nil })
        let files = [vm.dockerSocket, vm.adminSocket, vm.stateFile, vm.consoleLog]
        for file in files { try FileSystem.write(file, Array("first".utf8), mode: 0o600) }

        for extra in [["--detach"], []] {
            let (status, stderr) = try Self.run(ecibuild, ["run", "--accel", "tcg", "--vm-dir", vm.path] + extra + [image])
            #expect(status != 0)
            #expect(stderr.contains("a VM already runs from \(vm.path)"), "\(extra): \(stderr)")
            for file in files { #expect((try? FileSystem.readText(file)) == "first", "\(extra) touched \(file)") }
            #expect(!FileSystem.exists(vm.disk), "\(extra) made a disk")
        }
        #expect(first.isRunning)
    }

    /// `stop` reaches a QEMU whose supervisor is gone through its pid file, and only a process
    /// whose command line names this directory's pid file.
    @Test func stopFindsQEMUThroughItsPidFileAndNothingElse() throws {
        let scratch = try ScratchVM("stop")
        let other = try ScratchVM("stop-other")
        defer {
            scratch.remove()
            other.remove()
        }
        let vm = scratch.vm
        #expect { try VMStop(vm: vm, timeout: .seconds(1)).run() } throws: { ($0 as? ECIError)?.code == .notFound }

        let qemu = try FakeProcess.qemu(pidFile: vm.qemuPidFile)
        defer { qemu.stop() }
        // A neighbour: a live process whose pid sits in the other directory's pid file, but
        // whose command line names another pid file (a reused pid looks like this).
        let neighbour = try FakeProcess.qemu(pidFile: vm.path + "/not-this.pid")
        defer { neighbour.stop() }
        try FileSystem.write(vm.qemuPidFile, Array("\(qemu.pid)\n".utf8), mode: 0o644)
        try FileSystem.write(other.vm.qemuPidFile, Array("\(neighbour.pid)\n".utf8), mode: 0o644)
        #expect(eventually { QEMUPidFile.runningQEMU(vm) == qemu.pid })
        #expect(QEMUPidFile.runningQEMU(other.vm) == nil)
        #expect(!QEMUPidFile.kill(other.vm))
        #expect { try QEMUPidFile.refuseIfRunning(vm) } throws: { ($0 as? ECIError)?.message.contains("QEMU \(qemu.pid) still runs") == true }

        // What a supervisor killed with SIGKILL leaves behind.
        for file in [vm.dockerSocket, vm.adminSocket, vm.stateFile] { try FileSystem.write(file, [], mode: 0o600) }
        #expect {
            try VMStop(vm: vm, timeout: .milliseconds(300)).run()
        } throws: { ($0 as? ECIError)?.code == .delegateFailed && "\($0)".contains("killed QEMU") }
        #expect(qemu.waitForExit(seconds: 5), "the QEMU of the directory was stopped")
        #expect(neighbour.isRunning, "the neighbour was left alone")
        #expect(QEMUPidFile.runningQEMU(vm) == nil)
        for file in [vm.dockerSocket, vm.adminSocket, vm.stateFile] { #expect(!FileSystem.exists(file), "\(file) left behind") }
    }

    @Test func aCommandLineNamesTheVMOnlyThroughItsPidFileArgument() {
        let vm = VMDirectory(path: "/tmp/vm")
        #expect(QEMUPidFile.names(vm, arguments: ["/usr/bin/qemu-system-x86_64", "-name", "eci", "-pidfile", "/tmp/vm/qemu.pid"]))
        #expect(!QEMUPidFile.names(vm, arguments: ["/usr/bin/qemu-system-x86_64", "-pidfile", "/tmp/vm2/qemu.pid"]))
        #expect(!QEMUPidFile.names(vm, arguments: ["/bin/cat", "/tmp/vm/qemu.pid"]))
        #expect(!QEMUPidFile.names(vm, arguments: ["/tmp/vm/qemu.pid", "-pidfile"]))
        #expect(QEMUPidFile.commandLine(of: getpid())?.isEmpty == false)
    }

    // MARK: Helpers

    /// The ecibuild built beside this test bundle (`swift build`), else `make`'s.
    static func ecibuild() throws -> String {
        let here = parentDirectory(try FileSystem.realPath("/proc/self/exe"))
        for candidate in [here + "/ecibuild", parentDirectory(parentDirectory(here)) + "/debug/ecibuild"] where FileSystem.exists(candidate) {
            return candidate
        }
        throw ECIError(.notFound, "no ecibuild beside \(here): run `swift build` first")
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
