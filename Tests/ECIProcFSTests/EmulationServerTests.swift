import ECIPolicy
import Glibc
import Logging
import Testing

@testable import ECIProcFS

/// The server's answers (`EmulationServer.answer`), fed requests as the kernel writes them, with
/// a source of fixed content: no /dev/fuse.
@Suite struct EmulationServerTests {
    struct FixedSource: EmulationSource {
        let key: String
        func content(of file: EmulatedFile, key: String) throws -> [UInt8]? {
            key == self.key ? Array("\(file.rawValue) of \(key)\n".utf8) : nil
        }
        func knownKeys() -> [String] { [key] }
    }

    let key = "0123456789ab-web"
    var server: EmulationServer { EmulationServer(fd: -1, source: FixedSource(key: key), log: Logger(label: "test")) }

    func request(_ opcode: FuseWire.Opcode, node: UInt64, body: [UInt8] = []) throws -> FuseWire.Request {
        var bytes: [UInt8] = []
        bytes.appendLE32(UInt32(40 + body.count))
        bytes.appendLE32(opcode.rawValue)
        bytes.appendLE64(9)
        bytes.appendLE64(node)
        bytes += [UInt8](repeating: 0, count: 16)
        return try FuseWire.Request(bytes + body)
    }

    func read(_ node: UInt64, offset: UInt64, size: UInt32) -> [UInt8] {
        var body: [UInt8] = []
        body.appendLE64(0)
        body.appendLE64(offset)
        body.appendLE32(size)
        body += [UInt8](repeating: 0, count: 20)
        return body
    }

    /// The error of a reply (0: none) and its payload.
    func decode(_ reply: [UInt8]?) -> (errno: Int32, payload: [UInt8]) {
        guard let reply, reply.count >= 16 else { return (-1, []) }
        return (-Int32(bitPattern: reply.readLE32(at: 4)), Array(reply[16...]))
    }

    @Test func lookupOpenReadAndTheirRefusals() throws {
        let server = server
        let lookup = decode(server.answer(try request(.lookup, node: EmulationTree.rootID, body: Array("\(key)\0".utf8))))
        #expect(lookup.errno == 0 && lookup.payload.readLE64(at: 0) == EmulationTree.id(of: .container(key)))
        #expect(decode(server.answer(try request(.lookup, node: EmulationTree.rootID, body: Array("..\0".utf8)))).errno == ENOENT)
        let file = EmulationTree.id(of: .file(key, .meminfo))
        let attributes = decode(server.answer(try request(.getattr, node: file)))
        // Size above any content (sendfile reads up to it), never cached.
        #expect(attributes.errno == 0 && attributes.payload.readLE64(at: 0) == 0 && attributes.payload.readLE64(at: 24) >= 64 * 1024)
        #expect(decode(server.answer(try request(.flush, node: file))).errno == ENOSYS, "no FLUSH per close")
        let open = decode(server.answer(try request(.open, node: file)))
        #expect(open.errno == 0 && open.payload.readLE32(at: 8) == FuseWire.directIO)
        let whole = decode(server.answer(try request(.read, node: file, body: read(file, offset: 0, size: 4096))))
        #expect(String(decoding: whole.payload, as: UTF8.self) == "meminfo of \(key)\n")
        let piece = decode(server.answer(try request(.read, node: file, body: read(file, offset: 3, size: 4))))
        #expect(String(decoding: piece.payload, as: UTF8.self) == "info")
        let past = decode(server.answer(try request(.read, node: file, body: read(file, offset: 1 << 40, size: 4096))))
        #expect(past.errno == 0 && past.payload.isEmpty, "EOF past the end")
        #expect(decode(server.answer(try request(.open, node: EmulationTree.id(of: .procDirectory(key))))).errno == EISDIR)
        #expect(decode(server.answer(try request(.read, node: 0x7fff_0000_0000_0010, body: read(0, offset: 0, size: 10)))).errno == ENOENT, "an unknown node")
        #expect(decode(server.answer(try request(.read, node: file, body: [1, 2]))).errno == EINVAL, "a short READ body")
        #expect(server.answer(try request(.forget, node: file)) == nil, "FORGET has no reply")
        var write: [UInt8] = []
        write.appendLE32(40)
        write.appendLE32(16)  // FUSE_WRITE: not answered by a read-only file system
        write += [UInt8](repeating: 0, count: 32)
        #expect(decode(server.answer(try FuseWire.Request(write))).errno == ENOSYS)
    }

    @Test func directoriesListTheirFilesInPieces() throws {
        let server = server
        let proc = EmulationTree.id(of: .procDirectory(key))
        var names: [String] = []
        var offset: UInt64 = 0
        while true {
            let reply = decode(server.answer(try request(.readdir, node: proc, body: read(proc, offset: offset, size: 64))))
            #expect(reply.errno == 0)
            guard !reply.payload.isEmpty else { break }
            var at = 0
            while at + 24 <= reply.payload.count {
                let length = Int(reply.payload.readLE32(at: at + 16))
                names.append(String(decoding: reply.payload[(at + 24)..<(at + 24 + length)], as: UTF8.self))
                offset = reply.payload.readLE64(at: at + 8)
                at += (24 + length + 7) / 8 * 8
            }
        }
        #expect(names == [".", "..", "uptime", "meminfo", "cpuinfo", "stat", "swaps"])
    }
}
