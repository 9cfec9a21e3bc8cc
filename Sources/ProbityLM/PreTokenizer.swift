// Pre-tokenizers of byte-level BPE: how text is cut into words before merging. Each one is the
// list of regexes llama.cpp applies in turn (src/llama-vocab.cpp, llm_tokenizer_bpe, one case per
// LLAMA_VOCAB_PRE_TYPE_*), run here by hand-written scanners (PreTokenizer+Scanners.swift).

/// A named pre-tokenizer: its splitting rules and the vocabulary settings llama.cpp ties to it.
public struct PreTokenizer: Sendable, Equatable {
    /// The `tokenizer.ggml.pre` name.
    public let name: String
    let rules: [SplitRule]
    /// Whether detokenizing removes spaces before `?!.,` and some apostrophes (llama.cpp `clean_spaces`).
    public let cleansSpaces: Bool
    /// Whether a word that is already a token skips merging (llama.cpp `ignore_merges`, Llama 3).
    public let ignoresMerges: Bool
    /// Whether BOS is added when the file does not say (llama.cpp sets it for Llama 3).
    public let addsBOSByDefault: Bool

    /// The pre-tokenizer llama.cpp uses for `name`, or nil when we do not implement it.
    public init?(name: String) {
        guard let family = Self.families[name] else { return nil }
        self.name = name
        switch family {
        case .default_:
            // [\p{P}\$\+<=>\^~\|]+ , the GPT-2 pattern, \p{N}+ , [0-9][0-9][0-9]
            rules = [.run(prefix: nil, body: .punctuationOrDefaultSymbols, min: 1, max: .max),
                     .gpt2,
                     .run(prefix: nil, body: .number, min: 1, max: .max),
                     .run(prefix: nil, body: .asciiDigit, min: 3, max: 3)]
            cleansSpaces = true; ignoresMerges = false; addsBOSByDefault = false
        case .gpt2:
            rules = [.gpt2]
            cleansSpaces = true; ignoresMerges = false; addsBOSByDefault = false
        case .llama3:
            rules = [.llama3(maxDigits: 3, marksAreLetters: false)]
            cleansSpaces = true; ignoresMerges = true; addsBOSByDefault = true
        case .qwen2:
            rules = [.llama3(maxDigits: 1, marksAreLetters: false)]
            cleansSpaces = false; ignoresMerges = false; addsBOSByDefault = false
        case .qwen35:
            rules = [.llama3(maxDigits: 1, marksAreLetters: true)]
            cleansSpaces = false; ignoresMerges = false; addsBOSByDefault = false
        case .starcoder(let cleans):
            // \p{N} , then the GPT-2 pattern
            rules = [.run(prefix: nil, body: .number, min: 1, max: 1), .gpt2]
            cleansSpaces = cleans; ignoresMerges = false; addsBOSByDefault = false
        case .deepseekCoder:
            // [\r\n] , \s?\p{L}+ , \s?\p{P}+ , [一-龥ࠀ-一가-퟿]+ , \p{N}
            rules = [.run(prefix: nil, body: .lineBreak, min: 1, max: 1),
                     .run(prefix: .whitespace, body: .letter, min: 1, max: .max),
                     .run(prefix: .whitespace, body: .punctuation, min: 1, max: .max),
                     .run(prefix: nil, body: .deepseekCJK, min: 1, max: .max),
                     .run(prefix: nil, body: .number, min: 1, max: 1)]
            cleansSpaces = false; ignoresMerges = false; addsBOSByDefault = false
        case .deepseekLLM:
            // [\r\n] , \s?[A-Za-zµÀ-ÖØ-öø-ƺ…]+ , \s?[!-/:-~！-／：-～‘-‟　-。]+ , \s+$ ,
            // [一-龥ࠀ-一가-퟿]+ , \p{N}+
            rules = [.run(prefix: nil, body: .lineBreak, min: 1, max: 1),
                     .run(prefix: .whitespace, body: .deepseekLetter, min: 1, max: .max),
                     .run(prefix: .whitespace, body: .deepseekPunctuation, min: 1, max: .max),
                     .trailingWhitespace,
                     .run(prefix: nil, body: .deepseekCJK, min: 1, max: .max),
                     .run(prefix: nil, body: .number, min: 1, max: .max)]
            cleansSpaces = false; ignoresMerges = false; addsBOSByDefault = false
        case .falcon:
            // [\p{P}\$\+<=>\^~\|`]+ , the GPT-2 pattern, [0-9][0-9][0-9]
            rules = [.run(prefix: nil, body: .punctuationOrFalconSymbols, min: 1, max: .max),
                     .gpt2,
                     .run(prefix: nil, body: .asciiDigit, min: 3, max: 3)]
            cleansSpaces = true; ignoresMerges = false; addsBOSByDefault = false
        }
    }

