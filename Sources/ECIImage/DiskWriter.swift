import ECICore
import ECIIO
import Foundation

/// Writes the bootable disk into one file: an MBR (syslinux's boot code), a FAT32 boot
/// partition made with mtools holding syslinux, the kernel and the initramfs, and the ext4 root
/// partition made by `mkfs.ext4 -d` directly at its offset. No loop device, no mount.
struct DiskWriter {
    let spec: ImageSpec
    let sourceDateEpoch: UInt64?
    /// Hex string (the spec's hash) that fixes UUIDs and serials, for reproducible bytes.
    let seed: String

    static let mbrBootCode = "/usr/lib/syslinux/mbr/mbr.bin"
    static let sector: UInt64 = 512
    static let bootOffset: UInt64 = 1 << 20

    func write(to raw: String, rootfs: String, kernel: String, initrd: String, cmdline: String, work: String) throws {
        let rootOffset = Self.bootOffset + spec.bootSize
        let rootSize = spec.diskSize - rootOffset
        guard FileManager.default.createFile(atPath: raw, contents: nil), let handle = FileHandle(forWritingAtPath: raw) else {
            throw ECIError(.system, "can't create \(raw)")
        }
        defer { try? handle.close() }
        try handle.truncate(atOffset: spec.diskSize)

        let bootCode = try FileSystem.read(Self.mbrBootCode)
        let signature = UInt32(seed.prefix(8), radix: 16) ?? 0xEC1E_C1EC
        let mbr = MasterBootRecord(
            partitions: [
                .init(start: UInt32(Self.bootOffset / Self.sector), sectors: UInt32(spec.bootSize / Self.sector), type: 0x0C, bootable: true),
                .init(start: UInt32(rootOffset / Self.sector), sectors: UInt32(rootSize / Self.sector), type: 0x83, bootable: false),
            ],
            diskSignature: signature, bootCode: Array(bootCode.prefix(440)))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Data(try mbr.bytes()))
        try handle.synchronize()

        // FAT32 boot partition, addressed inside the image file with mtools' "@@offset".
        let fat = "\(raw)@@\(Self.bootOffset)"
        var mtoolsEnv = ["MTOOLS_SKIP_CHECK": "1"]
        if let sourceDateEpoch { mtoolsEnv["SOURCE_DATE_EPOCH"] = String(sourceDateEpoch) }
        try ExternalCommand.run(
            ["mformat", "-i", fat, "-F", "-T", "\(spec.bootSize / Self.sector)", "-h", "64", "-s", "32", "-H", "\(Self.bootOffset / Self.sector)",
             "-N", String(seed.dropFirst(8).prefix(8)), "-v", ImageBuilder.bootLabel, "::"],
            environment: mtoolsEnv, what: "format the boot partition")
        let config = work + "/syslinux.cfg"
        try FileSystem.writeAtomically(
            config,
            text: "DEFAULT eci\nPROMPT 0\nTIMEOUT 0\nSERIAL 0 115200\nLABEL eci\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND \(cmdline)\n", mode: 0o644)
        for (source, name) in [(kernel, "vmlinuz"), (initrd, "initrd.img"), (config, "syslinux.cfg")] {
            try ExternalCommand.run(["mcopy", "-m", "-i", fat, source, "::/\(name)"], environment: mtoolsEnv, what: "copy \(name) to the boot partition")
        }
        try ExternalCommand.run(["syslinux", "--offset", "\(Self.bootOffset)", "--install", raw], what: "install syslinux")

        // The root file system, written straight into its partition.
        let uuid = Self.uuid(fromHex: String(seed.dropFirst(16)))
        var mkfsEnv: [String: String] = [:]
        if let sourceDateEpoch {
            mkfsEnv["E2FSPROGS_FAKE_TIME"] = String(sourceDateEpoch)
            // Honoured by e2fsprogs 1.47.1 and later: inode times clamped to the epoch.
            mkfsEnv["SOURCE_DATE_EPOCH"] = String(sourceDateEpoch)
        }
        try ExternalCommand.run(
            ["mkfs.ext4", "-q", "-F", "-L", ImageBuilder.rootLabel, "-U", uuid, "-E", "offset=\(rootOffset),hash_seed=\(uuid)", "-d", rootfs, raw,
             "\(rootSize >> 10)k"],
            environment: mkfsEnv, what: "make the root file system")
    }

    /// A UUID string from 32 hex digits.
    static func uuid(fromHex hex: String) -> String {
        let h = Array(hex.prefix(32).padding(toLength: 32, withPad: "0", startingAt: 0))
        return [h[0..<8], h[8..<12], h[12..<16], h[16..<20], h[20..<32]].map { String($0) }.joined(separator: "-")
    }
}
