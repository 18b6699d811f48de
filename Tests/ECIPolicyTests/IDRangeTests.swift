import ECICore
import Testing

@testable import ECIPolicy

@Suite struct IDRangeTests {
    @Test func overlapArithmetic() {
        let a = IDRange(base: 100_000)
        #expect(a.end == 165_536)
        #expect(a.overlaps(IDRange(base: 165_535, size: 1)))
        #expect(!a.overlaps(IDRange(base: 165_536)))
        #expect(!a.overlaps(IDRange(base: 34_464, size: 65536)))
        #expect(a.overlaps(IDRange(base: 34_465, size: 65536)))
        #expect(a.hostID(forContainerID: 0) == 100_000)
        #expect(a.hostID(forContainerID: 65535) == 165_535)
        #expect(a.hostID(forContainerID: 65536) == nil)
        #expect(a.mapLine == "0 100000 65536")
    }

    @Test func poolSlots() throws {
        let pool = try IDPool(start: 1 << 20, count: 4 * 65536 + 100)
        #expect(pool.slotCount == 4)
        #expect(pool.range(slot: 3).base == (1 << 20) + 3 * 65536)
        #expect(pool.slot(ofBase: (1 << 20) + 65536) == 1)
        #expect(pool.slot(ofBase: (1 << 20) + 1) == nil)
        #expect(pool.slot(ofBase: (1 << 20) + 4 * 65536) == nil)
        let slots = (0..<pool.slotCount).map { pool.range(slot: $0) }
        for i in slots.indices {
            for j in slots.indices where i != j { #expect(!slots[i].overlaps(slots[j])) }
        }
    }

    @Test func invalidPools() {
        #expect(throws: ECIError.self) { try IDPool(start: 0, count: 65536) }
        #expect(throws: ECIError.self) { try IDPool(start: 100_000, count: 65535) }
        #expect(throws: ECIError.self) { try IDPool(start: UInt32.max - 65535, count: 65536) }
    }

    @Test func largestValidPoolEndsBelowTheInvalidID() throws {
        let pool = try IDPool(start: UInt32.max - 65536, count: 65536)
        #expect(pool.range(slot: 0).end == UInt64(UInt32.max))
    }
}

@Suite struct SubordinateIDTests {
    @Test func parsesAndKeepsForeignLines() {
        let file = SubordinateIDFile(text: "# comment\nalice:100000:65536\nbogus line\neci:1048576:268435456\n")
        #expect(file.entries.count == 2)
        #expect(file.entry(for: "eci")?.start == 1_048_576)
        let added = file.appending(.init(owner: "bob", start: 5, count: 6))
        #expect(added.text == "# comment\nalice:100000:65536\nbogus line\neci:1048576:268435456\nbob:5:6\n")
    }

    @Test func poolComesFromBothFiles() throws {
        let u = SubordinateIDFile(text: "eci:1048576:655360\n")
        let pool = try SubordinateIDPolicy.pool(subuid: u, subgid: u)
        #expect(pool?.slotCount == 10)
        #expect(try SubordinateIDPolicy.pool(subuid: .init(text: ""), subgid: .init(text: "")) == nil)
    }

    @Test func mismatchedOrOverlappingPoolsAreErrors() {
        let u = SubordinateIDFile(text: "eci:1048576:655360\n")
        let g = SubordinateIDFile(text: "eci:2097152:655360\n")
        #expect(throws: ECIError.self) { try SubordinateIDPolicy.pool(subuid: u, subgid: g) }
        #expect(throws: ECIError.self) { try SubordinateIDPolicy.pool(subuid: u, subgid: .init(text: "")) }
        let clash = SubordinateIDFile(text: "eci:1048576:655360\nalice:1100000:65536\n")
        #expect(throws: ECIError.self) { try SubordinateIDPolicy.pool(subuid: clash, subgid: clash) }
    }

    @Test func defaultPoolAvoidsOtherOwners() throws {
        let u = SubordinateIDFile(text: "alice:100000:65536\nbig:1000000:300000\n")
        let g = SubordinateIDFile(text: "carol:1400000:10\n")
        let pool = try SubordinateIDPolicy.defaultPool(subuid: u, subgid: g, containers: 16)
        #expect(pool.start % 65536 == 0)
        #expect(pool.start >= 1_400_010)
        #expect(pool.slotCount == 16)
        for entry in u.entries + g.entries { #expect(!entry.range.overlaps(pool.asRange)) }
    }

    @Test func defaultPoolOnEmptyFilesStartsAtTheSearchStart() throws {
        let pool = try SubordinateIDPolicy.defaultPool(subuid: .init(text: ""), subgid: .init(text: ""))
        #expect(pool.start == SubordinateIDPolicy.defaultSearchStart)
        #expect(pool.slotCount == 4096)
    }
}
