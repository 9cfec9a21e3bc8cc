// Walking a JSON text that `StrictJSON.validate` has accepted, in place: where each value starts and
// ends, the members of an object and the elements of an array, without building a tree. Large files
// (labels, corpora) are validated whole, then outlined, then decoded one piece at a time, so what a
// reader holds is one piece, not Foundation's tree of the file.

/// Positions in validated JSON bytes. Every function checks its indices and returns nil (or
/// throws `JSONOutline.NotValidated`) on bytes that are not as validated JSON would be, so a
/// caller's mistake, or a file changed under its map, cannot trap.
public enum JSONOutline {
    /// Bytes that were not validated JSON where a value was expected.
    public struct NotValidated: Error {
        public let at: Int
    }

    /// What a value is, by its first byte.
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, literal
    }

    /// The offset of the first byte at or after `i` that is not JSON whitespace.
    public static func skipSpace(_ b: UnsafeRawBufferPointer, from i: Int) -> Int {
        var j = max(i, 0)
        while j < b.count, b[j] == 0x20 || b[j] == 0x09 || b[j] == 0x0A || b[j] == 0x0D { j += 1 }
        return j
    }

    /// The kind of the value starting at `i` (no whitespace skipped).
    public static func kind(_ b: UnsafeRawBufferPointer, at i: Int) -> Kind? {
        guard i >= 0, i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"): return .literal
        default: return nil
        }
    }

    /// The value starting at `i` (no whitespace skipped): the offset one past its end and how many
    /// values it holds, itself included (as `StrictJSON`'s value caps count them).
    /// - Complexity: O(length of the value), O(1) memory.
    public static func skipValue(_ b: UnsafeRawBufferPointer, at i: Int) throws -> (end: Int, values: Int) {
        guard let kind = kind(b, at: i) else { throw NotValidated(at: i) }
        switch kind {
        case .string: return (try stringEnd(b, at: i), 1)
        case .number, .literal:
            var j = i
            while j < b.count, !isDelimiter(b[j]) { j += 1 }
            return (j, 1)
        case .object, .array:
            // Open containers as bits, set for an object: a string right after an object's '{'
            // or ',' is a key, not a value. Validated text nests at most `StrictJSON.maxDepth`
            // (128) deep, so two words hold them.
            var objects: (UInt64, UInt64) = (0, 0)
            var depth = 0
            var values = 0, j = i
            var keyNext = false
            func inObject() -> Bool {
                let d = depth - 1
                return d < 64 ? (objects.0 >> UInt64(d)) & 1 == 1 : (objects.1 >> UInt64(d - 64)) & 1 == 1
            }
            while j < b.count {
                let c = b[j]
                switch c {
                case UInt8(ascii: "\""):
                    if !(keyNext && depth > 0 && inObject()) { values += 1 }
                    keyNext = false
                    j = try stringEnd(b, at: j)
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard depth < 128 else { throw NotValidated(at: j) }
                    values += 1
                    let bit: UInt64 = c == UInt8(ascii: "{") ? 1 : 0
                    if depth < 64 {
                        objects.0 = objects.0 & ~(1 << UInt64(depth)) | bit << UInt64(depth)
                    } else {
                        objects.1 = objects.1 & ~(1 << UInt64(depth - 64)) | bit << UInt64(depth - 64)
                    }
                    depth += 1
                    keyNext = true
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    guard depth > 0 else { throw NotValidated(at: j) }
                    depth -= 1
                    keyNext = false
                    if depth == 0 { return (j + 1, values) }
                case UInt8(ascii: ","): keyNext = true
                case UInt8(ascii: ":"): keyNext = false
                case 0x20, 0x09, 0x0A, 0x0D: break
                default:
                    values += 1
                    keyNext = false
                    while j < b.count, !isDelimiter(b[j]) { j += 1 }
                    continue
                }
                j += 1
            }
            throw NotValidated(at: j)
        }
    }

    /// Calls `body` with each element's range, in order, until it returns false. Throws
    /// `NotValidated` unless an array starts at `i`.
    public static func forEachElement(_ b: UnsafeRawBufferPointer, ofArrayAt i: Int,
                                      _ body: (Range<Int>) throws -> Bool) throws {
        try forEachElement(b, ofArrayAt: i) { range, _ in try body(range) }
    }

    /// Calls `body` with each element's range and the values it holds (as `skipValue` counts
    /// them), in order, until it returns false.
    public static func forEachElement(_ b: UnsafeRawBufferPointer, ofArrayAt i: Int,
                                      _ body: (Range<Int>, _ values: Int) throws -> Bool) throws {
        guard kind(b, at: i) == .array else { throw NotValidated(at: i) }
        var j = skipSpace(b, from: i + 1)
        if j < b.count, b[j] == UInt8(ascii: "]") { return }
        while true {
            let (end, values) = try skipValue(b, at: j)
            guard try body(j..<end, values) else { return }
            j = skipSpace(b, from: end)
            guard j < b.count else { throw NotValidated(at: j) }
            if b[j] == UInt8(ascii: "]") { return }
            guard b[j] == UInt8(ascii: ",") else { throw NotValidated(at: j) }
            j = skipSpace(b, from: j + 1)
        }
    }

    /// Calls `body` with each member's decoded key (UTF-8) and value range, in order, until it
    /// returns false. Throws `NotValidated` unless an object starts at `i`.
    public static func forEachMember(_ b: UnsafeRawBufferPointer, ofObjectAt i: Int,
                                     _ body: (_ key: [UInt8], _ value: Range<Int>) throws -> Bool) throws {
        guard kind(b, at: i) == .object else { throw NotValidated(at: i) }
        var j = skipSpace(b, from: i + 1)
        if j < b.count, b[j] == UInt8(ascii: "}") { return }
        while true {
            guard kind(b, at: j) == .string else { throw NotValidated(at: j) }
            let key = try decodedString(b, at: j)
            j = skipSpace(b, from: key.end)
            guard j < b.count, b[j] == UInt8(ascii: ":") else { throw NotValidated(at: j) }
            j = skipSpace(b, from: j + 1)
            let end = try skipValue(b, at: j).end
            guard try body(key.utf8, j..<end) else { return }
            j = skipSpace(b, from: end)
            guard j < b.count else { throw NotValidated(at: j) }
            if b[j] == UInt8(ascii: "}") { return }
            guard b[j] == UInt8(ascii: ",") else { throw NotValidated(at: j) }
            j = skipSpace(b, from: j + 1)
        }
    }

    /// The value range of `key` in the object at `i`, if it has that key.
    public static func member(_ key: String, _ b: UnsafeRawBufferPointer, ofObjectAt i: Int) throws -> Range<Int>? {
        let wanted = Array(key.utf8)
        var found: Range<Int>?
        try forEachMember(b, ofObjectAt: i) { k, value in
            if k == wanted { found = value }
            return found == nil
        }
        return found
    }

    /// The decoded string whose opening quote is at `i`, and the offset after its closing quote.
    public static func decodedString(_ b: UnsafeRawBufferPointer, at i: Int) throws -> (utf8: [UInt8], end: Int) {
        guard kind(b, at: i) == .string else { throw NotValidated(at: i) }
        do {
            return try JSONScanner.string(in: b, at: i)
        } catch {
            throw NotValidated(at: i)
        }
    }

    /// The offset after the closing quote of the string whose opening quote is at `i`.
    private static func stringEnd(_ b: UnsafeRawBufferPointer, at i: Int) throws -> Int {
        var j = i + 1
        while j < b.count {
            switch b[j] {
            case UInt8(ascii: "\""): return j + 1
            case UInt8(ascii: "\\"): j += 2
            default: j += 1
            }
        }
        throw NotValidated(at: j)
    }

    private static func isDelimiter(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == 0x20 || c == 0x09
            || c == 0x0A || c == 0x0D
    }
}
