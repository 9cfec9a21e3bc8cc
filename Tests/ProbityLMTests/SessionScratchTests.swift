// A session holds scratch for the chunk it is running and gives a prompt's back afterwards, so
// many sessions in a batch cost their caches and little else; the logits do not depend on it.

import Testing
@testable import ProbityLM

@Suite(.serialized) struct SessionScratchTests {
    @Test func aPromptsScratchIsGivenBackAndTheLogitsDoNotChange() throws {
        let loaded = try LoadedModel.load("default", threads: 2)
        let prompt = loaded.tokenizer.encode("Once upon a time, in a small village by the sea, there lived")
        try #require(prompt.count > 8)
        let session = try loaded.model.makeSession(capacity: 600)
        let pass = try #require((session as? ModelSession<LlamaPass>)?.pass)
        #expect(pass.scratchRows == 1, "a new session holds one row")
        let first = try session.forward(prompt, origins: nil, hooks: nil, logits: .all)
        #expect(pass.scratchRows == 1, "the prompt's \(prompt.count) rows were given back")
        let next = try session.forward([prompt[2]], origins: nil, hooks: nil, logits: .last)
        #expect(pass.scratchRows == 1 && next.count == loaded.model.info.vocabularySize)
        // The same prompt in a session that ran another, longer prompt first: the same bits.
        let other = try loaded.model.makeSession(capacity: 600)
        _ = try other.forward(Array(repeating: prompt[1], count: 300), origins: nil, hooks: nil, logits: .last)
        other.truncate(to: 0)
        #expect(try other.forward(prompt, origins: nil, hooks: nil, logits: .all) == first)
    }
}
