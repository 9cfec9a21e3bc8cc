// A strict RFC 8259 validator, run before Foundation decodes any JSON file format: Foundation on
// Linux accepts trailing commas, comments and more. Iterative, so hostile nesting cannot blow the stack.

import Foundation

/// Caps and entry points for reading JSON that a format says is JSON (RFC 8259, UTF-8).
///
/// Refused: anything outside the grammar (trailing commas, comments, single quotes, unquoted keys,
/// `NaN`/`Infinity`, leading zeros, `+1`, `.5`, `1.`), raw control characters in strings, invalid
/// UTF-8, lone surrogate escapes, a byte order mark, anything but whitespace after the value,
/// numbers beyond Double's range, duplicate keys in one object, and nesting deeper than `maxDepth`.
public enum StrictJSON {
    /// Most arrays and objects open at once. serde_json (which reads safetensors headers in the
    /// reference implementation) stops at 128 too.
    public static let maxDepth = 128

    /// Most values in the small JSON formats (pack.json, SAELens cfg.json, chat messages): real
    /// ones hold about a thousand. Foundation's tree costs about 250 bytes a value, so this keeps
    /// one such file under about 64 MiB of memory, whatever its length. (Labels, reports and
    /// corpora are large by nature: they are mapped, outlined and decoded a piece at a time.)
    public static let maxSmallDocumentValues = 1 << 18

    /// Most keys the duplicate-key check holds at once, over every open object. It keeps each key
    /// as a hash and the key's offset, not the key (about 46 bytes a key with the table's slack,
    /// measured), so this bounds the check at about 48 MiB whatever the keys' lengths. Real objects
    /// hold tens of keys; the largest real one is a chat corpus keyed by conversation (7,168 in
    /// chitchat).
    public static let maxOpenKeys = 1 << 20

    /// Throws `JSONSyntaxError` unless `bytes` are exactly one JSON text.
    /// - Parameters:
    ///   - path: the file, for the message.
    ///   - what: what the bytes are, for messages without lines ("header").
    ///   - fileOffset: the file offset of `bytes[0]`, so errors give offsets in the file.
    ///   - line: the line number of `bytes[0]` in the file; nil for formats without lines.
    ///   - maxValues: the most values (scalars, arrays and objects, at any depth) the text may
    ///     hold; a decoded tree costs memory per value, far more than the bytes that write it.
    /// - Complexity: O(n) time; memory proportional to the nesting and to the keys of open objects
    ///   (at most `maxOpenKeys` of them, about 40 bytes each).
    public static func validate(_ bytes: UnsafeRawBufferPointer, path: String, what: String = "the file",
                                fileOffset: Int = 0, line: Int? = 1, maxValues: Int? = nil) throws {
        var scanner = JSONScanner(bytes: bytes, maxValues: maxValues ?? Int.max)
        do {
            try scanner.scanDocument()
        } catch let failure as JSONScanner.Failure {
            throw JSONSyntaxError(bytes: bytes, failure: failure, path: path, what: what,
                                  fileOffset: fileOffset, line: line)
        }
    }

    public static func validate(_ bytes: [UInt8], path: String, what: String = "the file",
                                fileOffset: Int = 0, line: Int? = 1, maxValues: Int? = nil) throws {
        try bytes.withUnsafeBytes {
            try validate($0, path: path, what: what, fileOffset: fileOffset, line: line, maxValues: maxValues)
        }
    }

    public static func validate(_ data: Data, path: String, what: String = "the file",
                                fileOffset: Int = 0, line: Int? = 1, maxValues: Int? = nil) throws {
        try data.withUnsafeBytes {
            try validate($0, path: path, what: what, fileOffset: fileOffset, line: line, maxValues: maxValues)
        }
    }

