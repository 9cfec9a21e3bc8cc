// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf with .inp/.out), read the way its
// tests/test-tokenizer-0.cpp reads them: cases split by "\n__ggml_vocab_test__\n", tokenized with
// add_special = false and parse_special = false, compared id for id. scripts/setup fetches them.

import Foundation
import ProbityFormats
import ProbityTestSupport
import Testing
@testable import ProbityLM

enum VocabFixtures {
    static var directory: String { ModelLocator.cacheDirectory + "/vocab" }

    static func path(_ name: String) -> String { directory + "/ggml-vocab-\(name).gguf" }

    /// The tokenizer of a test vocabulary; throws naming scripts/setup when it is not fetched.
    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(gguf: GGUFFile(path: TestData.required(path(name), what: "llama.cpp's test vocabulary", setup: "scripts/setup")))
    }

    /// The (text, expected ids) cases of a vocabulary.
    static func cases(_ name: String) throws -> [(String, [Int])] {
        let inp = try String(contentsOfFile: path(name) + ".inp", encoding: .utf8)
        let out = try String(contentsOfFile: path(name) + ".out", encoding: .utf8)
        var texts: [String] = []
        var rest = Substring(inp)
        let separator = "\n__ggml_vocab_test__\n"
        while !rest.isEmpty {
            if let r = rest.range(of: separator) {
                texts.append(String(rest[..<r.lowerBound]))
                rest = rest[r.upperBound...]
            } else {
                texts.append(String(rest))
                break
            }
        }
        var lines = out.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let expected = lines.map { line in
            line.split(separator: " ", omittingEmptySubsequences: true).compactMap { Int($0) }
        }
        #expect(texts.count == expected.count, "\(name): \(texts.count) inputs but \(expected.count) outputs")
        return Array(zip(texts, expected))
    }
}

@Suite struct TokenizerConformance {
    static let vocabularies = ["gpt-2", "llama-bpe", "llama-spm", "qwen2", "qwen35", "starcoder", "refact",
                               "deepseek-coder", "deepseek-llm", "mpt", "command-r", "falcon", "phi-3"]

    @Test(arguments: vocabularies)
    func llamaCppVectors(_ name: String) throws {
        let tok = try VocabFixtures.tokenizer(name)
        let cases = try VocabFixtures.cases(name)
        #expect(cases.count >= 40)
        var failures: [String] = []
        for (text, expected) in cases {
            let got = tok.encode(text, addSpecial: false, parseSpecial: false)
            if got != expected {
                failures.append("\(text.debugDescription): expected \(expected), got \(got)")
            }
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) of \(cases.count) cases differ:\n\(failures.prefix(8).joined(separator: "\n"))")
    }
}
