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
            rules = [.llama3(maxDigits: 3)]
            cleansSpaces = true; ignoresMerges = true; addsBOSByDefault = true
        case .qwen2:
            rules = [.llama3(maxDigits: 1)]
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
        case .falcon:
            // [\p{P}\$\+<=>\^~\|`]+ , the GPT-2 pattern, [0-9][0-9][0-9]
            rules = [.run(prefix: nil, body: .punctuationOrFalconSymbols, min: 1, max: .max),
                     .gpt2,
                     .run(prefix: nil, body: .asciiDigit, min: 3, max: 3)]
            cleansSpaces = true; ignoresMerges = false; addsBOSByDefault = false
        }
    }

    private enum Family {
        case default_, gpt2, llama3, qwen2, starcoder(cleansSpaces: Bool), deepseekCoder, falcon
    }

    /// Names as llama.cpp spells them, mapped to the same regexes and settings it uses.
    private static let families: [String: Family] = [
        "default": .default_,
        "gpt-2": .gpt2, "mpt": .gpt2,
        "llama3": .llama3, "llama-v3": .llama3, "llama-bpe": .llama3,
        "qwen2": .qwen2,
        "starcoder": .starcoder(cleansSpaces: true), "refact": .starcoder(cleansSpaces: true),
        "smollm": .starcoder(cleansSpaces: false), "command-r": .starcoder(cleansSpaces: false),
        "deepseek-coder": .deepseekCoder,
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
    /// with k = 3 (Llama 3) or 1 (Qwen2), by llama.cpp's custom scanners.
    case llama3(maxDigits: Int)
    /// `P?B{min,max}`: an optional prefix character then a run of body characters, found
    /// leftmost-first as std::regex does on llama.cpp's category-collapsed text.
    case run(prefix: CharacterSet?, body: CharacterSet, min: Int, max: Int)

    /// The character classes the regexes use. On the collapsed text llama.cpp matches,
    /// `\p{X}` is the category of every code point and `\s` is its whitespace set.
    enum CharacterSet: Sendable {
        case number, letter, punctuation, whitespace, lineBreak, asciiDigit, deepseekCJK
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
            case .punctuationOrDefaultSymbols:
                return cls.contains(.punctuation) || c == 0x24 || c == 0x2B || (0x3C...0x3E).contains(c)
                    || c == 0x5E || c == 0x7E || c == 0x7C
            case .punctuationOrFalconSymbols:
                return cls.contains(.punctuation) || c == 0x24 || c == 0x2B || (0x3C...0x3E).contains(c)
                    || c == 0x5E || c == 0x7E || c == 0x7C || c == 0x60
            }
        }
    }
}