    /// Validates, then decodes with `JSONSerialization` (any value at the top, as RFC 8259 allows).
    public static func object(from data: Data, path: String, what: String = "the file",
                              fileOffset: Int = 0, line: Int? = 1, maxValues: Int? = nil) throws -> Any {
        try validate(data, path: path, what: what, fileOffset: fileOffset, line: line, maxValues: maxValues)
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            // Unreachable for validated text; kept so a Foundation difference is still bad input.
            throw JSONSyntaxError(path: path, what: what, offset: fileOffset, line: line, column: line.map { _ in 1 },
                                  expected: "JSON that Foundation decodes", found: (error as NSError).localizedDescription)
        }
    }

    /// The lines of a JSON Lines text, ended by "\n" or "\r\n" (a Swift `Character` each, so
    /// splitting at "\n" alone would leave a CRLF file as one line), empty lines kept so that line
    /// n is element n - 1.
    public static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// Validates one line of a JSON Lines file, then decodes it. `line` is a slice of `text` (the
    /// whole file), so errors give the file's byte offset and the line's column.
    public static func object(line: Substring, of text: String, number: Int, path: String) throws -> Any {
        let data = Data(line.utf8)
        try validate(line: line, of: text, number: number, path: path)
        return try object(from: data, path: path, fileOffset: byteOffset(of: line, in: text), line: number)
    }

    /// Validates one line of a JSON Lines file (see `object(line:of:number:path:)`).
    public static func validate(line: Substring, of text: String, number: Int, path: String) throws {
        try validate(Array(line.utf8), path: path, fileOffset: byteOffset(of: line, in: text), line: number)
    }

    private static func byteOffset(of line: Substring, in text: String) -> Int {
        text.utf8.distance(from: text.utf8.startIndex, to: line.startIndex)
    }
}

/// A JSON text that breaks RFC 8259 (or a cap), located in its file.
public struct JSONSyntaxError: Error, Equatable, CustomStringConvertible {
    public let path: String
    /// What held the JSON, for formats without lines ("header").
    public let what: String
    /// Byte offset in the file.
    public let offset: Int
    /// 1-based line and column (in characters) where the format has lines.
    public let line: Int?
    public let column: Int?
    public let expected: String
    public let found: String

    public init(path: String, what: String, offset: Int, line: Int?, column: Int?, expected: String, found: String) {
        self.path = path
        self.what = what
        self.offset = offset
        self.line = line
        self.column = column
        self.expected = expected
        self.found = found
    }

    init(bytes: UnsafeRawBufferPointer, failure: JSONScanner.Failure, path: String, what: String,
         fileOffset: Int, line firstLine: Int?) {
        var line: Int?, column: Int?
        if let firstLine {
            var newlines = 0, lineStart = 0
            for i in 0..<min(failure.at, bytes.count) where bytes[i] == UInt8(ascii: "\n") {
                newlines += 1
                lineStart = i + 1
            }
            // Columns count characters: every byte that does not continue a UTF-8 sequence.
            let characters = (lineStart..<min(failure.at, bytes.count)).reduce(0) { $0 + (bytes[$1] & 0xC0 == 0x80 ? 0 : 1) }
            line = firstLine + newlines
            column = characters + 1
        }
        self.init(path: path, what: what, offset: fileOffset + failure.at, line: line, column: column,
                  expected: failure.expected, found: failure.found)
    }

    public var description: String {
        if let line, let column {
            return "\(path):\(line):\(column): not valid JSON (byte offset \(offset)): expected \(expected), found \(found)"
        }
        return "\(path): offset \(offset): \(what) is not valid JSON: expected \(expected), found \(found)"
    }
}

/// The state machine: one pass, an explicit stack of open containers, no recursion.
struct JSONScanner {
    struct Failure: Error {
        let at: Int
        let expected: String
        let found: String
    }

    private enum Container {
        case array, object

        var isArray: Bool { self == .array }
    }

    private enum State {
        case value, firstValueOrEnd, firstKeyOrEnd, key, colon, commaOrEnd
    }

    /// `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` and the bytes they stand for.
    private static let simpleEscapes: [UInt8: UInt8] = [0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 0x08, 0x66: 0x0C,
                                                        0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09]

