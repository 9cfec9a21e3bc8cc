// Tokenizer tests: llama.cpp's ids for the default model (Tests/Fixtures/reference), round trips,
// streaming, tiny synthetic vocabularies for the merge rules, and malformed vocabularies.

import Foundation
import ProbityFormats
import ProbityTensor
import ProbityTestSupport
import Testing
@testable import ProbityLM

enum DefaultModel {
    /// The default model's tokenizer, shared; throws naming scripts/setup when it is not fetched.
    static func tokenizer() throws -> Tokenizer { try shared.get() }

    private static let shared = Result { try Tokenizer(gguf: GGUFFile(path: TestData.defaultModelPath())) }
}

struct ReferencePrompt: Decodable {
    let name: String
    let text: String
    let tokens_add_special_false: [Int]
    let tokens_add_special_true: [Int]
    let tokens_with_explicit_bos: [Int]
    let tokens_parse_special_false: [Int]
    let token_pieces: [String]
    let detok_roundtrip_equal: Bool

    static let all: [ReferencePrompt] = {
        struct File: Decodable { let prompts: [ReferencePrompt] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/reference/reference.json")
        guard let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data) else {
            return []
        }
        return file.prompts
    }()
}

@Suite struct TokenizerReference {
    @Test func fixtureHasFourPrompts() {
        #expect(ReferencePrompt.all.map(\.name) == ["plain", "unicode", "code", "chat"])
    }

    @Test(arguments: ReferencePrompt.all.map(\.name))
    func matchesLlamaCpp(_ name: String) throws {
        let tok = try DefaultModel.tokenizer()
        let p = try #require(ReferencePrompt.all.first(where: { $0.name == name }))
        #expect(tok.encode(p.text, addSpecial: false, parseSpecial: true) == p.tokens_add_special_false)
        #expect(tok.encode(p.text, addSpecial: true, parseSpecial: true) == p.tokens_add_special_true)
        #expect(tok.encode(p.text, addSpecial: false, parseSpecial: false) == p.tokens_parse_special_false)
        let bos = try #require(tok.bosID)
        #expect([bos] + tok.encode(p.text, addSpecial: false) == p.tokens_with_explicit_bos)
        #expect(try p.tokens_add_special_true.map { try tok.piece($0) } == p.token_pieces)
        #expect(try tok.decode(p.tokens_add_special_true) == p.text)
        #expect(p.detok_roundtrip_equal)
    }

    @Test func defaultModelSettings() throws {
        let tok = try DefaultModel.tokenizer()
        #expect(tok.vocabularySize == 49152)
        #expect(tok.bosID == 1 && tok.eosID == 2)
        #expect(!tok.addsBOS)
        #expect(tok.vocabulary.preTokenizer?.name == "smollm")
        #expect(tok.isSpecial(1) && tok.isSpecial(2) && !tok.isSpecial(504))
        #expect(try tok.piece(1) == "<|im_start|>")
    }
}

@Suite struct TokenizerRoundTrip {
    static let texts = [
        "Hello, world! How's it going? I'm fine; they'll see.",
        "Café naïve façade — Ünïcödé “quotes” ½ → ∑ ∞ ≠ ≤",
        "東京タワー 北京 서울 ひらがな カタカナ 中文字符",
        "🚀🔥👍🏽 👨‍👩‍👧‍👦 🇫🇷 emoji ❤️‍🔥",
        "def f(x):\n\tif x < 2:\n\t\treturn x  # comment\n    return f(x-1) + f(x-2)\n",
        "   leading and trailing spaces   \n\n\n\t\t  \r\n  ",
        "a\u{00}b\u{01}c\u{1F}d\u{7F}e\u{85}f\u{A0}g\u{200B}h\u{2028}i\u{3000}j\u{FEFF}",
        "\u{10FFFD}\u{E000}\u{F0000} private use; \u{0301}combining and e\u{0301}",
        "12345678901234567890 3.14159 1,000,000 0x1F",
        "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>",
        "",
        " ",
    ]

    @Test func defaultModel() throws {
        let tok = try DefaultModel.tokenizer()
        for text in Self.texts {
            #expect(try tok.decode(tok.encode(text)) == text)
            #expect(try tok.decode(tok.encode(text, parseSpecial: false)) == text)
        }
    }

