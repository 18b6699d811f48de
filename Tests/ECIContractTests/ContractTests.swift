import ECICore
import Testing

@testable import ECIContract

struct ContractTests {
    @Test func placeholder() {
        #expect(ControlProtocol.version == 1)
    }
}