    private enum Family {
        case default_, gpt2, llama3, qwen2, qwen35, starcoder(cleansSpaces: Bool), deepseekCoder, deepseekLLM, falcon
    }

    /// Names as llama.cpp spells them, mapped to the same regexes and settings it uses.
    private static let families: [String: Family] = [
        "default": .default_,
        "gpt-2": .gpt2, "mpt": .gpt2,
        "llama3": .llama3, "llama-v3": .llama3, "llama-bpe": .llama3,
        "qwen2": .qwen2, "qwen35": .qwen35,
        "starcoder": .starcoder(cleansSpaces: true), "refact": .starcoder(cleansSpaces: true),
        "smollm": .starcoder(cleansSpaces: false), "command-r": .starcoder(cleansSpaces: false),
        "deepseek-coder": .deepseekCoder, "deepseek-llm": .deepseekLLM,
        "falcon": .falcon,
    ]

    /// Every `tokenizer.ggml.pre` name we accept, sorted.
    public static var supportedNames: [String] { families.keys.sorted() }

    public static func == (a: PreTokenizer, b: PreTokenizer) -> Bool { a.name == b.name }

    /// Cuts text into words: lengths in code points, covering the text in order.
    func split(_ text: ClassifiedText) -> [Int] {
        var segments = [text.count]
        for rule in rules {
            var out: [Int] = []
            out.reserveCapacity(segments.count * 2)
            var start = 0
            for length in segments {
                rule.split(text, start, start + length, into: &out)
                start += length
            }
            segments = out
        }
        return segments
    }
}