    /// The default model's vocabulary has no token for the bytes 0x04, 0x06, 0x13, 0x14, 0x16,
    /// 0x1D (nor for bytes that never occur in UTF-8). llama.cpp drops such bytes: a symbol that
    /// is not a token falls back to one-byte tokens of its byte-level text, which do not exist.
    @Test func bytesWithoutTokenAreDropped() throws {
        let tok = try DefaultModel.tokenizer()
        #expect(tok.encode("a\u{1D}b") == [81, 82])  // "a", "b": the split stays, the byte goes
        #expect(try tok.decode(tok.encode("a\u{06}\u{14}b")) == "ab")
        #expect(try tok.decode(tok.encode("a\u{1C}b")) == "a\u{1C}b")
    }

    /// SentencePiece falls back to <0xNN> byte tokens for characters it lacks (emoji, rare CJK).
    @Test func sentencePieceWithByteFallback() throws {
        let tok = try VocabFixtures.tokenizer("llama-spm")
        for text in Self.texts {
            #expect(try tok.decode(tok.encode(text, addSpecial: false, parseSpecial: false)) == text)
        }
        let ids = tok.encode("🚀", addSpecial: false)
        #expect(ids.allSatisfy { tok.vocabulary.types[$0] == .byte || $0 == 29871 })
    }

    /// Every llama.cpp test case survives encode/decode for vocabularies without space clean-up.
    @Test(arguments: ["llama-spm", "qwen2", "qwen35", "deepseek-coder", "deepseek-llm", "command-r"])
    func vectorInputs(_ name: String) throws {
        let tok = try VocabFixtures.tokenizer(name)
        for (text, _) in try VocabFixtures.cases(name) {
            #expect(try tok.decode(tok.encode(text, addSpecial: false, parseSpecial: false)) == text)
        }
    }
}

@Suite struct StreamingDetokenizerTests {
    @Test func holdsBackPartialCharacters() throws {
        let tok = try DefaultModel.tokenizer()
        // " 東" is split by the vocabulary into " \xe6", "\x9d", "\xb1".
        var stream = StreamingDetokenizer(tokenizer: tok)
        #expect(try stream.append(17097) == " ")
        #expect(try stream.append(247) == "")
        #expect(try stream.append(126) == "東")
        #expect(stream.flush() == "")
    }

    @Test func concatenationEqualsDecode() throws {
        let tok = try DefaultModel.tokenizer()
        for text in TokenizerRoundTrip.texts {
            let ids = tok.encode(text)
            var stream = StreamingDetokenizer(tokenizer: tok)
            var out = ""
            for id in ids { out += try stream.append(id) }
            out += stream.flush()
            #expect(out == text)
        }
    }

    @Test func flushShowsUnfinishedCharacter() throws {
        let tok = try DefaultModel.tokenizer()
        var stream = StreamingDetokenizer(tokenizer: tok)
        #expect(try stream.append(247) == "\u{FFFD}")  // a lone continuation byte is invalid at once
        #expect(try stream.append(10813) == "")        // "\xf0\x9f" waits for the rest
        #expect(stream.flush() == "\u{FFFD}")
    }

    @Test func outOfRange() throws {
        let tok = try DefaultModel.tokenizer()
        var stream = StreamingDetokenizer(tokenizer: tok)
        #expect(throws: TokenizerError.tokenOutOfRange(49152, vocabularySize: 49152)) { try stream.append(49152) }
    }
}

@Suite struct TokenizerSynthetic {
    /// A byte-level BPE vocabulary over "a", "b", "c" and "Ġ" (the byte-level space).
    func bpe(merges: [String], extra: [String] = [], pre: String = "gpt-2") throws -> Tokenizer {
        let tokens = ["a", "b", "c", "Ġ", "!", "<|end|>"] + extra
        var types = [TokenType](repeating: .normal, count: tokens.count)
        types[5] = .control
        return try Tokenizer(vocabulary: Vocabulary(
            model: .bytePairEncoding, tokens: tokens, types: types, merges: merges,
            eosID: 5, preTokenizer: PreTokenizer(name: pre)))
    }

