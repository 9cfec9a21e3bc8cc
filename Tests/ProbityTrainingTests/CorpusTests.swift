// Corpus readers: ShareGPT cut off mid-record, chitchat, text, JSONL; held-out split; errors.

import Foundation
import Testing
@testable import ProbityTraining
import ProbityFormats
import ProbityLM

func scratchFile(_ name: String, _ contents: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-corpus-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func documents(_ path: String, split: CorpusSplit = .all) throws -> [CorpusDocument] {
    var docs: [CorpusDocument] = []
    try Corpus(path: path).forEachDocument(split: split) { docs.append($0); return true }
    return docs
}

@Suite struct CorpusTests {
    @Test func shareGPTStopsAtTheFirstIncompleteRecord() throws {
        // Braces and brackets inside strings, escaped quotes, a record split across the reader's
        // chunks would all confuse a naive scanner; the file ends mid-record as the published one does.
        let text = """
        [{"id": "a1", "conversations": [{"from": "human", "value": "Hi {there} [x] \\"quoted\\""}, {"from": "gpt", "value": "Hello!"}]},
         {"id": "b2", "conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
         {"id": "c3", "conversations": [{"from": "human", "value": "this record is cut o
        """
        let docs = try documents(try scratchFile("sharegpt.json", text))
        #expect(docs.count == 2)
        #expect(docs.first == CorpusDocument(id: "a1", content: .chat([.user("Hi {there} [x] \"quoted\""), .assistant("Hello!")])))
        #expect(docs.last == CorpusDocument(id: "b2", content: .chat([.system("Be brief."), .user("2+2?"), .assistant("4")])))
    }

    @Test func shareGPTRecordsAcrossChunks() throws {
        let records = (0..<3000).map { i in
            #"{"id": "r\#(i)", "conversations": [{"from": "human", "value": "\#(String(repeating: "w\(i) ", count: 80))"}]}"#
        }
        let docs = try documents(try scratchFile("big.json", "[" + records.joined(separator: ",\n") + "]"))
        #expect(docs.count == 3000)   // ~1.3 MB: records straddle the 1 MiB read boundary
        #expect(docs[2999].id == "r2999")
    }

    @Test func shareGPTBadRecord() throws {
        let path = try scratchFile("bad.json", #"[{"id": "x", "conversations": [{"from": "robot", "value": "hi"}]}]"#)
        #expect(throws: TrainingError.badCorpusRecord(path: path, record: "x", reason: "unknown speaker \"robot\" (expected human, gpt or system)")) {
            _ = try documents(path)
        }
    }

    @Test func chitchat() throws {
        let text = """
        {"u2": {"messages": [[{"text": "hey", "sender": "A", "timestamp": "t"}, {"text": "you there?", "sender": "A", "timestamp": "t"}],
                             [{"text": "yes", "sender": "B", "timestamp": "t"}], [{"text": "cool", "sender": "A", "timestamp": "t"}]]},
         "u1": {"messages": [[{"text": "first", "sender": "C", "timestamp": "t"}]]}}
        """
        let docs = try documents(try scratchFile("chitchat.json", text))
        #expect(docs == [
            CorpusDocument(id: "u1", content: .chat([.user("first")])),
            CorpusDocument(id: "u2", content: .chat([.user("hey\nyou there?"), .assistant("yes"), .user("cool")])),
        ])
    }

    @Test func textAndJSONL() throws {
        let t = try documents(try scratchFile("a.txt", "One paragraph\nstill one.\n\n\n  Two.  \n"))
        #expect(t == [CorpusDocument(id: "paragraph 1", content: .text("One paragraph\nstill one.")),
                      CorpusDocument(id: "paragraph 2", content: .text("Two."))])
        let j = try documents(try scratchFile("a.jsonl", "{\"text\": \"x\"}\n\n\"y\"\n"))
        #expect(j == [CorpusDocument(id: "line 1", content: .text("x")), CorpusDocument(id: "line 3", content: .text("y"))])
        let bad = try scratchFile("b.jsonl", "{\"text\": \"x\"}\n{\"body\": 1}\n")
        #expect(throws: TrainingError.badCorpusRecord(path: bad, record: "line 2", reason: "expected a string or an object with a string \"text\"")) {
            _ = try documents(bad)
        }
    }

    /// Text read in place cuts paragraphs exactly where splitting the whole file as one `String`
    /// did: at two "\n" characters (not in "\r\n\n"), after a dropped byte order mark, around
    /// combining marks; and a file that is not UTF-8 anywhere is refused before any paragraph.
    @Test func textParagraphsAreTheWholeStringsComponents() throws {
        let texts = ["\u{FEFF}a\n\nb", "a\r\n\nb\n\n\nc\r\n\r\nd", "x\u{301}\n\n\u{301}y\n\n", "\n\n\n\n", "", "é\n\nà \r\n\n\n z",
                     " \n\n \t\n\n\u{00A0}q\u{00A0}\n\n"]
        for text in texts {
            let expected = text.dropFirst(text.hasPrefix("\u{FEFF}") ? 1 : 0).components(separatedBy: "\n\n")
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            let read = try documents(try scratchFile("t.txt", text))
            #expect(read.map(\.content) == expected.map { .text($0) }, "\(Array(text.unicodeScalars))")
            #expect(read.map(\.id) == expected.indices.map { "paragraph \($0 + 1)" })
        }
        let path = try scratchFile("bad.txt", "")
        try Data("fine\n\nthen \u{FF}".utf8.map { $0 == 0xC3 ? 0xFF : $0 }).write(to: URL(fileURLWithPath: path))
        var seen = 0
        #expect(throws: TrainingError.unreadableCorpus(path: path, reason: "not UTF-8 text")) {
            try Corpus(path: path).forEachDocument(split: .all) { _ in seen += 1; return true }
        }
        #expect(seen == 0)
    }

    @Test func heldOutSplitIsDeterministicAndDisjoint() throws {
        let lines = (0..<500).map { "{\"text\": \"doc \($0)\"}" }.joined(separator: "\n")
        let path = try scratchFile("many.jsonl", lines)
        let train = try documents(path, split: .train).map(\.id)
        let held = try documents(path, split: .heldOut).map(\.id)
        #expect(train.count + held.count == 500)
        #expect(Set(train).isDisjoint(with: held))
        #expect(held.count > 0 && held.count < 30)
        #expect(held == (try documents(path, split: .heldOut).map(\.id)))
        #expect(fnv1a64("a") == 0xaf63dc4c8601ec8c)   // the published FNV-1a 64 test vector
    }

    @Test func missingAndUnreadableCorpora() throws {
        #expect(throws: TrainingError.missingCorpus(path: "/nonexistent/x.json")) { _ = try Corpus(path: "/nonexistent/x.json") }
        let garbage = try scratchFile("corpus.bin", "hello")
        #expect(throws: TrainingError.unreadableCorpus(path: garbage, reason: "expected .txt, .jsonl, a ShareGPT JSON array or a chitchat JSON object")) {
            _ = try Corpus(path: garbage)
        }
    }
}

