// Typed reading of JSON that `StrictJSON.validate` has accepted, in one pass over the bytes and
// without Foundation: large files' pieces (a labels file's features) decode this way at a few
// hundred MB/s, where JSONDecoder takes about a microsecond a value. A scalar that is not of the
// type asked for gives nil and leaves the cursor at it (past any whitespace); an object or array
// whose body gives up returns false with the cursor inside it, not to be read on. Either way the
// caller falls back to its careful reading, which names what is wrong. Every read checks its
// bounds: bytes that are not validated JSON give nil or false, never a trap.

/// A position in validated JSON bytes, read forward.
public struct JSONCursor {
    private let b: UnsafeRawBufferPointer
    /// The offset of the next byte to read.
    public private(set) var offset: Int

    /// A cursor at `offset` (whitespace before the value is skipped when a value is read).
    public init(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) {
        self.b = bytes
        self.offset = max(0, offset)
    }

    /// The kind of the next value, whitespace skipped; nil at the end or on a byte no value starts with.
    public mutating func peekKind() -> JSONOutline.Kind? {
        skipSpace()
        return JSONOutline.kind(b, at: offset)
    }

    /// Reads `null` if it comes next.
    public mutating func null() -> Bool {
        skipSpace()
        guard offset + 4 <= b.count, b[offset] == UInt8(ascii: "n"), b[offset + 1] == UInt8(ascii: "u"),
              b[offset + 2] == UInt8(ascii: "l"), b[offset + 3] == UInt8(ascii: "l") else { return false }
        offset += 4
        return true
    }

