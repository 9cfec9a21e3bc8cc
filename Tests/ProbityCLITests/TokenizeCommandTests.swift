// `probity tokenize` / `probity detokenize` run as the real binary, checked against llama.cpp's
// token ids and pieces for the default model (Tests/Fixtures/reference/reference.json).

import Foundation
import Testing

private struct Reference: Decodable {
    struct Prompt: Decodable {
        let name: String
        let text: String
        let tokens_add_special_true: [Int]
        let tokens_parse_special_false: [Int]
        let tokens_with_explicit_bos: [Int]
        let token_pieces: [String]
    }
    let prompts: [Prompt]

    static func load() throws -> Reference {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/reference/reference.json")
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    func prompt(_ name: String) throws -> Prompt {
        try #require(prompts.first { $0.name == name })
    }
}

private struct TokenizeOutput: Decodable, Equatable {
    let pieces: [String]
    let tokens: [Int]
}

@Suite struct TokenizeCommandTests {
    @Test(arguments: ["plain", "unicode", "code", "chat"])
    func jsonMatchesLlamaCpp(_ name: String) throws {
        let p = try Reference.load().prompt(name)
        let r = try CLI.run(["tokenize", "default", "--text", p.text, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONDecoder().decode(TokenizeOutput.self, from: Data(r.stdout.utf8))
        #expect(out == TokenizeOutput(pieces: p.token_pieces, tokens: p.tokens_add_special_true))
    }

    /// No llama.cpp reference holds this text (the prompts above do); 19556 and 905 are the
    /// vocabulary's whole-word tokens "Hello" and "Ġworld", which the merges reach.
    @Test func helloWorld() throws {
        let r = try CLI.run(["tokenize", "--text", "Hello world", "--json"])
        #expect(r.status == 0)
        #expect(r.stdout == "{\"pieces\":[\"Hello\",\" world\"],\"tokens\":[19556,905]}\n")
    }

    @Test func noSpecialAndAddBOS() throws {
        let p = try Reference.load().prompt("chat")
        let plain = try CLI.run(["tokenize", "--text", p.text, "--no-special", "--json"])
        #expect(try JSONDecoder().decode(TokenizeOutput.self, from: Data(plain.stdout.utf8)).tokens == p.tokens_parse_special_false)
        let bos = try CLI.run(["tokenize", "--text", p.text, "--add-bos", "--json"])
        #expect(try JSONDecoder().decode(TokenizeOutput.self, from: Data(bos.stdout.utf8)).tokens == p.tokens_with_explicit_bos)
    }

    @Test func textOutputAndFiles() throws {
        let dir = try CLI.scratch()
        let txt = dir.appendingPathComponent("in.txt")
        try "The capital of France".write(to: txt, atomically: true, encoding: .utf8)
        let r = try CLI.run(["tokenize", "--file", txt.path])
        #expect(r.status == 0)
        #expect(r.stdout == "504\tThe\n3575\t capital\n282\t of\n4649\t France\n")

        let jsonl = dir.appendingPathComponent("cases.jsonl")
        try "{\"text\": \"The capital\"}\n\n{\"text\": \"def fibonacci(n):\"}\n".write(to: jsonl, atomically: true, encoding: .utf8)
        let j = try CLI.run(["tokenize", "default", "--file", jsonl.path, "--json"])
        #expect(j.status == 0)
        let lines = j.stdout.split(separator: "\n").map { try? JSONDecoder().decode(TokenizeOutput.self, from: Data($0.utf8)) }
        #expect(lines.map { $0?.tokens } == [[504, 3575], [1604, 3987, 46477, 24, 94, 727]])
        let jt = try CLI.run(["tokenize", "--file", jsonl.path])
        #expect(jt.stdout == "504\tThe\n3575\t capital\n\n1604\tdef\n3987\t fib\n46477\tonacci\n24\t(\n94\tn\n727\t):\n")

        try "{\"text\": 3}\n".write(to: jsonl, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["tokenize", "--file", jsonl.path])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("cases.jsonl:1"))
    }

    @Test func badArguments() throws {
        let neither = try CLI.run(["tokenize"])
        #expect(neither.status == 2)
        #expect(neither.stderr.contains("--text"))
        let both = try CLI.run(["tokenize", "--text", "a", "--no-special", "--parse-special"])
        #expect(both.status == 2)
        let missing = try CLI.run(["tokenize", "/nonexistent/model.gguf", "--text", "a"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent/model.gguf"))
    }
}

@Suite struct DetokenizeCommandTests {
    @Test(arguments: ["plain", "unicode", "code", "chat"])
    func roundTripsReferenceTokens(_ name: String) throws {
        let p = try Reference.load().prompt(name)
        let r = try CLI.run(["detokenize", "default"] + p.tokens_add_special_true.map(String.init))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == p.text)
    }

    @Test func modelIsOptional() throws {
        let r = try CLI.run(["detokenize", "504", "3575"])
        #expect(r.status == 0)
        #expect(r.stdout == "The capital")
    }

    @Test func outOfRangeIsBadInput() throws {
        let r = try CLI.run(["detokenize", "default", "504", "49152"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("token id 49152") && r.stderr.contains("49152 tokens"))
        let negative = try CLI.run(["detokenize", "-1"])
        #expect(negative.status == 2)
        #expect(negative.stderr.contains("token id -1"))
        let word = try CLI.run(["detokenize", "default", "12x"])
        #expect(word.status == 2)
        #expect(word.stderr.contains("'12x'"))
    }
}
