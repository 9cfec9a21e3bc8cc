// Encoding throughput of the default model's tokenizer on natural text: the ShareGPT JSON that
// scripts/setup --corpora fetches, or any UTF-8 text file named by PROBITY_TOKENIZER_CORPUS.
// Figures go in docs/BENCHMARKS.md; a benchmark, so it lives outside the unit suite.

import Foundation
import ProbityFormats
import ProbityLM
import ProbityTestSupport
import Testing

@Suite struct TokenizerBenchmark {
    /// The corpus to tokenize; throws naming scripts/setup --corpora when the default one is missing.
    static func corpusPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["PROBITY_TOKENIZER_CORPUS"], !path.isEmpty { return path }
        return try TestData.cacheFile("corpora/sharegpt.json", what: "the ShareGPT corpus", setup: "scripts/setup --corpora")
    }
    /// How much text to tokenize, in bytes.
    static let budget = (Int(ProcessInfo.processInfo.environment["PROBITY_TOKENIZER_CORPUS_MB"] ?? "") ?? 8) << 20

    /// The corpus as separate texts: ShareGPT message values, or one text file.
    static func texts(_ path: String) throws -> [String] {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard path.hasSuffix(".json") else { return [String(decoding: data, as: UTF8.self)] }
        // The packaged ShareGPT file is cut off mid-record, and we need only its start: keep the
        // whole conversations in the first few budgets' worth of bytes and close the array.
        let separator = Data("\n  },\n  {".utf8)
        if let cut = data.range(of: separator, options: .backwards, in: 0..<min(data.count, 4 * budget)) {
            data = data[..<cut.lowerBound] + Data("\n  }\n]".utf8)
        }
        let conversations = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        var texts: [String] = []
        var total = 0
        outer: for c in conversations {
            for turn in c["conversations"] as? [[String: Any]] ?? [] {
                guard let value = turn["value"] as? String else { continue }
                texts.append(value)
                total += value.utf8.count
                if total >= budget { break outer }
            }
        }
        return texts
    }

    @Test func encodeThroughput() throws {
        let path = try Self.corpusPath()
        let tok = try Tokenizer(gguf: GGUFFile(path: TestData.defaultModelPath()))
        let texts = try Self.texts(path)
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        #expect(bytes > 1 << 20, "the corpus should hold at least 1 MB of text")

        let clock = ContinuousClock()
        var tokens = 0
        let perMessage = clock.measure {
            for t in texts { tokens += tok.encode(t, addSpecial: false).count }
        }
        let joined = texts.joined(separator: "\n")
        var joinedTokens = 0
        let oneCall = clock.measure { joinedTokens = tok.encode(joined, addSpecial: false).count }

        func mbps(_ d: Duration) -> Double {
            Double(bytes) / 1e6 / (Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        print(String(format: "tokenizer: %.1f MB in %d texts -> %d tokens; per text %.2f MB/s; warm, one call %.2f MB/s (%d tokens)",
                     Double(bytes) / 1e6, texts.count, tokens, mbps(perMessage), mbps(oneCall), joinedTokens))
        #expect(tokens > 0)
    }
}