    let bytes: UnsafeRawBufferPointer
    let maxValues: Int
    private var values = 0
    private var i = 0
    private var stack: [Container] = []
    /// The keys seen so far in each open object, to refuse duplicates: one set per `.object` on
    /// `stack`, kept apart from it so that an insert mutates the set in place (a set read out of an
    /// enum payload is a second reference, and each insert copied it).
    private var keySets: [KeySet] = []
    /// Keys held in `keySets`, against `StrictJSON.maxOpenKeys`.
    private var openKeys = 0

    /// One object's keys, each as the hash of its decoded UTF-8 (with the process's random seed,
    /// so a file cannot be written to collide) and the offset of its opening quote. Two keys with
    /// one hash are told apart by decoding the first again; keys that share a hash with another
    /// are kept decoded, which distinct keys do about never.
    private struct KeySet {
        var byHash: [Int: Int] = [:]
        var collided: Set<[UInt8]> = []

        /// Adds `key` (decoded), found at `offset`; false when the object already holds it.
        mutating func insert(_ key: [UInt8], at offset: Int, in bytes: UnsafeRawBufferPointer) throws -> Bool {
            var hasher = Hasher()
            key.withUnsafeBytes { hasher.combine(bytes: $0) }
            let hash = hasher.finalize()
            guard let first = byHash[hash] else {
                byHash[hash] = offset
                return true
            }
            if try JSONScanner.string(in: bytes, at: first).utf8 == key { return false }
            return collided.insert(key).inserted
        }
    }

    init(bytes: UnsafeRawBufferPointer, maxValues: Int = .max) {
        self.bytes = bytes
        self.maxValues = maxValues
    }

    /// Pops the innermost open container (and its key set, for an object).
    private mutating func closeContainer() {
        if stack.removeLast() == .object {
            let closed = keySets.removeLast()
            openKeys -= closed.byHash.count + closed.collided.count
        }
    }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    /// The decoded UTF-8 of the string whose opening quote is at `at`, and the offset after its
    /// closing quote (`JSONOutline` reads keys and ids of validated text with it).
    static func string(in bytes: UnsafeRawBufferPointer, at: Int) throws -> (utf8: [UInt8], end: Int) {
        var scanner = JSONScanner(bytes: bytes)
        scanner.i = at
        let decoded = try scanner.scanString(decoding: true)
        return (decoded, scanner.i)
    }


