import ECICore
import ECIIO
import Foundation
import Logging

/// The VM's disk: a qcow2 overlay in the VM directory backed by the image's eci.qcow2, so the
/// image is never written and the VM's containers and volumes outlive a stop. An overlay made
/// from another image (its manifest changed) is replaced, with a warning.
struct DiskOverlay {
    let image: ImageFiles
    let vm: VMDirectory
    let logger: Logger

    func ensure() throws {
        let origin = stableHash(String(decoding: try FileSystem.read(image.manifest), as: UTF8.self))
        if FileSystem.exists(vm.disk) {
            let recorded = (try? FileSystem.readText(vm.diskOrigin))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if recorded == origin { return }
            logger.warning("the image changed since this VM's disk was made: starting from a fresh disk", metadata: ["image": "\(image.directory)"])
            unlink(vm.disk)
        }
        let backing = try FileSystem.realPath(image.disk)
        try ExternalCommand.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, vm.disk], what: "make the VM's disk overlay")
        try FileSystem.writeAtomically(vm.diskOrigin, text: origin + "\n", mode: 0o644)
    }
}
