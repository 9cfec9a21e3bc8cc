// `probity chat-template` run as a binary: exact output, overrides, and exit 2 on bad input.

import Foundation
import ProbityTestSupport
import Testing

/// The llama.cpp reference's `chat` prompt: the user's question and the exact prompt it rendered.
private func referenceChat() throws -> (user: String, text: String) {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reference/reference.json")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    let prompts = try #require(json["prompts"] as? [[String: Any]])
    let chat = try #require(prompts.first { $0["name"] as? String == "chat" })
    return (try #require(chat["user"] as? String), try #require(chat["text"] as? String))
}

private func write(_ text: String, to name: String, in dir: URL) throws -> String {
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
}

@Suite struct ChatTemplateCommandTests {
    /// These run the default model's template: without the model, each fails naming scripts/setup.
    init() throws { _ = try TestData.defaultModelPath() }

    @Test func rendersTheReferencePromptExactly() throws {
        let (user, text) = try referenceChat()
        let dir = try CLI.scratch()
        let body = try JSONSerialization.data(withJSONObject: [["role": "user", "content": user]])
        let file = try write(String(decoding: body, as: UTF8.self), to: "chat.json", in: dir)
        let r = try CLI.run(["chat-template", "--messages", file])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == text)
        let explicit = try CLI.run(["chat-template", "default", "--messages", file])
        #expect(explicit.stdout == text)
    }

    @Test func generationPromptAndFormatOverride() throws {
        let dir = try CLI.scratch()
        let file = try write(#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}"#,
                             to: "chat.json", in: dir)
        let plain = try CLI.run(["chat-template", "--messages", file, "--no-generation-prompt"])
        #expect(plain.status == 0)
        #expect(plain.stdout == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        let gemma = try CLI.run(["chat-template", "--messages", file, "--chat-format", "gemma"])
        #expect(gemma.status == 0)
        #expect(gemma.stdout == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
    }

    @Test func badMessagesFileIsBadInput() throws {
        let dir = try CLI.scratch()
        let missing = try write(#"[{"role": "user", "content": "a"}, {"role": "assistant"}]"#, to: "missing.json", in: dir)
        let r = try CLI.run(["chat-template", "--messages", missing])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "probity: error: \(missing): message 1: missing \"content\"\n")

        let broken = try write(#"[{"role": "user", "content": "a"#, to: "broken.json", in: dir)
        let b = try CLI.run(["chat-template", "--messages", broken])
        #expect(b.status == 2)
        #expect(b.stderr == "probity: error: \(broken):1:32: not valid JSON (byte offset 31): expected '\"' to close the string, found the end of the text\n")

        let role = try write(#"[{"role": "robot", "content": "a"}]"#, to: "role.json", in: dir)
        let u = try CLI.run(["chat-template", "--messages", role])
        #expect(u.status == 2)
        #expect(u.stderr.contains("\(role): message 0: unknown role 'robot'"))

        let none = try CLI.run(["chat-template", "--messages", dir.appendingPathComponent("none.json").path])
        #expect(none.status == 2)
        #expect(none.stderr.contains("none.json: cannot read messages file: no such file"))
    }

    @Test func unknownFormatAndRejectedConversationAreBadInput() throws {
        let dir = try CLI.scratch()
        let file = try write(#"[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]"#, to: "c.json", in: dir)
        let r = try CLI.run(["chat-template", "--messages", file, "--chat-format", "alpaca"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("unknown chat format 'alpaca'"))
        #expect(r.stderr.contains("chatml-smollm, chatml, llama3, gemma, mistral-instruct"))
        let m = try CLI.run(["chat-template", "--messages", file, "--chat-format", "mistral-instruct"])
        #expect(m.status == 2)
        #expect(m.stderr.contains("does not support role 'system'"))
    }
}

@Suite struct ChatTemplateCommandNoModelTests {
    @Test func modelWithoutTemplateSuggestsOverride() throws {
        let dir = try CLI.scratch()
        // The smallest valid GGUF: magic, version 3, no tensors, no metadata.
        var header = Array("GGUF".utf8)
        withUnsafeBytes(of: UInt32(3).littleEndian) { header += $0 }
        withUnsafeBytes(of: UInt64(0).littleEndian) { header += $0; header += $0 }
        let model = dir.appendingPathComponent("base.gguf")
        try Data(header).write(to: model)
        let file = try write(#"[{"role": "user", "content": "u"}]"#, to: "c.json", in: dir)

        let r = try CLI.run(["chat-template", model.path, "--messages", file])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(model.path): the model has no chat template"))
        #expect(r.stderr.contains("--chat-format"))

        let ok = try CLI.run(["chat-template", model.path, "--messages", file, "--chat-format", "chatml"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout == "<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func badModelIsBadInput() throws {
        let dir = try CLI.scratch()
        let file = try write(#"[{"role": "user", "content": "u"}]"#, to: "c.json", in: dir)
        let missing = try CLI.run(["chat-template", "/no/such/model.gguf", "--messages", file])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/no/such/model.gguf: no such model file"))
        let notGGUF = try CLI.run(["chat-template", file, "--messages", file])
        #expect(notGGUF.status == 2)
        #expect(notGGUF.stderr.contains("\(file): offset 0"))
    }

    @Test func helpExitsZero() throws {
        let r = try CLI.run(["chat-template", "--help"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("--chat-format"))
        #expect(r.stderr.isEmpty)
    }

    @Test func missingMessagesOptionIsBadInput() throws {
        let r = try CLI.run(["chat-template"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--messages"))
    }
}
