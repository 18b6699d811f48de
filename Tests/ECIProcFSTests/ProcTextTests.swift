import Testing

@testable import ECIProcFS

@Suite struct ProcTextTests {
    @Test func trimming() {
        #expect("  a b \n".trimmingWhitespace == "a b")
        #expect("\n\t ".trimmingWhitespace == "")
        #expect("".trimmingWhitespace == "")
        #expect("é\n".trimmingWhitespace == "é")
        #expect(" x\r\n".trimmingWhitespace == "x")
    }
}