    @Test func lowestRankMergesFirst() throws {
        let bcFirst = try bpe(merges: ["b c", "a b"], extra: ["ab", "bc"])
        #expect(bcFirst.encode("abc") == [0, 7])      // a + bc
        let abFirst = try bpe(merges: ["a b", "b c"], extra: ["ab", "bc"])
        #expect(abFirst.encode("abc") == [6, 2])      // ab + c
    }

    @Test func mergesChainAcrossRounds() throws {
        let tok = try bpe(merges: ["a b", "ab c", "Ġ a"], extra: ["ab", "abc", "Ġa"])
        #expect(tok.encode("abc abc") == [7, 3, 7])   // "abc", then " abc" has no merge for Ġ+abc
        #expect(tok.encode("ab a") == [6, 8])         // "ab", "Ġa"
    }

    @Test func specialTokensOnlyWhenParsed() throws {
        let tok = try bpe(merges: ["a b"], extra: ["ab"])
        #expect(tok.encode("ab<|end|>a") == [6, 5, 0])
        // Without parsing, "<|end|>" is plain text; "<", "|", "e", ... are not in this vocabulary.
        #expect(tok.encode("ab<|end|>a", parseSpecial: false) == [6, 0])
        #expect(try tok.decode([6, 5, 0]) == "ab<|end|>a")
    }

    @Test func gpt2Splitting() {
        let text = ClassifiedText(utf8: Array("I'm  here,   ok?\n\n 42x".utf8)[...])
        let pre = PreTokenizer(name: "gpt-2")!
        let words = pre.split(text)
        var pieces: [String] = []
        var i = 0
        for n in words {
            pieces.append(String(String.UnicodeScalarView(text.codepoints[i..<(i + n)].compactMap(Unicode.Scalar.init))))
            i += n
        }
        #expect(pieces == ["I", "'m", " ", " here", ",", "  ", " ok", "?", "\n\n", " 42", "x"])
    }

    @Test func digitSplittingPerPreTokenizer() {
        func split(_ name: String, _ s: String) -> [Int] {
            PreTokenizer(name: name)!.split(ClassifiedText(utf8: Array(s.utf8)[...]))
        }
        #expect(split("smollm", "a 12345") == [1, 1, 1, 1, 1, 1, 1])    // \p{N} isolates each digit
        #expect(split("llama-bpe", "a 12345") == [1, 1, 3, 2])          // \p{N}{1,3}
        #expect(split("qwen2", "a 12345") == [1, 1, 1, 1, 1, 1, 1])     // \p{N}
        #expect(split("gpt-2", "a 12345") == [1, 6])                    // ` ?\p{N}+`
    }

    /// llama.cpp's tables are Unicode 15.1: later letters (U+1C89, Unicode 16) are unassigned.
    @Test func codepointClassesFollowLlamaCppsUnicodeVersion() {
        #expect(CodepointClass.category(of: 0x41) == .letter)
        #expect(CodepointClass.category(of: 0x4E00) == .letter)
        #expect(CodepointClass.category(of: 0x1F680) == .symbol)
        #expect(CodepointClass.category(of: 0x0301) == .mark)
        #expect(CodepointClass.category(of: 0xD800) == .control)
        #expect(CodepointClass.category(of: 0x1C89) == .undefined)
        #expect(CodepointClass.isWhitespace(0x85) && CodepointClass.isWhitespace(0x3000))
        #expect(!CodepointClass.isWhitespace(0x1C) && !CodepointClass.isWhitespace(0x200B))
        // So "aᲉb" is not one letter run for the GPT-2 pattern.
        let text = ClassifiedText(utf8: Array("a\u{1C89}b".utf8)[...])
        #expect(PreTokenizer(name: "gpt-2")?.split(text) == [1, 1, 1])
    }

