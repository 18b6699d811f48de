import ECICore
import Testing

@testable import ECIOCI

@Suite struct JSONValueTests {
    @Test func roundTripKeepsOrderAndNumberLiterals() throws {
        let text = #"{"z":1,"a":[true,false,null],"big":18446744073709551615,"neg":-9223372036854775808,"f":1.5e-3,"s":"\u00e9\n\"x\""}"#
        let value = try JSONValue.parse(text)
        let again = try JSONValue.parse(value.serialized())
        #expect(again == value)
        #expect(value.serialized().hasPrefix(#"{"z":1,"a":[true,false,null],"big":18446744073709551615,"neg":-9223372036854775808,"f":1.5e-3"#))
        #expect(value["big"]?.uint64Value == UInt64.max)
        #expect(value["neg"]?.int64Value == Int64.min)
        #expect(value["s"]?.stringValue == "é\n\"x\"")
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#).stringValue == "😀")
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\":1}x", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "{\"a\":1,\"a\":2}", "tru",
        "\"\\ud800\"", "[1 2]", "{1:2}", "nul",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: ECIError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsDeepNesting() {
        let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: ECIError.self) { try JSONValue.parse(deep) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: ECIError.self) { try JSONValue.parse([0x22, 0xff, 0xfe, 0x22]) }
    }

    @Test func setReplacesInPlaceAndRemoves() throws {
        var value = try JSONValue.parse(#"{"a":1,"b":2,"c":3}"#)
        value.set("b", .string("x"))
        value.set("d", .bool(true))
        value.set("a", nil)
        #expect(value.serialized() == #"{"b":"x","c":3,"d":true}"#)
    }
}
