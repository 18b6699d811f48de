import ECIContract
import ECICore
import Foundation
import Testing

@testable import ECIHost

/// The host side's pure parts: QEMU's command line, the VM directory, status rendering.
struct QEMULaunchTests {
    let vm = VMDirectory(path: "/tmp/vm")
    let image = ImageFiles(directory: "/images/eci")

    func value(after flag: String, in args: [String], matching prefix: String = "") -> String? {
        args.indices.dropLast().first { args[$0] == flag && args[$0 + 1].hasPrefix(prefix) }.map { args[$0 + 1] }
    }

    @Test func commandLineBootsTheImageWithNamedPortsAndAnOverlayDisk() {
        let launch = QEMULaunch(accelerator: .tcg, image: image, vm: vm, cmdline: "root=LABEL=eci-root rw console=ttyS0", settingsFile: nil)
        let args = launch.arguments
        #expect(value(after: "-accel", in: args) == "tcg")
        #expect(value(after: "-cpu", in: args) == "max")
        #expect(value(after: "-kernel", in: args) == "/images/eci/eci-kernel")
        #expect(value(after: "-initrd", in: args) == "/images/eci/eci-initrd.img")
        #expect(value(after: "-append", in: args) == "root=LABEL=eci-root rw console=ttyS0")
        // The VM writes to its own overlay, never to the image.
        #expect(value(after: "-drive", in: args) == "file=/tmp/vm/disk.qcow2,format=qcow2,if=virtio,discard=unmap")
        #expect(value(after: "-serial", in: args) == "file:/tmp/vm/console.log")
        #expect(value(after: "-chardev", in: args, matching: "socket,id=eci-control") == "socket,id=eci-control,path=/tmp/vm/port-control.sock,server=on,wait=off")
        #expect(args.contains("virtserialport,chardev=eci-control,name=eci.control"))
        #expect(args.contains("virtserialport,chardev=eci-tunnel,name=eci.tunnel"))
        #expect(!args.contains("-fw_cfg"))
        var kvm = launch
        kvm.accelerator = .kvm
        kvm.settingsFile = "/etc/eci/admin-settings.json"
        #expect(value(after: "-cpu", in: kvm.arguments) == "host")
        #expect(value(after: "-fw_cfg", in: kvm.arguments) == "name=opt/eci/admin-settings.json,file=/etc/eci/admin-settings.json")
    }

    @Test func theVMDirectoryRefusesSocketPathsTooLongForSunPath() throws {
        try VMDirectory(path: "/tmp/vm").validate()
        let long = VMDirectory(path: "/tmp/" + String(repeating: "d", count: 100))
        #expect(throws: ECIError.self) { try long.validate() }
        #expect(VMDirectory.standard(environment: ["ECI_VM_DIR": "/x"]).path == "/x")
        #expect(VMDirectory.standard(environment: ["XDG_STATE_HOME": "/s", "HOME": "/h"]).path == "/s/eci/vm")
        #expect(VMDirectory.standard(environment: ["HOME": "/h"]).path == "/h/.local/state/eci/vm")
    }

    @Test func anIncompleteImageDirectoryNamesWhatIsMissing() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/eci-image-\(UUID().uuidString)"
        try FileSystem.makeDirectories(dir, mode: 0o755)
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.write(dir + "/eci-kernel", [1], mode: 0o644)
        do {
            try ImageFiles(directory: dir).validate()
            Issue.record("an incomplete image was accepted")
        } catch let error as ECIError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("eci.qcow2") && error.message.contains("manifest.json") && !error.message.contains("eci-kernel,"))
        }
    }

    @Test func theStateRecordRoundTrips() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/eci-state-\(UUID().uuidString)"
        try FileSystem.makeDirectories(dir, mode: 0o755)
        defer { try? FileSystem.removeTree(dir) }
        let state = VMState(phase: .ready, supervisorPid: 10, qemuPid: 11, accelerator: .tcg, image: "/i", dockerHost: "unix:///d", consoleLog: "/c", startedAt: 5, error: nil)
        try state.write(dir + "/state.json")
        #expect(try VMState.read(dir + "/state.json") == state)
        try FileSystem.write(dir + "/bad.json", Array("{".utf8), mode: 0o644)
        #expect(throws: ECIError.self) { try VMState.read(dir + "/bad.json") }
    }

    @Test func theAgentsReasonsForAStoppedEngineAreReported() {
        let failed = PrepareReport(ok: false, probes: [], settingsOrigin: nil, problems: ["kernel probe fuse failed: no /dev/fuse", "settings: bad"], overriddenEngineKeys: [])
        #expect(failed.stoppedBecause == "kernel probe fuse failed: no /dev/fuse; settings: bad")
        #expect(PrepareReport(ok: true, probes: [], settingsOrigin: .image, problems: [], overriddenEngineKeys: []).stoppedBecause == nil)
        #expect(PrepareReport(ok: false, probes: [], settingsOrigin: nil, problems: [], overriddenEngineKeys: []).stoppedBecause == nil)
    }
}