/// Several corpora take turns, one document each, so any run sees all of them; skipping resumes in
/// the same order.
@Test func windowSourceInterleavesCorpora() throws {
    let tokenizer = try Tokenizer(gguf: try GGUFFile(path: try ModelLocator.resolve("default")))
    let a = try Corpus(path: try scratchFile("a.jsonl", (1...3).map { "{\"text\": \"alpha \($0)\"}" }.joined(separator: "\n")))
    let b = try Corpus(path: try scratchFile("b.jsonl", "{\"text\": \"beta 1\"}\n"))
    let source = WindowSource(corpora: [a, b], split: .all, tokenizer: tokenizer, chatFormat: nil, context: 64)
    func texts(skip: Int) throws -> [String] {
        var out: [String] = []
        try source.forEachDocument(skip: skip) { windows in
            out.append(try tokenizer.decode(windows.flatMap { $0 }.filter { !tokenizer.isSpecial($0) }))
            return true
        }
        return out
    }
    #expect(try texts(skip: 0) == ["alpha 1", "beta 1", "alpha 2", "alpha 3"])
    #expect(try texts(skip: 2) == ["alpha 2", "alpha 3"])
}

/// A conversation without a chat format to render it is an error naming the document, never text
/// rendered some other way (a dictionary would learn text the model is not run on).
@Test func conversationsNeedAChatFormat() throws {
    let tokenizer = try Tokenizer(gguf: try GGUFFile(path: try ModelLocator.resolve("default")))
    let chat = try Corpus(path: try scratchFile("chat.json", #"[{"id": "c1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}]"#))
    let plain = WindowSource(corpora: [chat], split: .all, tokenizer: tokenizer, chatFormat: nil, context: 64)
    #expect(throws: TrainingError.conversationNeedsChatFormat(document: "c1")) {
        try plain.forEachDocument { _ in true }
    }
    let rendered = WindowSource(corpora: [chat], split: .all, tokenizer: tokenizer, chatFormat: try ChatFormat.named("chatml-smollm"), context: 64)
    var windows = 0
    try rendered.forEachDocument { w in windows += w.count; return true }
    #expect(windows == 1)
}

/// Gemma's format takes strictly alternating turns; a corpus conversation that opens with the
/// assistant or repeats a role is rendered as alternating turns (the opening assistant turn
/// dropped, repeated turns joined), one that alternates is rendered as it is, and one without a user
/// turn has nothing to render.
@Test func conversationsAreRenderedAsAlternatingTurnsWhereTheFormatNeedsIt() throws {
    let tokenizer = try Tokenizer(gguf: try GGUFFile(path: try ModelLocator.resolve("default")))
    let gemma = try ChatFormat.named("gemma")
    let json = #"[{"id": "c1", "conversations": [{"from": "gpt", "value": "Welcome"}, {"from": "human", "value": "Hi"}, {"from": "human", "value": "Anyone?"}, {"from": "gpt", "value": "Hello"}]}, {"id": "c2", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}, {"id": "c3", "conversations": [{"from": "gpt", "value": "Alone"}]}]"#
    let corpus = try Corpus(path: try scratchFile("turns.json", json))
    let source = WindowSource(corpora: [corpus], split: .all, tokenizer: tokenizer, chatFormat: gemma, context: 256)
    var texts: [[Int]] = []
    try source.forEachDocument { w in texts.append(w.flatMap { $0 }); return true }
    let expected = [
        tokenizer.encode(try gemma.renderChat([.user("Hi\n\nAnyone?"), .assistant("Hello")], addGenerationPrompt: false), addSpecial: true),
        tokenizer.encode(try gemma.renderChat([.user("Hi"), .assistant("Hello")], addGenerationPrompt: false), addSpecial: true),
    ]
    #expect(texts == expected + [[]])  // c3, the assistant alone, has no windows
}
