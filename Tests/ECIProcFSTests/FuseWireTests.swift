import Testing

@testable import ECIProcFS

@Suite struct FuseWireTests {
    /// A request as the kernel writes it: fuse_in_header (40 bytes) then the body.
    func request(opcode: UInt32, unique: UInt64 = 7, node: UInt64 = 1, body: [UInt8] = []) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLE32(UInt32(40 + body.count))
        bytes.appendLE32(opcode)
        bytes.appendLE64(unique)
        bytes.appendLE64(node)
        bytes.appendLE32(1000)
        bytes.appendLE32(1001)
        bytes.appendLE32(4242)
        bytes.appendLE16(0)
        bytes.appendLE16(0)
        return bytes + body
    }

    @Test func requestsDecodeAndShortOrLyingOnesAreRefused() throws {
        let lookup = try FuseWire.Request(request(opcode: 1, node: 1, body: Array("abc-1\0".utf8)))
        #expect(lookup.opcode == 1 && lookup.unique == 7 && lookup.nodeID == 1 && lookup.uid == 1000 && lookup.gid == 1001 && lookup.pid == 4242)
        #expect(lookup.name == "abc-1")
        #expect(try FuseWire.Request(request(opcode: 1, body: Array("no-nul".utf8))).name == nil)

        var read: [UInt8] = []
        read.appendLE64(0)  // fh
        read.appendLE64(4096)  // offset
        read.appendLE32(131072)  // size
        read += [UInt8](repeating: 0, count: 20)
        let decoded = try FuseWire.Request(request(opcode: 15, body: read))
        #expect(decoded.readRange?.offset == 4096 && decoded.readRange?.size == 131072)
        #expect(try FuseWire.Request(request(opcode: 15, body: [1, 2, 3])).readRange == nil)

        #expect(throws: (any Error).self) { try FuseWire.Request([1, 2, 3]) }
        var lying = request(opcode: 3)
        lying[0] = 99
        #expect(throws: (any Error).self) { try FuseWire.Request(lying) }
    }

    @Test func repliesHaveTheKernelsSizes() {
        let ok = FuseWire.reply(to: 9, [1, 2, 3])
        #expect(ok.count == 19 && ok.readLE32(at: 0) == 19 && ok.readLE32(at: 4) == 0 && ok.readLE64(at: 8) == 9)
        let failed = FuseWire.reply(to: 9, errno: 2, [1, 2, 3])
        #expect(failed.count == 16 && Int32(bitPattern: failed.readLE32(at: 4)) == -2)
        #expect(FuseWire.initReply(maxReadahead: 1 << 17).count == 64)
        let attributes = FuseWire.Attributes(inode: 5, mode: 0o100444, links: 1)
        #expect(attributes.encoded.count == 88)
        #expect(FuseWire.entryReply(attributes, valid: 1).count == 128)  // sizeof(fuse_entry_out)
        #expect(FuseWire.attributesReply(attributes, valid: 1).count == 104)  // sizeof(fuse_attr_out)
        #expect(FuseWire.openReply(flags: FuseWire.directIO).count == 16)
        #expect(FuseWire.statfsReply().count == 80)
        let entry = FuseWire.directoryEntry(inode: 3, next: 1, name: "uptime", isDirectory: false)
        #expect(entry.count == 32 && entry.readLE32(at: 16) == 6 && entry.readLE32(at: 20) == 8)
    }
}
