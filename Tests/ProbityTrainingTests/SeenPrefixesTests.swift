// Training counts a token prefix once: chat documents rendered with SmolLM2's template all open with
// BOS and the default system prompt, and those positions (identical activations in every window)
// must reach the SAE once per run, not once per document; a resumed run knows the prefixes before it.

import Foundation
import Testing
@testable import ProbityTraining
import ProbityFormats
import ProbityLM

@Suite(.serialized) struct SeenPrefixesTests {
    @Test func aPrefixIsNewOnlyTheFirstTime() {
        var seen = SeenPrefixes()
        #expect(seen.novel([1, 2, 3, 4]) == [true, true, true, true])
        // Same opening, then a different token: only the positions after the split are new.
        #expect(seen.novel([1, 2, 3, 5]) == [false, false, false, true])
        #expect(seen.novel([1, 2, 3, 4]) == [false, false, false, false])
        // The same token after a different prefix is a different position.
        #expect(seen.novel([7, 2, 3]) == [true, true, true])
        #expect(seen.repeated == 7)
    }

    /// Three chat documents through the real model: the shared opening (BOS, template, default
    /// system prompt, the user turn's header) is collected with the first document only.
    @Test func theSharedSystemPromptIsCollectedOnce() throws {
        let loaded = try LoadedModel.load("default", threads: 2)
        let tokenizer = loaded.tokenizer
        let format = try ChatTemplate.format(for: loaded.file, override: nil)
        let users = ["What is the capital of France?", "Name a prime number.", "How do bees make honey?"]
        let records = users.enumerated().map { i, u in
            #"{"id": "d\#(i)", "conversations": [{"from": "human", "value": "\#(u)"}, {"from": "gpt", "value": "Let me think."}]}"#
        }
        let corpus = try Corpus(path: try scratchFile("chats.json", "[" + records.joined(separator: ",\n") + "]"))
        let source = WindowSource(corpora: [corpus], split: .all, tokenizer: tokenizer, chatFormat: format, context: 128)
        var docs: [[Int]] = []
        try source.forEachDocument { windows in
            #expect(windows.count == 1)
            docs.append(windows.flatMap { $0 })
            return true
        }
        #expect(docs.count == 3)
        // The shared opening holds the default system prompt.
        let shared = zip(docs[0], docs[1]).prefix { $0 == $1 }.count
        let opening = try tokenizer.decode(Array(docs[0].prefix(shared)))
        #expect(opening.contains(ChatFormat.smolLMDefaultSystem), "\(opening)")
        func counted(_ tokens: ArraySlice<Int>) -> Int { tokens.filter { !tokenizer.isSpecial($0) }.count }
        // What the run must collect: every non-special position of the first document, and of the
        // others only those after the prefix they share with a document before them.
        var expected = counted(docs[0][...])
        for i in 1..<docs.count {
            let common = (0..<i).map { j in zip(docs[j], docs[i]).prefix { $0 == $1 }.count }.max() ?? 0
            expected += counted(docs[i][common...])
        }
        let repeatedOpening = counted(docs[0].prefix(shared))
        #expect(repeatedOpening >= 15, "the system prompt's positions: \(repeatedOpening)")

        let collector = try ActivationCollector(model: loaded.model, tokenizer: tokenizer, point: .residPost(15), context: 128)
        var rows = 0
        let batches = ShuffledBatches(source: source, collector: collector, batchSize: 1, bufferRows: 1 << 20, seed: 1)
        try batches.run { buffer in rows += buffer.count / collector.width; return true }
        #expect(rows == expected)
        // Without the rule every document would add its opening again.
        #expect(rows + 2 * repeatedOpening == docs.map { counted($0[...]) }.reduce(0, +))

        // Resumed after the first document, the run still knows the opening.
        let resumed = ShuffledBatches(source: source, collector: collector, batchSize: 1, bufferRows: 1 << 20, seed: 1,
                                      documentsConsumed: 1, buffersFilled: 1)
        var after = 0
        try resumed.run { buffer in after += buffer.count / collector.width; return true }
        #expect(after == expected - counted(docs[0][...]))
    }
}