    mutating func scanDocument() throws {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            throw Failure(at: 0, expected: "a value", found: "a UTF-8 byte order mark (JSON files must not start with one)")
        }
        var state = State.value
        while true {
            skipWhitespace()
            switch state {
            case .value, .firstValueOrEnd:
                if state == .firstValueOrEnd, peek == UInt8(ascii: "]") {
                    i += 1
                    closeContainer()
                    state = .commaOrEnd
                    continue
                }
                guard let c = peek else { throw fail("a value") }
                guard values < maxValues else {
                    throw Failure(at: i, expected: "at most \(maxValues) values (a cap on the memory the decoded text takes)",
                                  found: "one more")
                }
                values += 1
                switch c {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard stack.count < StrictJSON.maxDepth else {
                        throw Failure(at: i, expected: "at most \(StrictJSON.maxDepth) nested arrays and objects",
                                      found: "one more")
                    }
                    i += 1
                    if c == UInt8(ascii: "{") {
                        stack.append(.object)
                        keySets.append(KeySet())
                        state = .firstKeyOrEnd
                    } else {
                        stack.append(.array)
                        state = .firstValueOrEnd
                    }
                    continue
                case UInt8(ascii: "\""): _ = try scanString(decoding: false)
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try scanNumber()
                case UInt8(ascii: "t"): try scanLiteral("true")
                case UInt8(ascii: "f"): try scanLiteral("false")
                case UInt8(ascii: "n"): try scanLiteral("null")
                default:
                    let afterComma = i > 0 && previousNonSpace() == UInt8(ascii: ",") && c == UInt8(ascii: "]")
                    throw fail(afterComma ? "a value after ',' (trailing commas are not JSON)" : "a value")
                }
                state = .commaOrEnd
            case .firstKeyOrEnd, .key:
                if state == .firstKeyOrEnd, peek == UInt8(ascii: "}") {
                    i += 1
                    closeContainer()
                    state = .commaOrEnd
                    continue
                }
                guard peek == UInt8(ascii: "\"") else {
                    if state == .key, peek == UInt8(ascii: "}") {
                        throw fail("a key in double quotes after ',' (trailing commas are not JSON)")
                    }
                    throw fail(state == .key ? "a key in double quotes" : "a key in double quotes or '}'")
                }
                let keyAt = i
                let key = try scanString(decoding: true)
                precondition(stack.last == .object && !keySets.isEmpty, "key outside an object")
                guard openKeys < StrictJSON.maxOpenKeys else {
                    throw Failure(at: keyAt, expected: "at most \(StrictJSON.maxOpenKeys) keys in the objects open at once "
                                  + "(a cap on the memory the duplicate-key check takes)", found: "one more")
                }
                openKeys += 1
                guard try keySets[keySets.count - 1].insert(key, at: keyAt, in: bytes) else {
                    throw Failure(at: keyAt, expected: "keys that differ within one object",
                                  found: "the key \"\(String(decoding: key.prefix(60), as: UTF8.self))\" a second time")
                }
                state = .colon
            case .colon:
                guard peek == UInt8(ascii: ":") else { throw fail("':' after the key") }
                i += 1
                state = .value
            case .commaOrEnd:
                guard let top = stack.last else {
                    guard i == bytes.count else { throw fail("the end of the text after the value") }
                    return
                }
                let close = top.isArray ? UInt8(ascii: "]") : UInt8(ascii: "}")
                if peek == UInt8(ascii: ",") {
                    i += 1
                    state = top.isArray ? .value : .key
                } else if peek == close {
                    i += 1
                    closeContainer()
                } else {
                    throw fail(top.isArray ? "',' or ']'" : "',' or '}'")
                }
            }
        }
    }

    private mutating func skipWhitespace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
    }

    private func previousNonSpace() -> UInt8? {
        var j = i - 1
        while j >= 0, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[j]) { j -= 1 }
        return j >= 0 ? bytes[j] : nil
    }

    /// Scans a string starting at its opening quote; returns its decoded UTF-8 when asked.
    private mutating func scanString(decoding: Bool) throws -> [UInt8] {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("'\"' to close the string") }
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return out
            case UInt8(ascii: "\\"):
                let escapeAt = i
                i += 1
                guard let e = peek else { throw fail("an escape character after '\\'") }
                if let decoded = Self.simpleEscapes[e] {
                    i += 1
                    if decoding { out.append(decoded) }
                    continue
                }
                guard e == UInt8(ascii: "u") else {
                    throw fail("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
                }
                i += 1
                var scalar = try scanHex4()
                if (0xDC00...0xDFFF).contains(scalar) {
                    throw Failure(at: escapeAt, expected: "a high surrogate before a low one",
                                  found: "a lone low surrogate \\u\(hex4(scalar))")
                }
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw Failure(at: escapeAt, expected: "a \\uDC00-\\uDFFF escape after the high surrogate \\u\(hex4(scalar))",
                                      found: "a lone high surrogate")
                    }
                    i += 2
                    let low = try scanHex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Failure(at: escapeAt, expected: "a \\uDC00-\\uDFFF escape after the high surrogate \\u\(hex4(scalar))",
                                      found: "\\u\(hex4(low))")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                if decoding, let u = Unicode.Scalar(scalar) { out.append(contentsOf: Array(String(Character(u)).utf8)) }
            case 0x00..<0x20:
                throw fail("a control character written as an escape (\\n, \\t, \\u00XX) inside the string")
            case 0x80...:
                let start = i
                try scanUTF8Sequence()
                if decoding { out.append(contentsOf: bytes[start..<i]) }
            default:
                i += 1
                if decoding { out.append(c) }
            }
        }
    }

    private mutating func scanHex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek, let digit = hexValue(c) else { throw fail("four hexadecimal digits after \\u") }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    private func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// One well-formed UTF-8 sequence (Unicode Table 3-7): no overlongs, surrogates or values past U+10FFFF.
    private mutating func scanUTF8Sequence() throws {
        let lead = bytes[i]
        let ranges: [ClosedRange<UInt8>]
        switch lead {
        case 0xC2...0xDF: ranges = [0x80...0xBF]
        case 0xE0: ranges = [0xA0...0xBF, 0x80...0xBF]
        case 0xE1...0xEC, 0xEE...0xEF: ranges = [0x80...0xBF, 0x80...0xBF]
        case 0xED: ranges = [0x80...0x9F, 0x80...0xBF]
        case 0xF0: ranges = [0x90...0xBF, 0x80...0xBF, 0x80...0xBF]
        case 0xF1...0xF3: ranges = [0x80...0xBF, 0x80...0xBF, 0x80...0xBF]
        case 0xF4: ranges = [0x80...0x8F, 0x80...0xBF, 0x80...0xBF]
        default: throw fail("valid UTF-8")
        }
        let start = i
        for (k, range) in ranges.enumerated() {
            let at = start + 1 + k
            guard at < bytes.count, range.contains(bytes[at]) else {
                throw Failure(at: start, expected: "valid UTF-8", found: "the bytes \(hexBytes(start, count: k + 2))")
            }
        }
        i = start + 1 + ranges.count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, within Double's range.
    private mutating func scanNumber() throws {
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        guard let first = peek, isDigit(first) else { throw fail("a digit") }
        i += 1
        if first == UInt8(ascii: "0"), let next = peek, isDigit(next) {
            throw fail("'.', 'e' or the end of the number (leading zeros are not JSON)")
        }
        while let c = peek, isDigit(c) { i += 1 }
        let integerDigits = i - start - (bytes[start] == UInt8(ascii: "-") ? 1 : 0)
        if peek == UInt8(ascii: ".") {
            i += 1
            guard let c = peek, isDigit(c) else { throw fail("a digit after the decimal point") }
            while let c = peek, isDigit(c) { i += 1 }
        }
        var exponent = false
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            exponent = true
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard let c = peek, isDigit(c) else { throw fail("a digit in the exponent") }
            while let c = peek, isDigit(c) { i += 1 }
        }
        // Without an exponent, fewer than 309 integer digits stay below Double's greatest value.
        if !exponent, integerDigits < 309 { return }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if let d = Double(text), !d.isFinite {
            throw Failure(at: start, expected: "a number within ±1.8e308", found: "\(text.prefix(40))")
        }
    }

    private mutating func scanLiteral(_ word: String) throws {
        let start = i
        for b in word.utf8 {
            guard peek == b else { throw Failure(at: start, expected: "a value", found: found(at: start)) }
            i += 1
        }
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private func fail(_ expected: String) -> Failure { Failure(at: i, expected: expected, found: found(at: i)) }

    /// What stands at `at`, worded for a message: a word, a symbol, a byte, or the end.
    private func found(at: Int) -> String {
        guard at < bytes.count else { return "the end of the text" }
        let c = bytes[at]
        if isWordByte(c) {
            var end = at
            while end < bytes.count, end - at < 24, isWordByte(bytes[end]) { end += 1 }
            return "'\(String(decoding: bytes[at..<end], as: UTF8.self))'"
        }
        switch c {
        case UInt8(ascii: "/"): return "'/' (comments are not JSON)"
        case UInt8(ascii: "'"): return "a single quote (JSON strings use double quotes)"
        case 0x00..<0x20, 0x7F: return "the control character 0x\(hexBytes(at, count: 1))"
        case 0x80...: return "the byte 0x\(hexBytes(at, count: 1))"
        default: return "'\(Character(Unicode.Scalar(c)))'"
        }
    }

    private func isWordByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
    }

    private func hexBytes(_ start: Int, count: Int) -> String {
        let digits = Array("0123456789abcdef")
        return (start..<min(start + count, bytes.count)).map { String([digits[Int(bytes[$0] >> 4)], digits[Int(bytes[$0] & 15)]]) }
            .joined(separator: " ")
    }

    private func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}
