import ECIContract
import ECICore
import Foundation

/// The image files `ecibuild run` boots (what `ecibuild image` wrote).
public struct ImageFiles: Sendable, Equatable {
    public var directory: String
    public var disk: String { directory + "/eci.qcow2" }
    public var kernel: String { directory + "/eci-kernel" }
    public var initrd: String { directory + "/eci-initrd.img" }
    public var cmdline: String { directory + "/eci-cmdline" }
    public var manifest: String { directory + "/manifest.json" }

    public init(directory: String) {
        self.directory = directory
    }

    /// Refuses a directory that is not a complete `ecibuild image` output, naming what is missing.
    public func validate() throws {
        let missing = [disk, kernel, initrd, cmdline, manifest].filter { !FileSystem.exists($0) }
        guard missing.isEmpty else {
            throw ECIError(.notFound, "\(directory) is not an ecibuild image output: missing \(missing.map { String($0.split(separator: "/").last ?? "") }.joined(separator: ", ")) (build one with `ecibuild image -o \(directory)`)")
        }
    }
}

/// QEMU's command line for an ECI VM. Pure, so it is unit-tested.
///
/// The image's own kernel and initrd are booted directly (no bootloader round trip), from a
/// copy-on-write overlay of the image's disk that lives in the VM directory, so the image stays
/// untouched and the VM's containers and volumes survive a stop. The host talks to the agent
/// over two named virtio-serial ports, each a unix socket QEMU listens on.
public struct QEMULaunch: Sendable, Equatable {
    public var qemu: String = "/usr/bin/qemu-system-x86_64"
    public var accelerator: Accelerator
    public var cpus: Int = 2
    public var memoryMiB: Int = 2048
    public var image: ImageFiles
    public var vm: VMDirectory
    /// Kernel command line (the image's eci-cmdline).
    public var cmdline: String
    /// Settings for the agent, passed through fw_cfg; nil: the image's own.
    public var settingsFile: String?

    public init(accelerator: Accelerator, image: ImageFiles, vm: VMDirectory, cmdline: String, settingsFile: String?) {
        self.accelerator = accelerator
        self.image = image
        self.vm = vm
        self.cmdline = cmdline
        self.settingsFile = settingsFile
    }

    public var arguments: [String] {
        var args = [
            "-name", "eci", "-machine", "q35", "-accel", accelerator.rawValue, "-cpu", accelerator == .kvm ? "host" : "max",
            "-smp", "\(cpus)", "-m", "\(memoryMiB)",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", image.kernel, "-initrd", image.initrd, "-append", cmdline,
            "-drive", "file=\(vm.disk),format=qcow2,if=virtio,discard=unmap",
            "-serial", "file:\(vm.consoleLog)",
            "-device", "virtio-serial-pci,id=eci-serial",
            "-chardev", "socket,id=eci-control,path=\(vm.controlPort),server=on,wait=off",
            "-device", "virtserialport,chardev=eci-control,name=\(ControlProtocol.controlPortName)",
            "-chardev", "socket,id=eci-tunnel,path=\(vm.tunnelPort),server=on,wait=off",
            "-device", "virtserialport,chardev=eci-tunnel,name=\(ControlProtocol.tunnelPortName)",
            "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
            "-qmp", "unix:\(vm.qmp),server=on,wait=off",
            "-pidfile", vm.qemuPidFile,
        ]
        if let settingsFile { args += ["-fw_cfg", "name=\(ControlProtocol.settingsFirmwareKey),file=\(settingsFile)"] }
        return args
    }
}
