import ECICore
import Foundation
import Testing

@testable import ECIChannel

#if canImport(Glibc)
import Glibc
#endif

@Suite struct PortConnectionTests {
    /// Frames written from many threads at once arrive whole: none interleaves with another.
    @Test func concurrentWritersNeverInterleaveFrames() throws {
        let (a, b) = Sockets.pair()
        let writer = try PortConnection(fd: a, label: "writer", logger: testLogger("port"))
        let reader = try PortConnection(fd: b, label: "reader", logger: testLogger("port"))
        var threads: [Background] = []
        for t in 0..<8 {
            threads.append(Background("writer-\(t)") {
                for i in 0..<40 {
                    let payload = [UInt8](repeating: UInt8(t), count: (i * 997 + t * 131) % Frame.maxPayload)
                    try? writer.send(Frame(kind: .data, stream: UInt32(t), payload: payload))
                }
            })
        }
        var frames: [Frame] = []
        while frames.count < 320, let batch = try reader.receive() { frames += batch }
        for thread in threads { #expect(thread.wait()) }
        #expect(frames.count == 320)
        #expect(reader.discarded == 0)
        #expect(frames.allSatisfy { frame in frame.payload.allSatisfy { $0 == UInt8(frame.stream) } })
        for t in 0..<8 {
            let sizes = frames.filter { $0.stream == UInt32(t) }.map(\.payload.count)
            #expect(sizes == (0..<40).map { ($0 * 997 + t * 131) % Frame.maxPayload }, "each writer's frames in its order")
        }
        writer.close()
        #expect(try reader.receive() == nil, "end of file after the writer closed")
        reader.close()
    }

    @Test func interruptWakesABlockedReaderAndFailsWriters() throws {
        let (a, b) = Sockets.pair()
        let port = try PortConnection(fd: a, label: "port", logger: testLogger("port"))
        let result = Locked<[Frame]??>(nil)
        let reading = Background("reader") {
            let frames = try? port.receive()
            result.withLock { $0 = .some(frames) }
        }
        usleep(50_000)
        port.interrupt()
        #expect(reading.wait(seconds: 5))
        #expect(result.current == .some(nil))
        #expect(throws: ECIError.self) { try port.send(Frame(kind: .open, stream: 1)) }
        port.close()
        close(b)
    }

    @Test func aGarbageFloodFailsTheRead() throws {
        let (a, b) = Sockets.pair()
        let port = try PortConnection(fd: a, label: "port", garbageLimit: 10_000, logger: testLogger("port"))
        let feeder = Background("feeder") { Sockets.writeAll(b, randomBytes(50_000, seed: 9)) }
        #expect(throws: ECIError.self) { _ = try port.receive() }
        port.close()
        #expect(feeder.wait())
        close(b)
    }
}
