// The typed cursor over validated JSON: each reader against Foundation's reading of the same text
// (numbers to the bit, strings with escapes), nil and an unmoved cursor for a value of another type,
// and no trap on bytes that are not validated JSON.

import Foundation
import Testing
import ProbityFormats

@Suite struct JSONCursorTests {
    func read<T>(_ text: String, _ body: (inout JSONCursor) -> T) -> (value: T, offset: Int) {
        Array(text.utf8).withUnsafeBytes { b in
            var c = JSONCursor(b)
            let value = body(&c)
            return (value, c.offset)
        }
    }

    /// Numbers parse to the Double nearest their text, as Swift's parser (and JSONDecoder) gives it:
    /// whole numbers on the short path, the rest through the parser.
    @Test func numbersMatchTheParser() throws {
        var texts = ["0", "-0", "7", "-12", "999999999999999", "1000000000000000", "9007199254740993",
                     "123456789012345678901234567890", "0.1", "-2.5e-3", "1E+2", "1.7976931348623157e308",
                     "5e-324", "1e-400", "0.30000000000000004", "3.141592653589793238462643383279"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let d = Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF)
            texts.append("\(d)")
            texts.append(String(format: "%.25g", -d))
        }
        for text in texts {
            let expected = try #require(Double(text))
            let (value, offset) = read(" " + text + " ]") { $0.number() }
            #expect(value?.bitPattern == expected.bitPattern, "\(text)")
            #expect(offset == text.utf8.count + 1, "\(text)")
        }
        // Whole numbers keep their sign: -0 is negative zero.
        #expect(read("-0") { $0.number() }.value?.sign == .minus)
    }

    @Test func stringsDecodeEscapes() throws {
        let texts = [#""""#, #""plain ascii""#, #""é😀 中文""#, #""a\"b\\c\/d\n\t\r\b\f""#, #""\u00e9\uD83D\uDE00\u0000""#]
        for text in texts {
            let expected = try JSONDecoder().decode(String.self, from: Data(text.utf8))
            let (value, offset) = read(text + ",") { $0.string() }
            #expect(value == expected, "\(text)")
            #expect(offset == text.utf8.count, "\(text)")
        }
    }

    @Test func otherTypesGiveNilAndDoNotMove() {
        #expect(read(#""1""#) { $0.number() } == (nil, 0))
        #expect(read("1") { $0.string() } == (nil, 0))
        #expect(read("[1]") { $0.string() } == (nil, 0))
        #expect(read("nul") { $0.null() } == (false, 0))
        #expect(read(" null") { $0.null() } == (true, 5))
        #expect(read(#"["a", 1]"#) { $0.strings() }.value == nil)
        #expect(read(#"[1, "a"]"#) { $0.numbers() }.value == nil)
        #expect(read(#"[1, 2.5, -3]"#) { $0.numbers() }.value == [1, 2.5, -3])
    }

    @Test func objectsGiveKeysAndSkipTheRest() {
        let text = #"{"a": [1, {"x": "]}"}], "b" : "two", "c": {"d": [[], {}]}, "e": -1.5e3, "f": null}"#
        var seen: [String] = []
        var b: String?
        let (ok, offset) = read(text) { c in
            c.object { key, c in
                let name = String(decoding: key, as: UTF8.self)
                seen.append(name)
                if JSONCursor.key(key, is: "b") {
                    b = c.string()
                    return b != nil
                }
                return c.skip()
            }
        }
        #expect(ok && offset == text.utf8.count)
        #expect(seen == ["a", "b", "c", "e", "f"] && b == "two")
        // A key written with an escape is left to the careful reader.
        #expect(!read(#"{"n\u0061me": 1}"#) { c in c.object { _, c in c.skip() } }.value)
        #expect(read("{}") { c in c.object { _, _ in false } } == (true, 2))
        #expect(read("[]") { c in c.array { _ in false } } == (true, 2))
    }

    /// Cut-off and malformed text: false or nil, never a trap.
    @Test func truncatedTextDoesNotTrap() {
        let text = #"{"a": [1, "x\"y", {"b": null}], "c": 2.5e1, "d": "\u00e9"}"#
        let bytes = Array(text.utf8)
        for n in 0..<bytes.count {
            let cut = Array(bytes[0..<n])
            cut.withUnsafeBytes { b in
                var c = JSONCursor(b)
                _ = c.object { _, c in c.skip() }
                var d = JSONCursor(b, at: n / 2)
                _ = d.skip()
                _ = d.number()
                _ = d.string()
                _ = d.array { c in c.skip() }
            }
        }
    }
}
