// Turns generated tokens into text as they arrive. A byte-level token can end in the middle of a
// UTF-8 character (emoji, CJK), so bytes wait until their character is complete.

/// Incremental detokenizer: `append` returns only complete UTF-8; `flush` returns the rest.
/// Pieces are joined as `Tokenizer.decode` joins them, without its end-of-text space clean-up.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []
    private var atStart = true

    /// A detokenizer at the start of a text.
    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds one token and returns the text that is now complete (possibly empty).
    public mutating func append(_ token: Int) throws -> String {
        let piece = try tokenizer.pieceBytes(token)
        if atStart, tokenizer.stripsLeadingSpace, piece.first == 0x20 {
            pending += piece.dropFirst()
        } else {
            pending += piece
        }
        atStart = false
        let cut = UTF8Scan.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Returns whatever is left; an unfinished character becomes U+FFFD.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}

/// UTF-8 validation one sequence at a time (Unicode 15, table 3-7 "well-formed byte sequences").
enum UTF8Scan {
    enum Sequence: Equatable {
        case valid(Int)
        /// The bytes run out before a sequence that is well-formed so far ends.
        case incomplete
        case invalid
    }

    static func sequence(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> Sequence {
        let b0 = b[i]
        if b0 < 0x80 { return .valid(1) }
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: return .invalid
        }
        for k in 1..<length {
            guard i + k < b.count else { return .incomplete }
            let range = k == 1 ? secondRange : 0x80...0xBF
            guard range.contains(b[i + k]) else { return .invalid }
        }
        return .valid(length)
    }

    /// How many leading bytes can be shown now: all but a trailing, unfinished character.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                switch sequence(b, at: i) {
                case let .valid(n): i += n
                case .invalid: i += 1
                case .incomplete: return i
                }
            }
            return i
        }
    }

    /// Valid characters as they are, every other byte as `\xNN`.
    static func displayString(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { b in
            var out = ""
            var i = 0
            while i < b.count {
                if case let .valid(n) = sequence(b, at: i) {
                    out += String(decoding: UnsafeBufferPointer(rebasing: b[i..<(i + n)]), as: UTF8.self)
                    i += n
                } else {
                    let digits = Array("0123456789abcdef")
                    out += "\\x" + String([digits[Int(b[i] >> 4)], digits[Int(b[i] & 15)]])
                    i += 1
                }
            }
            return out
        }
    }
}
