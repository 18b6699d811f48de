import ECICore
import Testing

@testable import ECIProcFS

@Suite struct CPUListTests {
    @Test func parsesRangesAndSingles() throws {
        #expect(try CPUList.parse("0-3,5") == [0, 1, 2, 3, 5])
        #expect(try CPUList.parse("0") == [0])
        #expect(try CPUList.parse("0-1,3\n") == [0, 1, 3])
        #expect(try CPUList.parse("3,1,1-2") == [1, 2, 3])
        #expect(try CPUList.parse("8191") == [8191])
    }

    /// An empty cpuset file (a cgroup without the controller enabled) is a valid empty list.
    @Test func emptyIsEmpty() throws {
        #expect(try CPUList.parse("") == [])
        #expect(try CPUList.parse("\n") == [])
    }

    @Test(arguments: [
        "a", "1-", "-1", "3-1", "1,,2", ",1", "1,", "+1", "1 2", "1-2-3", "0x1", "8192", "0-8192",
        "99999999999999999999", "1\u{0}", "١",
    ])
    func rejectsGarbage(_ text: String) {
        #expect(throws: ECIError.self) { try CPUList.parse(text) }
    }

    @Test func formatsLikeTheKernel() {
        #expect(CPUList.format([0, 1, 2, 3, 5]) == "0-3,5")
        #expect(CPUList.format([3, 1, 0]) == "0-1,3")
        #expect(CPUList.format([0, 1]) == "0-1")
        #expect(CPUList.format([7]) == "7")
        #expect(CPUList.format([]) == "")
        #expect(CPUList.format([-1, 2, 2, 9000]) == "2")
    }

    @Test func formatRoundTrips() throws {
        for text in ["0-3,5", "0", "1,3,5-7", "0-8191"] {
            #expect(CPUList.format(try CPUList.parse(text)) == text)
        }
    }
}
