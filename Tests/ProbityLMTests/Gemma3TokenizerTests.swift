// Gemma 3's SentencePiece vocabulary (262,144 tokens, byte fallback, control tokens) against
// llama.cpp's tokenizer on a corpus of texts: Tests/Fixtures/gemma3/tokenizer-corpus.json, made by
// scripts/gemma3-reference (scripts/lib/gemma3-tokenizer-corpus.py).

import Foundation
import ProbityFormats
import ProbityTestSupport
import Testing
@testable import ProbityLM

@Suite(.serialized) struct Gemma3TokenizerTests {
    struct Case {
        var source: String
        var text: String
        var special: Bool
        var ids: [Int]
    }

    let tokenizer: Tokenizer
    let cases: [Case]

    init() throws {
        tokenizer = try Tokenizer(gguf: GGUFFile(path: try TestData.gemma3ModelPath()))
        let url = Gemma3Reference.directory.appendingPathComponent("tokenizer-corpus.json")
        guard let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
              let list = root["cases"] as? [[String: Any]] else {
            throw FixtureError("gemma3/tokenizer-corpus.json: unexpected layout")
        }
        cases = try list.map { c in
            guard let source = c["source"] as? String, let text = c["text"] as? String,
                  let special = c["special"] as? Bool, let ids = c["ids"] as? [Int] else {
                throw FixtureError("gemma3/tokenizer-corpus.json: incomplete case")
            }
            return Case(source: source, text: text, special: special, ids: ids)
        }
    }

    @Test func vocabularyIsGemmas() {
        #expect(tokenizer.vocabularySize == 262_144)
        #expect(tokenizer.bosID == 2 && tokenizer.eosID == 1 && tokenizer.addsBOS)
        #expect(tokenizer.encode("<start_of_turn>user\n", addSpecial: false) == [105, 2364, 107])
    }

    /// Every case id for id, with BOS added and specials parsed as the case says.
    @Test func matchesLlamaCppOnTheCorpus() {
        #expect(cases.count >= 2000)
        for source in ["chitchat", "austen", "code", "edge"] {
            #expect(cases.contains { $0.source == source }, "no \(source) cases")
        }
        var mismatches = 0
        for c in cases {
            let got = tokenizer.encode(c.text, addSpecial: true, parseSpecial: c.special)
            if got != c.ids {
                mismatches += 1
                if mismatches <= 10 {
                    Issue.record("\(c.source) special=\(c.special) \(c.text.debugDescription.prefix(120)):\n  expected \(c.ids.prefix(40))\n  found    \(got.prefix(40))")
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) cases differ from llama.cpp")
        print("gemma3 tokenizer: \(cases.count - mismatches)/\(cases.count) cases match llama.cpp, \(cases.reduce(0) { $0 + $1.ids.count }) tokens")
    }

    /// decode(encode(s)) == s for the corpus texts (BOS dropped; byte fallback makes every text
    /// representable). Texts holding `▁` itself are left out: SentencePiece reads it as a space
    /// and writes it back as one, in llama.cpp too.
    @Test func roundTrips() throws {
        var failures = 0, checked = 0
        for c in cases where (c.special == false || c.source != "edge") && !c.text.contains("\u{2581}") {
            checked += 1
            let ids = tokenizer.encode(c.text, addSpecial: false, parseSpecial: false)
            if try tokenizer.decode(ids) != c.text {
                failures += 1
                if failures <= 5 { Issue.record("round trip of \(c.text.debugDescription.prefix(80))") }
            }
        }
        #expect(failures == 0)
        #expect(checked >= 1900)
    }
}