    @Test func sentencePieceMergesByScore() throws {
        let tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁ab", "<0x21>", "▁a"]
        let types: [TokenType] = [.unknown, .control, .control, .normal, .normal, .normal, .normal, .normal, .byte, .normal]
        let scores: [Float] = [0, 0, 0, -5, -5, -5, -1, -0.5, 0, -2]
        let tok = try Tokenizer(vocabulary: Vocabulary(
            model: .sentencePiece, tokens: tokens, types: types, scores: scores,
            bosID: 1, eosID: 2, unknownID: 0, addBOS: true, addSpacePrefix: true))
        // "▁ab": ab (-1) beats ▁a (-2), then ▁+ab makes ▁ab; "!" is not a token: byte fallback.
        #expect(tok.encode("ab!") == [1, 7, 8])
        #expect(try tok.decode(tok.encode("ab!", addSpecial: false)) == "ab!")
        #expect(try tok.decode([1, 7, 8]) == "<s> ab!")
    }

    @Test func cleanSpacesAsLlamaCpp() {
        func clean(_ s: String) -> String {
            var b = Array(s.utf8)
            Tokenizer.cleanSpaces(&b)
            return String(decoding: b, as: UTF8.self)
        }
        #expect(clean("Hello , world ! ok ?") == "Hello, world! ok?")
        #expect(clean("it 's I 'm we 're they 've don 't I 'll") == "it's I'm we're they've don 't I 'll")
        #expect(clean("a ' b") == "a'b")
    }
}

@Suite struct TokenizerMalformed {
    let tokens: GGUFValue = .array(GGUFArray(["a", "b", "Ġ"].map { .string($0) }))

    func metadata(_ extra: [String: GGUFValue]) -> [String: GGUFValue] {
        var m: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.pre": .string("gpt-2"),
            "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.merges": .array([.string("a b")]),
        ]
        for (k, v) in extra { m[k] = v }
        return m
    }

    @Test func wellFormedLoads() throws {
        let v = try Vocabulary(metadata: metadata([:]), source: "t.gguf")
        #expect(v.count == 3 && v.merges == ["a b"])
    }

    @Test func missingMerges() {
        var m = metadata([:])
        m["tokenizer.ggml.merges"] = nil
        #expect(throws: TokenizerError.missingKey(source: "t.gguf", key: "tokenizer.ggml.merges")) {
            try Vocabulary(metadata: m, source: "t.gguf")
        }
    }

    @Test func tokenTypeLength() {
        let m = metadata(["tokenizer.ggml.token_type": .array([.int32(1), .int32(1)])])
        #expect(throws: TokenizerError.lengthMismatch(source: "t.gguf", key: "tokenizer.ggml.token_type", expected: 3, found: 2)) {
            try Vocabulary(metadata: m, source: "t.gguf")
        }
    }

    @Test func unknownPreTokenizer() {
        let m = metadata(["tokenizer.ggml.pre": .string("nonesuch")])
        #expect(throws: TokenizerError.unsupportedPreTokenizer(source: "t.gguf", name: "nonesuch", supported: PreTokenizer.supportedNames)) {
            try Vocabulary(metadata: m, source: "t.gguf")
        }
        let message = TokenizerError.unsupportedPreTokenizer(source: "t.gguf", name: "nonesuch", supported: PreTokenizer.supportedNames).description
        #expect(message.contains("'nonesuch'") && message.contains("smollm") && message.contains("llama-bpe"))
    }

    @Test func missingPreTokenizer() {
        var m = metadata([:])
        m["tokenizer.ggml.pre"] = nil
        #expect(throws: TokenizerError.missingKey(source: "t.gguf", key: "tokenizer.ggml.pre")) {
            try Vocabulary(metadata: m, source: "t.gguf")
        }
    }

    @Test func unsupportedModel() {
        let m = metadata(["tokenizer.ggml.model": .string("bert")])
        #expect(throws: TokenizerError.unsupportedModel(source: "t.gguf", model: "bert")) {
            try Vocabulary(metadata: m, source: "t.gguf")
        }
    }

    @Test func wrongTypes() {
        #expect(throws: TokenizerError.wrongType(source: "t.gguf", key: "tokenizer.ggml.tokens", expected: "array[string]", found: "array[int32]")) {
            try Vocabulary(metadata: metadata(["tokenizer.ggml.tokens": .array([.int32(1)])]), source: "t.gguf")
        }
        #expect(throws: TokenizerError.wrongType(source: "t.gguf", key: "tokenizer.ggml.bos_token_id", expected: "an integer", found: "string")) {
            try Vocabulary(metadata: metadata(["tokenizer.ggml.bos_token_id": .string("1")]), source: "t.gguf")
        }
    }

    @Test func specialIdOutOfRange() {
        #expect(throws: TokenizerError.specialTokenOutOfRange(source: "t.gguf", key: "tokenizer.ggml.eos_token_id", id: 3, vocabularySize: 3)) {
            try Vocabulary(metadata: metadata(["tokenizer.ggml.eos_token_id": .uint32(3)]), source: "t.gguf")
        }
    }

    @Test func addBOSWithoutBOS() {
        #expect(throws: TokenizerError.missingSpecialToken(source: "t.gguf", key: "tokenizer.ggml.bos_token_id", reason: "the vocabulary asks for a BOS token to be added")) {
            try Vocabulary(metadata: metadata(["tokenizer.ggml.add_bos_token": .bool(true)]), source: "t.gguf")
        }
    }

    @Test func decodeOutOfRange() throws {
        let tok = try Tokenizer(vocabulary: Vocabulary(metadata: metadata([:]), source: "t.gguf"))
        #expect(throws: TokenizerError.tokenOutOfRange(3, vocabularySize: 3)) { try tok.decode([0, 3]) }
        #expect(throws: TokenizerError.tokenOutOfRange(-1, vocabularySize: 3)) { try tok.decode([-1]) }
        #expect(throws: TokenizerError.tokenOutOfRange(7, vocabularySize: 3)) { try tok.piece(7) }
        #expect(TokenizerError.tokenOutOfRange(7, vocabularySize: 3).description.contains("3 tokens"))
    }
}