    /// The next value as a string, if it is one.
    public mutating func string() -> String? {
        skipSpace()
        guard offset < b.count, b[offset] == UInt8(ascii: "\"") else { return nil }
        var j = offset + 1
        while j < b.count {
            let c = b[j]
            if c == UInt8(ascii: "\"") {
                // No escapes: the bytes are the string (validated UTF-8).
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: b[(offset + 1)..<j]), as: UTF8.self)
                offset = j + 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            j += 1
        }
        guard j < b.count, let decoded = try? JSONScanner.string(in: b, at: offset) else { return nil }
        offset = decoded.end
        return String(decoding: decoded.utf8, as: UTF8.self)
    }

    /// The next value as a number, if it is one and finite: the Double nearest to its decimal text,
    /// as `Double(String)` and JSONDecoder give.
    public mutating func number() -> Double? {
        skipSpace()
        let start = offset
        var j = start
        var negative = false
        if j < b.count, b[j] == UInt8(ascii: "-") {
            negative = true
            j += 1
        }
        // Whole numbers of at most 15 digits are exact in a Double: no parse needed.
        var whole: UInt64 = 0
        var digits = 0
        while j < b.count, b[j] >= UInt8(ascii: "0"), b[j] <= UInt8(ascii: "9") {
            whole = whole &* 10 &+ UInt64(b[j] &- UInt8(ascii: "0"))
            digits += 1
            j += 1
        }
        guard digits > 0 else { return nil }
        var plain = digits <= 15
        while j < b.count, !Self.ends(b[j]) {
            plain = false
            j += 1
        }
        let value: Double
        if plain {
            value = negative ? -Double(whole) : Double(whole)
        } else {
            // Swift's parser: correctly rounded and independent of the C locale.
            guard let d = Double(String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<j]), as: UTF8.self)) else { return nil }
            value = d
        }
        return finish(value, at: j)
    }

    private mutating func finish(_ d: Double, at end: Int) -> Double? {
        guard d.isFinite else { return nil }
        offset = end
        return d
    }

    /// Reads the object that comes next, calling `body` with each key (its UTF-8 bytes) and the
    /// cursor before its value; `body` reads the value or returns false. False when the next
    /// value is not an object, a key is written with escapes (the careful reader decides those),
    /// or `body` returned false.
    public mutating func object(_ body: (_ key: UnsafeRawBufferPointer, _ cursor: inout JSONCursor) -> Bool) -> Bool {
        elements(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) { c in
            let j = c.offset
            guard j < c.b.count, c.b[j] == UInt8(ascii: "\"") else { return false }
            var k = j + 1
            while k < c.b.count, c.b[k] != UInt8(ascii: "\""), c.b[k] != UInt8(ascii: "\\") { k += 1 }
            guard k < c.b.count, c.b[k] == UInt8(ascii: "\"") else { return false }
            let key = UnsafeRawBufferPointer(rebasing: c.b[(j + 1)..<k])
            let colon = Self.skipSpace(c.b, k + 1)
            guard colon < c.b.count, c.b[colon] == UInt8(ascii: ":") else { return false }
            c.offset = colon + 1
            return body(key, &c)
        }
    }

    /// Reads the array that comes next, calling `body` with the cursor before each element; `body`
    /// reads it or returns false. False when the next value is not an array or `body` returned false.
    public mutating func array(_ body: (_ cursor: inout JSONCursor) -> Bool) -> Bool {
        elements(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), body)
    }

    /// The container that `open` starts and `close` ends, next: `element` is called with the
    /// cursor at each element (past whitespace) and reads it, or returns false.
    private mutating func elements(open: UInt8, close: UInt8, _ element: (inout JSONCursor) -> Bool) -> Bool {
        skipSpace()
        guard offset < b.count, b[offset] == open else { return false }
        offset = Self.skipSpace(b, offset + 1)
        if offset < b.count, b[offset] == close {
            offset += 1
            return true
        }
        while true {
            guard element(&self) else { return false }
            let j = Self.skipSpace(b, offset)
            guard j < b.count else { return false }
            if b[j] == close {
                offset = j + 1
                return true
            }
            guard b[j] == UInt8(ascii: ",") else { return false }
            offset = Self.skipSpace(b, j + 1)
        }
    }

    /// An array of strings.
    public mutating func strings() -> [String]? {
        var out: [String] = []
        let ok = array { c in
            guard let s = c.string() else { return false }
            out.append(s)
            return true
        }
        return ok ? out : nil
    }

    /// An array of numbers.
    public mutating func numbers() -> [Double]? {
        var out: [Double] = []
        let ok = array { c in
            guard let d = c.number() else { return false }
            out.append(d)
            return true
        }
        return ok ? out : nil
    }

    /// Skips the next value, whatever it is.
    public mutating func skip() -> Bool {
        skipSpace()
        guard offset < b.count else { return false }
        var j = offset
        var depth = 0
        repeat {
            guard j < b.count else { return false }
            switch b[j] {
            case UInt8(ascii: "\""):
                j += 1
                while j < b.count, b[j] != UInt8(ascii: "\"") { j += b[j] == UInt8(ascii: "\\") ? 2 : 1 }
                guard j < b.count else { return false }
                j += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                j += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard depth > 0 else { return false }
                depth -= 1
                j += 1
            case 0x20, 0x0A, 0x0D, 0x09, UInt8(ascii: ","), UInt8(ascii: ":"):
                guard depth > 0 else { return false }
                j += 1
            default:
                // A number or a literal.
                while j < b.count, !Self.ends(b[j]) { j += 1 }
            }
        } while depth > 0
        offset = j
        return true
    }

    /// Whether `key` (a key's bytes, as `object` gives them) is `name`.
    public static func key(_ key: UnsafeRawBufferPointer, is name: StaticString) -> Bool {
        guard key.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { n in
            for k in 0..<n.count where key[k] != n[k] { return false }
            return true
        }
    }

    private mutating func skipSpace() { offset = Self.skipSpace(b, offset) }

    private static func skipSpace(_ b: UnsafeRawBufferPointer, _ from: Int) -> Int {
        var j = from
        while j < b.count, b[j] == 0x20 || b[j] == 0x0A || b[j] == 0x0D || b[j] == 0x09 { j += 1 }
        return j
    }

    /// Bytes that end a number in validated JSON.
    private static func ends(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == 0x20 || c == 0x0A
            || c == 0x0D || c == 0x09
    }
}
