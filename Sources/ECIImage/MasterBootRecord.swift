import ECICore

/// A DOS (MBR) partition table, written into a disk image file by ECI itself: no loop device,
/// no partitioning tool.
public struct MasterBootRecord: Sendable, Equatable {
    public struct Partition: Sendable, Equatable {
        /// First sector (512 bytes each) and number of sectors.
        public var start: UInt32
        public var sectors: UInt32
        /// MBR partition type: 0x0c FAT32 (LBA), 0x83 Linux.
        public var type: UInt8
        public var bootable: Bool

        public init(start: UInt32, sectors: UInt32, type: UInt8, bootable: Bool) {
            self.start = start
            self.sectors = sectors
            self.type = type
            self.bootable = bootable
        }
    }

    /// Up to four primary partitions.
    public var partitions: [Partition]
    public var diskSignature: UInt32
    /// Boot code for the first 440 bytes (syslinux's mbr.bin), zero-padded.
    public var bootCode: [UInt8]

    public init(partitions: [Partition], diskSignature: UInt32, bootCode: [UInt8]) {
        self.partitions = partitions
        self.diskSignature = diskSignature
        self.bootCode = bootCode
    }

    /// The 512-byte sector 0.
    public func bytes() throws -> [UInt8] {
        guard partitions.count <= 4 else { throw ECIError(.invalidArgument, "an MBR holds at most four partitions") }
        guard bootCode.count <= 440 else { throw ECIError(.invalidArgument, "MBR boot code is \(bootCode.count) bytes; at most 440 fit") }
        var sector = [UInt8](repeating: 0, count: 512)
        sector.replaceSubrange(0..<bootCode.count, with: bootCode)
        put32(&sector, 440, diskSignature)
        for (index, partition) in partitions.enumerated() {
            let base = 446 + index * 16
            sector[base] = partition.bootable ? 0x80 : 0x00
            // CHS fields unused: LBA addressing, "beyond CHS" marker values.
            sector.replaceSubrange(base + 1..<base + 4, with: [0xFE, 0xFF, 0xFF])
            sector[base + 4] = partition.type
            sector.replaceSubrange(base + 5..<base + 8, with: [0xFE, 0xFF, 0xFF])
            put32(&sector, base + 8, partition.start)
            put32(&sector, base + 12, partition.sectors)
        }
        sector[510] = 0x55
        sector[511] = 0xAA
        return sector
    }

    private func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