/// The same checks through real GGUF bytes, as a model file would bring them.
@Suite struct TokenizerFromGGUF {
    func file(_ metadata: [(String, GGUFValue)]) throws -> GGUFFile {
        var w = GGUFWriter(name: "tiny.gguf")
        try w.set("general.architecture", .string("llama"))
        for (k, v) in metadata { try w.set(k, v) }
        return try GGUFFile(bytes: w.bytes(), name: "tiny.gguf")
    }

    let base: [(String, GGUFValue)] = [
        ("tokenizer.ggml.model", .string("gpt2")),
        ("tokenizer.ggml.pre", .string("smollm")),
        ("tokenizer.ggml.tokens", .array(GGUFArray(["a", "b", "ab", "Ġ", "<|x|>"].map { .string($0) }))),
        ("tokenizer.ggml.token_type", .array(GGUFArray([1, 1, 1, 1, 3].map { .int32($0) }))),
        ("tokenizer.ggml.merges", .array([.string("a b")])),
        ("tokenizer.ggml.bos_token_id", .uint32(4)),
        ("tokenizer.ggml.add_bos_token", .bool(true)),
    ]

    @Test func tinyVocabulary() throws {
        let tok = try Tokenizer(gguf: file(base))
        #expect(tok.encode("ab b") == [4, 2, 3, 1])
        #expect(tok.encode("ab<|x|>a", addSpecial: false) == [2, 4, 0])
        #expect(try tok.decode([4, 2, 3, 1]) == "<|x|>ab b")
    }

    @Test func missingMerges() throws {
        let f = try file(base.filter { $0.0 != "tokenizer.ggml.merges" })
        #expect(throws: TokenizerError.missingKey(source: "tiny.gguf", key: "tokenizer.ggml.merges")) { try Tokenizer(gguf: f) }
    }

    @Test func shortTokenTypes() throws {
        let f = try file(base.filter { $0.0 != "tokenizer.ggml.token_type" }
                         + [("tokenizer.ggml.token_type", .array(GGUFArray([1, 1, 1].map { .int32($0) })))])
        #expect(throws: TokenizerError.lengthMismatch(source: "tiny.gguf", key: "tokenizer.ggml.token_type", expected: 5, found: 3)) {
            try Tokenizer(gguf: f)
        }
    }

    @Test func unknownPreTokenizer() throws {
        let f = try file(base.filter { $0.0 != "tokenizer.ggml.pre" } + [("tokenizer.ggml.pre", .string("tekken"))])
        #expect(throws: TokenizerError.unsupportedPreTokenizer(source: "tiny.gguf", name: "tekken", supported: PreTokenizer.supportedNames)) {
            try Tokenizer(gguf: f)
        }
    }
}

