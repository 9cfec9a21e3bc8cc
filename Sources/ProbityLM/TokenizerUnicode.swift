// Code point classes as llama.cpp's pre-tokenizers see them (src/unicode.cpp, unicode-data.cpp):
// one general-category class per code point plus llama.cpp's own whitespace set, and the GPT-2
// byte-to-unicode table of byte-level BPE.

/// A code point's class: the low bits hold one general category, `whitespace` is a separate flag.
struct CodepointClass: OptionSet, Sendable {
    let rawValue: UInt8

    static let undefined = CodepointClass(rawValue: 1 << 0)    // Cn
    static let number = CodepointClass(rawValue: 1 << 1)       // \p{N}
    static let letter = CodepointClass(rawValue: 1 << 2)       // \p{L}
    static let separator = CodepointClass(rawValue: 1 << 3)    // \p{Z}
    static let mark = CodepointClass(rawValue: 1 << 4)         // \p{M}
    static let punctuation = CodepointClass(rawValue: 1 << 5)  // \p{P}
    static let symbol = CodepointClass(rawValue: 1 << 6)       // \p{S}
    static let control = CodepointClass(rawValue: 1 << 7)      // \p{C}: Cc, Cf, Cs, Co

    /// llama.cpp's `\s`: its explicit list (tab..CR, space, NEL, NBSP, the Unicode spaces,
    /// line and paragraph separators), not Swift's `isWhitespace`, which also counts 0x1C-0x1F.
    static func isWhitespace(_ c: UInt32) -> Bool {
        switch c {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// The Unicode version of llama.cpp's tables (src/unicode-data.cpp). Code points assigned
    /// later are unassigned there; with this cut-off our classes equal its for all code points.
    static let unicodeVersion = (major: 15, minor: 1)

    /// The category class of one code point. Surrogates count as control, as in llama.cpp.
    static func category(of c: UInt32) -> CodepointClass {
        guard let scalar = Unicode.Scalar(c) else { return .control }
        if let age = scalar.properties.age, (age.major, age.minor) > unicodeVersion { return .undefined }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .nonspacingMark, .spacingMark, .enclosingMark:
            return .mark
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return .punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return .symbol
        case .spaceSeparator, .lineSeparator, .paragraphSeparator:
            return .separator
        case .control, .format, .surrogate, .privateUse:
            return .control
        case .unassigned:
            return .undefined
        @unknown default:
            return .undefined
        }
    }
}

/// Category lookup with a table for the Basic Multilingual Plane, where nearly all text lives;
/// the property lookup behind it is far too slow to run per character at tokenizer speeds.
enum CodepointTable {
    static let bmp: [CodepointClass] = (0..<0x10000).map { CodepointClass.category(of: UInt32($0)) }

    @inline(__always)
    static func category(_ c: UInt32) -> CodepointClass {
        c < 0x10000 ? bmp[Int(c)] : CodepointClass.category(of: c)
    }
}

/// The code points of one stretch of text with their classes, as the splitters scan them.
struct ClassifiedText {
    var codepoints: [UInt32] = []
    var classes: [CodepointClass] = []
    var whitespace: [Bool] = []
    /// How many bytes of the source each code point took (1 for a malformed byte).
    var byteLengths: [UInt8] = []

    /// Decodes UTF-8 that came from a Swift `String`, so it is valid; a malformed byte would
    /// become U+FFFD, as in llama.cpp's unicode_cpts_from_utf8.
    init(utf8 bytes: ArraySlice<UInt8>) {
        let n = bytes.count
        codepoints.reserveCapacity(n)
        classes.reserveCapacity(n)
        whitespace.reserveCapacity(n)
        byteLengths.reserveCapacity(n)
        bytes.withUnsafeBufferPointer { b in
            var i = 0
            while i < n {
                let c: UInt32
                var len = 1
                if b[i] < 0x80 {
                    c = UInt32(b[i])
                } else if case let .valid(n) = UTF8Scan.sequence(b, at: i) {
                    len = n
                    var v = UInt32(b[i]) & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07)
                    for k in 1..<n { v = v << 6 | (UInt32(b[i + k]) & 0x3F) }
                    c = v
                } else {
                    c = 0xFFFD
                }
                i += len
                byteLengths.append(UInt8(len))
                codepoints.append(c)
                classes.append(CodepointTable.category(c))
                whitespace.append(CodepointClass.isWhitespace(c))
            }
        }
    }

    var count: Int { codepoints.count }
}

/// GPT-2's reversible map between bytes and printable code points (openai/gpt-2 encoder.py
/// `bytes_to_unicode`, llama.cpp `unicode_byte_to_utf8_map`): printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100 onwards in byte order.
enum ByteLevel {
    static let byteToCodepoint: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    static let codepointToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, c) in byteToCodepoint.enumerated() { map[c] = UInt8(b) }
        return map
    }()

    /// The raw bytes a byte-level token text stands for, or nil if it holds a code point
    /// outside the map (such a text can never come out of byte-level encoding).
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            guard let b = codepointToByte[s.value] else { return nil }
            out.append(b)
        }
        return out
    }

    /// The byte-level text of raw bytes.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for b in bytes {
            if let s = Unicode.Scalar(byteToCodepoint[Int(b)]) { scalars.append(s) }
        }
        return String(scalars)
    }
}