/// One regex of a pre-tokenizer. Its matches and the text between them both become segments.
enum SplitRule: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`, by llama.cpp's
    /// custom scanner (unicode_regex_split_custom_gpt2).
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// with k = 3 (Llama 3) or 1 (Qwen2), by llama.cpp's custom scanners; Qwen3.5 also counts
    /// marks as letters (`[\p{L}\p{M}]+`, `[^\s\p{L}\p{M}\p{N}]`).
    case llama3(maxDigits: Int, marksAreLetters: Bool)
    /// `P?B{min,max}`: an optional prefix character then a run of body characters, found
    /// leftmost-first as std::regex does on llama.cpp's category-collapsed text.
    case run(prefix: CharacterSet?, body: CharacterSet, min: Int, max: Int)
    /// `\s+$`: the whitespace that ends a segment.
    case trailingWhitespace

    /// The character classes the regexes use. On the collapsed text llama.cpp matches,
    /// `\p{X}` is the category of every code point and `\s` is its whitespace set.
    enum CharacterSet: Sendable {
        case number, letter, punctuation, whitespace, lineBreak, asciiDigit, deepseekCJK
        /// DeepSeek LLM's explicit letter ranges and punctuation ranges. Those regexes run on the
        /// code points with non-ASCII whitespace replaced by U+000B, so such whitespace never
        /// falls into a range (U+3000 is in the punctuation ranges but never matches).
        case deepseekLetter, deepseekPunctuation
        /// `[\p{P}\$\+<=>\^~\|]`
        case punctuationOrDefaultSymbols
        /// `[\p{P}\$\+<=>\^~\|`]`
        case punctuationOrFalconSymbols

        @inline(__always)
        func contains(_ c: UInt32, _ cls: CodepointClass, _ isSpace: Bool) -> Bool {
            switch self {
            case .number: return cls.contains(.number)
            case .letter: return cls.contains(.letter)
            case .punctuation: return cls.contains(.punctuation)
            case .whitespace: return isSpace
            case .lineBreak: return c == 0x0D || c == 0x0A
            case .asciiDigit: return c >= 0x30 && c <= 0x39
            case .deepseekCJK:
                return (0x4E00...0x9FA5).contains(c) || (0x0800...0x4E00).contains(c) || (0xAC00...0xD7FF).contains(c)
            case .deepseekLetter:
                return !isSpace && Self.inRanges(c, Self.deepseekLetterRanges)
            case .deepseekPunctuation:
                return !isSpace && Self.inRanges(c, Self.deepseekPunctuationRanges)
            case .punctuationOrDefaultSymbols:
                return cls.contains(.punctuation) || c == 0x24 || c == 0x2B || (0x3C...0x3E).contains(c)
                    || c == 0x5E || c == 0x7E || c == 0x7C
            case .punctuationOrFalconSymbols:
                return cls.contains(.punctuation) || c == 0x24 || c == 0x2B || (0x3C...0x3E).contains(c)
                    || c == 0x5E || c == 0x7E || c == 0x7C || c == 0x60
            }
        }
            static func inRanges(_ c: UInt32, _ ranges: [ClosedRange<UInt32>]) -> Bool {
            var lo = 0, hi = ranges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ranges[mid].upperBound < c { lo = mid + 1 } else { hi = mid }
            }
            return lo < ranges.count && ranges[lo].contains(c)
        }

        /// The character class of llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM letter regex, sorted.
        static let deepseekLetterRanges: [ClosedRange<UInt32>] = [
            0x41...0x5A, 0x61...0x7A, 0xB5...0xB5, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x1BA, 0x1BC...0x1BF,
            0x1C4...0x293, 0x295...0x2AF, 0x370...0x373, 0x376...0x377, 0x37B...0x37D, 0x37F...0x37F,
            0x386...0x386, 0x388...0x38A, 0x38C...0x38C, 0x38E...0x3A1, 0x3A3...0x3F5, 0x3F7...0x481,
            0x48A...0x52F, 0x531...0x556, 0x10A0...0x10C5, 0x13A0...0x13F5, 0x13F8...0x13FD,
            0x1C90...0x1CBA, 0x1CBD...0x1CBF, 0x1D00...0x1D2B, 0x1D6B...0x1D77, 0x1D79...0x1D9A,
            0x1E00...0x1F15, 0x1F18...0x1F1D, 0x1F20...0x1F45, 0x1F48...0x1F4D, 0x1F50...0x1F57,
            0x1F59...0x1F59, 0x1F5B...0x1F5B, 0x1F5D...0x1F5D, 0x1F5F...0x1F7D, 0x1F80...0x1FB4,
            0x1FB6...0x1FBC, 0x1FBE...0x1FBE, 0x1FC2...0x1FC4, 0x1FC6...0x1FCC, 0x1FD0...0x1FD3,
            0x1FD6...0x1FDB, 0x1FE0...0x1FEC, 0x1FF2...0x1FF4, 0x1FF6...0x1FFC, 0x2102...0x2102,
            0x2107...0x2107, 0x210A...0x2113, 0x2115...0x2115, 0x2119...0x211D, 0x2124...0x2124,
            0x2126...0x2126, 0x2128...0x2128, 0x212A...0x212D, 0x212F...0x2134, 0x2139...0x2139,
            0x213C...0x213F, 0x2145...0x2149, 0x214E...0x214E, 0x2183...0x2184, 0x2C00...0x2C7B,
            0x2C7E...0x2CE4, 0x2CEB...0x2CEE, 0x2CF2...0x2CF3, 0xA640...0xA66D, 0xA680...0xA69B,
            0xA722...0xA76F, 0xA771...0xA787, 0xA78B...0xA78E, 0xAB70...0xABBF, 0xFB00...0xFB06,
            0xFB13...0xFB17, 0xFF21...0xFF3A, 0xFF41...0xFF5A, 0x10400...0x1044F, 0x104B0...0x104D3,
            0x104D8...0x104FB, 0x10C80...0x10CB2, 0x10CC0...0x10CF2, 0x118A0...0x118DF, 0x1E900...0x1E943,
        ]

        /// The character class of its punctuation regex, sorted.
        static let deepseekPunctuationRanges: [ClosedRange<UInt32>] = [
            0x21...0x2F, 0x3A...0x7E, 0x2018...0x201F, 0x3000...0x3002, 0xFF01...0xFF0F, 0xFF1A...0xFF5E,
        ]
    }
}