@Suite struct TokenizerConcurrency {
    /// One tokenizer shared by several threads (its word cache is shared) gives each the same ids
    /// as encoding alone.
    @Test func sharedAcrossThreads() async throws {
        let tok = try DefaultModel.tokenizer()
        let texts = (0..<8).map { i in
            (0..<200).map { j in "word\(i * 1000 + j) " + TokenizerRoundTrip.texts[(i + j) % TokenizerRoundTrip.texts.count] }
                .joined(separator: "\n")
        }
        let alone = try Tokenizer(vocabulary: tok.vocabulary)  // its own, empty word cache
        let expected = texts.map { alone.encode($0) }
        let results = await withTaskGroup(of: (Int, [Int]).self) { group in
            for (i, t) in texts.enumerated() { group.addTask { (i, tok.encode(t)) } }
            var out = [[Int]](repeating: [], count: texts.count)
            for await (i, ids) in group { out[i] = ids }
            return out
        }
        #expect(results == expected)
    }
}

@Suite struct TokenizerPhi3 {
    /// llama.cpp gives Phi-3's special tokens (by model name) the RSTRIP attribute: whitespace
    /// after them in the text is dropped; <s> keeps it.
    @Test func specialTokensStripWhitespaceToTheirRight() throws {
        let tok = try VocabFixtures.tokenizer("phi-3")
        let user = try #require(tok.vocabulary.tokens.firstIndex(of: "<|user|>"))
        #expect(tok.vocabulary.rightStripIDs.contains(user))
        #expect(!tok.vocabulary.rightStripIDs.contains(1))
        let stripped = tok.encode("<|user|> \n\t Hi", addSpecial: false)
        #expect(stripped.first == user)
        #expect(stripped == tok.encode("<|user|>Hi", addSpecial: false))
        #expect(tok.encode("<s> Hi", addSpecial: false) != tok.encode("<s>Hi", addSpecial: false))
    }
}

@Suite struct TokenizerRandomText {
    /// Text drawn from ranges that exercise every branch of the scanners: ASCII, whitespace and
    /// controls, Latin, combining marks, CJK, Hangul, emoji, private use, unassigned code points.
    /// It leaves out the control characters the default model has no byte token for (see
    /// `TokenizerRoundTrip.bytesWithoutTokenAreDropped`).
    static func randomText(_ g: inout SplitMix64) -> String {
        let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x20...0x7E, 0x07...0x12, 0x17...0x1C, 0x7F...0xFF, 0x300...0x36F,
                                             0x4E00...0x4E80, 0xAC00...0xAC40, 0x1F300...0x1F6FF, 0x2000...0x206F,
                                             0xE000...0xE010, 0x0870...0x089F, 0x30000...0x30010]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...40, using: &g) {
            let r = ranges[Int.random(in: 0..<ranges.count, using: &g)]
            if let s = Unicode.Scalar(UInt32.random(in: r, using: &g)) { scalars.append(s) }
        }
        return String(scalars)
    }

    @Test(arguments: ["default-model", "llama-spm", "qwen2", "deepseek-llm", "llama-bpe", "gpt-2"])
    func roundTripsOrAtLeastDecodes(_ name: String) throws {
        let tok = name == "default-model" ? try DefaultModel.tokenizer() : try VocabFixtures.tokenizer(name)
        let exact = tok.vocabulary.preTokenizer?.cleansSpaces != true
        var g = SplitMix64(seed: 42)  // seeded, so a failure can be reproduced
        for _ in 0..<500 {
            let text = Self.randomText(&g)
            for parseSpecial in [false, true] {
                let ids = tok.encode(text, addSpecial: false, parseSpecial: parseSpecial)
                #expect(ids.allSatisfy { (0..<tok.vocabularySize).contains($0) })
                let back = try tok.decode(ids)
                if exact { #expect(back == text, "\(name): \(text.unicodeScalars.map { String($0.value, radix: 16) })") }
            }
        }
    }
}
