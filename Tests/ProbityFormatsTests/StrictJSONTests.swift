// The strict JSON validator: a table of texts RFC 8259 forbids, each refused at its own offset
// with what was expected, and a table of edge cases it must accept (and Foundation then decodes).

import Foundation
import Testing
import ProbityFormats

@Suite struct StrictJSONTests {
    /// The error for `text`, or nil when it is accepted.
    func refusal(_ text: [UInt8]) -> JSONSyntaxError? {
        do { try StrictJSON.validate(text, path: "t.json") } catch let e as JSONSyntaxError { return e } catch {}
        return nil
    }

    func refusal(_ text: String) -> JSONSyntaxError? { refusal(Array(text.utf8)) }

    static let invalid: [(text: String, offset: Int, expected: String)] = [
        ("", 0, "a value"),
        ("   ", 3, "a value"),
        ("[1, 2,]", 6, "a value after ',' (trailing commas are not JSON)"),
        (#"{"a": 1,}"#, 8, "a key in double quotes after ',' (trailing commas are not JSON)"),
        ("[1 2]", 3, "',' or ']'"),
        (#"{"a" 1}"#, 5, "':' after the key"),
        (#"{"a": 1 "b": 2}"#, 8, "',' or '}'"),
        ("{a: 1}", 1, "a key in double quotes or '}'"),
        ("{1: 1}", 1, "a key in double quotes or '}'"),
        ("['a']", 1, "a value"),
        ("[1] // note", 4, "the end of the text after the value"),
        ("/* c */ 1", 0, "a value"),
        ("NaN", 0, "a value"),
        ("[Infinity]", 1, "a value"),
        ("-Infinity", 1, "a digit"),
        ("[nul]", 1, "a value"),
        ("[True]", 1, "a value"),
        ("01", 1, "'.', 'e' or the end of the number (leading zeros are not JSON)"),
        ("-01", 2, "'.', 'e' or the end of the number (leading zeros are not JSON)"),
        ("+1", 0, "a value"),
        (".5", 0, "a value"),
        ("1.", 2, "a digit after the decimal point"),
        ("1.e3", 2, "a digit after the decimal point"),
        ("1e", 2, "a digit in the exponent"),
        ("1e+", 3, "a digit in the exponent"),
        ("0x10", 1, "the end of the text after the value"),
        ("1e400", 0, "a number within ±1.8e308"),
        ("-1e999", 0, "a number within ±1.8e308"),
        // Whole numbers past Double's range without an exponent: 10^309, and 2^1024 written out.
        ("1" + String(repeating: "0", count: 309), 0, "a number within ±1.8e308"),
        ("[-179769313486231590772930519078902473361797697894230657273430081157732675805500963132708477322407536021120113879871393357658789768814416622492847430639474124377767893424865485276302219601246094119453082952085005768838150682342462881473913110540827237163350510684586298239947245938479716304835356329624224137216]",
         1, "a number within ±1.8e308"),
        ("1 2", 2, "the end of the text after the value"),
        ("{} x", 3, "the end of the text after the value"),
        ("\"a\tb\"", 2, "a control character written as an escape (\\n, \\t, \\u00XX) inside the string"),
        ("\"a\nb\"", 2, "a control character written as an escape (\\n, \\t, \\u00XX) inside the string"),
        (#""\x41""#, 2, "one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX"),
        (#""\u12g4""#, 5, "four hexadecimal digits after \\u"),
        (#""\uD83D""#, 1, "a \\uDC00-\\uDFFF escape after the high surrogate \\uD83D"),
        (#""\uD83Dx""#, 1, "a \\uDC00-\\uDFFF escape after the high surrogate \\uD83D"),
        (#""\uD83D\u0041""#, 1, "a \\uDC00-\\uDFFF escape after the high surrogate \\uD83D"),
        (#""\uDE00""#, 1, "a high surrogate before a low one"),
        (#""abc"#, 4, "'\"' to close the string"),
        (#"{"a": 1, "a": 2}"#, 9, "keys that differ within one object"),
        (#"{"a": 1, "\u0061": 2}"#, 9, "keys that differ within one object"),
        (#"{"x": {"a": 1, "b": {}, "a": 3}}"#, 24, "keys that differ within one object"),
        (#"{"a": {"b": {"c": 1}, "c": 2}, "b": [{"a": 1}], "a": 3}"#, 48, "keys that differ within one object"),
        ("[1]\u{00}", 3, "the end of the text after the value"),
    ]

    @Test(arguments: invalid)
    func refused(_ c: (text: String, offset: Int, expected: String)) {
        let e = refusal(c.text)
        #expect(e?.offset == c.offset, "\(c.text): \(e?.description ?? "accepted")")
        #expect(e?.expected == c.expected, "\(c.text): \(e?.description ?? "accepted")")
    }

    @Test func invalidUTF8() {
        let quote = UInt8(ascii: "\"")
        let cases: [(bytes: [UInt8], offset: Int)] = [
            ([quote, 0xFF, quote], 1),                     // never valid
            ([quote, 0x61, 0xC0, 0xAF, quote], 2),         // overlong '/'
            ([quote, 0xE0, 0x80, 0xAF, quote], 1),         // overlong, three bytes
            ([quote, 0xED, 0xA0, 0x80, quote], 1),         // an encoded surrogate
            ([quote, 0xF4, 0x90, 0x80, 0x80, quote], 1),   // past U+10FFFF
            ([quote, 0xE2, 0x82, quote], 1),               // truncated sequence
            ([quote, 0x80, quote], 1),                     // a lone continuation byte
        ]
        for c in cases {
            let e = refusal(c.bytes)
            #expect(e?.offset == c.offset && e?.expected == "valid UTF-8", "\(c.bytes): \(e?.description ?? "accepted")")
        }
        let bom = refusal([0xEF, 0xBB, 0xBF] + Array("{}".utf8))
        #expect(bom?.offset == 0 && bom?.found.contains("byte order mark") == true)
        // Outside strings only ASCII is grammar.
        #expect(refusal([UInt8(ascii: "["), 0xC3, 0xA9, UInt8(ascii: "]")])?.found == "the byte 0xc3")
    }

    @Test func nestingCap() {
        let deepest = String(repeating: "[", count: StrictJSON.maxDepth) + String(repeating: "]", count: StrictJSON.maxDepth)
        #expect(refusal(deepest) == nil)
        let mixed = String(repeating: "{\"k\":[", count: StrictJSON.maxDepth / 2) + "0"
            + String(repeating: "]}", count: StrictJSON.maxDepth / 2)
        #expect(refusal(mixed) == nil)
        let over = String(repeating: "[", count: StrictJSON.maxDepth + 1) + String(repeating: "]", count: StrictJSON.maxDepth + 1)
        let e = refusal(over)
        #expect(e?.offset == StrictJSON.maxDepth && e?.expected == "at most 128 nested arrays and objects")
        // A hostile depth fails fast at the cap, without recursion.
        let hostile = String(repeating: "[", count: 1_000_000)
        #expect(refusal(hostile)?.offset == StrictJSON.maxDepth)
    }

    /// Each key goes into its object's set in place: an insert that copied the set made an object
    /// of n keys cost O(n²) (a 1.2 MB safetensors header of 100,000 keys took 70 s).
    @Test func manyKeysInLinearTime() {
        let n = 300_000
        var text = "{\"outer\": {"
        for k in 0..<n { text += "\"k\(k)\": \(k % 7 == 0 ? "{\"k1\": 1}" : "0")," }
        text += "\"last\": 0}, \"k1\": 0}"
        let start = ContinuousClock.now
        #expect(refusal(text) == nil)
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        #expect(seconds < 10, "\(n) keys took \(seconds) s")
        // And a duplicate among them is still found, at its own offset.
        let dup = "{" + (0..<n).map { "\"k\($0)\": 0" }.joined(separator: ", ") + ", \"k\(n / 2)\": 1}"
        #expect(refusal(dup)?.expected == "keys that differ within one object")
        #expect(refusal(dup)?.offset == dup.utf8.count - "\"k\(n / 2)\": 1}".utf8.count)
    }

    /// The duplicate-key check holds at most `maxOpenKeys` keys over the objects open at once (as
    /// hashes and offsets); an object's keys are let go when it closes.
    @Test func openKeysAreCapped() {
        let cap = StrictJSON.maxOpenKeys
        func object(_ keys: Range<Int>, prefix: String = "k") -> String {
            "{" + keys.map { "\"\(prefix)\($0)\":0" }.joined(separator: ",") + "}"
        }
        #expect(refusal(object(0..<cap)) == nil)
        let over = object(0..<(cap + 1))
        let e = refusal(over)
        #expect(e?.expected == "at most \(cap) keys in the objects open at once (a cap on the memory the duplicate-key check takes)")
        #expect(e?.offset == over.utf8.count - "\"k\(cap)\":0}".utf8.count)
        // Two objects one after the other hold their keys in turn; one inside the other, together.
        let half = cap / 2 + 1
        #expect(refusal("[" + object(0..<half) + "," + object(0..<half) + "]") == nil)
        let nested = object(0..<half).dropLast() + ",\"inner\":" + object(0..<half, prefix: "i") + "}"
        #expect(refusal(nested)?.expected.hasPrefix("at most \(cap) keys") == true)
        // A duplicate is still found after the check let the first key go as a hash.
        #expect(refusal(#"{"\u00e9": 1, "é": 2}"#)?.expected == "keys that differ within one object")
    }

    /// Every value counts, containers and scalars at any depth (keys do not): `[1, {"a": [2]}]` is 5.
    @Test func valueCap() throws {
        let text = Array(#"[1, {"a": [2]}]"#.utf8)
        try StrictJSON.validate(text, path: "t.json", maxValues: 5)
        #expect(throws: JSONSyntaxError.self) { try StrictJSON.validate(text, path: "t.json", maxValues: 4) }
        do { try StrictJSON.validate(text, path: "t.json", maxValues: 4) } catch let e as JSONSyntaxError {
            #expect(e.offset == 11 && e.found == "one more")   // the inner 2
        }
    }

    static let valid: [String] = [
        "{}", "[]", " [ ] ", "\t{\r\n}\n", "[{}, [], [[]], {\"\": {}}]",
        "0", "-0", "1", "-1", "10", "1.5", "-0.0", "1e3", "1E+3", "1e-3", "0.5e0", "123456789012345678901234567890",
        "1.7976931348623157e308", "5e-324", "1e-400", String(repeating: "9", count: 308),
        "-" + String(repeating: "9", count: 308) + "." + String(repeating: "9", count: 400),
        "true", "false", "null", "[true, false, null]",
        #""""#, #""a b""#, #""\"\\\/\b\f\n\r\t""#, #""\u0000\u001f\u00e9\uFFFF""#,
        #""\uD83D\uDE00""#, #""\ud83d\ude00""#, "\"é😀 中文\"", "\"\u{7F}\"",
        #"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}"#,
        #"{"a": 1, "A": 2, "a ": 3}"#,
    ]

    @Test(arguments: valid)
    func accepted(_ text: String) throws {
        #expect(refusal(text) == nil, "\(text): \(refusal(text)?.description ?? "")")
        _ = try StrictJSON.object(from: Data(text.utf8), path: "t.json")
    }

    @Test func escapesDecodeBeforeKeysCompare() throws {
        let object = try StrictJSON.object(from: Data(#"{"\uD83D\uDE00": 1, "😀x": 2}"#.utf8), path: "t.json")
        #expect((object as? [String: Any])?.count == 2)
    }

    @Test func locationsInLinedFiles() {
        // Line and column (in characters) of the error; the offset counts bytes from the file's start.
        let text = "{\n  \"é\": [1,\n  2,]\n}"
        let e = refusal(text)
        #expect(e?.line == 3 && e?.column == 5 && e?.offset == 18)
        #expect(e?.description == "t.json:3:5: not valid JSON (byte offset 18): expected a value after ',' "
                + "(trailing commas are not JSON), found ']'")
        // A JSONL line: positions in the file, not in the line.
        var jsonl: JSONSyntaxError?
        do { try StrictJSON.validate(Array("{\"a\": 1,}".utf8), path: "d.jsonl", fileOffset: 100, line: 7) } catch let e as JSONSyntaxError {
            jsonl = e
        } catch {}
        #expect(jsonl?.line == 7 && jsonl?.column == 9 && jsonl?.offset == 108)
        // Without lines: the offset alone, and what held the JSON.
        var header: JSONSyntaxError?
        do { try StrictJSON.validate(Array("[1,]".utf8), path: "w.safetensors", what: "header", fileOffset: 8, line: nil) }
        catch let e as JSONSyntaxError { header = e } catch {}
        #expect(header?.description == "w.safetensors: offset 11: header is not valid JSON: expected a value after ',' "
                + "(trailing commas are not JSON), found ']'")
    }

    @Test func jsonLinesGiveFilePositions() {
        let text = "{\"é\": 1}\t\n{\"a\": [1,]}\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect((try? StrictJSON.object(line: lines[0], of: text, number: 1, path: "d.jsonl")) != nil)
        var e: JSONSyntaxError?
        do { _ = try StrictJSON.object(line: lines[1], of: text, number: 2, path: "d.jsonl") } catch let error as JSONSyntaxError {
            e = error
        } catch {}
        // Line 2 starts after the 11 bytes of line 1 ("é" is two bytes, then a tab and "\n"); its ']' is 9 bytes in.
        #expect(e?.line == 2 && e?.column == 10 && e?.offset == 11 + 9)
    }

    @Test func linesEndAtLFOrCRLF() {
        #expect(StrictJSON.lines("a\r\nb\n\nc").map(String.init) == ["a", "b", "", "c"])
        #expect(StrictJSON.lines("{}\r\n{}\r\n").map(String.init) == ["{}", "{}", ""])
        #expect(StrictJSON.lines("one").map(String.init) == ["one"])
        // A lone CR is not a line end (JSON Lines ends lines with LF, optionally after CR).
        #expect(StrictJSON.lines("a\rb").count == 1)
    }
}
