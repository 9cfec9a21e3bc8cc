// Chat formats: golden renders against the published templates and the llama.cpp reference prompt,
// template recognition, and messages files (Tests/Fixtures/chat-templates/README.md).

import Foundation
import Testing
import ProbityFormats
import ProbityLM

/// Test fixtures next to the test sources.
enum ChatFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func template(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent("chat-templates/\(name).jinja"), encoding: .utf8)
    }

    /// The `chat` prompt of the llama.cpp reference.
    static func referenceChatPrompt() throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent("reference/reference.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let prompts = try #require(json["prompts"] as? [[String: Any]])
        return try #require(prompts.first { $0["name"] as? String == "chat" })
    }
}

// Conversations shared by the golden tests. Expected strings below were checked by hand against
// each model's published Jinja template rendered with jinja2 (trim_blocks, lstrip_blocks), as HF
// transformers does.
private let systemMultiTurn: [ChatMessage] = [
    .system("You are terse."), .user("Hi"), .assistant("Hello."), .user("Name a colour."),
]
private let userOnly: [ChatMessage] = [.user("What is 2+2?")]
// Leading/trailing whitespace that some templates trim (Python's str.strip, so U+001C and
// U+3000 count as space) and others keep.
private let padded: [ChatMessage] = [.user("  Hello \n"), .assistant("\tHi there  "), .user("\u{1C}ok\u{3000}")]

@Suite struct ChatTemplateRenderTests {
    @Test func referenceChatPromptIsByteIdentical() throws {
        let prompt = try ChatFixtures.referenceChatPrompt()
        let user = try #require(prompt["user"] as? String)
        let text = try #require(prompt["text"] as? String)
        let builtin = try #require(prompt["llama_builtin_chat_template_render"] as? String)
        #expect(try ChatFormat.chatmlSmolLM.render([.user(user)], addGenerationPrompt: true) == text)
        // Plain ChatML has no default system message: it is what llama.cpp's built-in renderer wrote.
        #expect(try ChatFormat.chatml.render([.user(user)], addGenerationPrompt: true) == builtin)
    }

    @Test func chatmlSmolLM() throws {
        let f = ChatFormat.chatmlSmolLM
        #expect(try f.render(systemMultiTurn, addGenerationPrompt: true) ==
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")
        #expect(try f.render(userOnly, addGenerationPrompt: false) ==
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n")
        #expect(try f.render(padded, addGenerationPrompt: true) ==
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n  Hello \n<|im_end|>\n<|im_start|>assistant\n\tHi there  <|im_end|>\n<|im_start|>user\n\u{1C}ok\u{3000}<|im_end|>\n<|im_start|>assistant\n")
        // The default system message is decided by the first message only.
        #expect(try f.render([.user("a"), .system("late")], addGenerationPrompt: false) ==
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>system\nlate<|im_end|>\n")
    }

    @Test func chatml() throws {
        let f = ChatFormat.chatml
        #expect(try f.render(systemMultiTurn, addGenerationPrompt: false) ==
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n")
        #expect(try f.render(userOnly, addGenerationPrompt: true) ==
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
        #expect(try f.render([.user("a"), .user("b")], addGenerationPrompt: true) ==
            "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func llama3() throws {
        let f = ChatFormat.llama3
        #expect(try f.render(systemMultiTurn, addGenerationPrompt: true) ==
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(try f.render(systemMultiTurn, addGenerationPrompt: false) ==
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>")
        #expect(try f.render(userOnly, addGenerationPrompt: true) ==
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(try f.render(padded, addGenerationPrompt: false) ==
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nok<|eot_id|>")
    }

    @Test func gemma() throws {
        let f = ChatFormat.gemma
        #expect(try f.render(systemMultiTurn, addGenerationPrompt: true) ==
            "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nName a colour.<end_of_turn>\n<start_of_turn>model\n")
        #expect(try f.render(systemMultiTurn, addGenerationPrompt: false) ==
            "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nName a colour.<end_of_turn>\n")
        #expect(try f.render(userOnly, addGenerationPrompt: true) ==
            "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n")
        #expect(try f.render(padded, addGenerationPrompt: true) ==
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nok<end_of_turn>\n<start_of_turn>model\n")
        // The template drops a lone system message: its prefix has no turn to go on.
        #expect(try f.render([.system("Be brief.")], addGenerationPrompt: true) == "<bos><start_of_turn>model\n")
        // The system text is not trimmed, the user text is.
        #expect(try f.render([.system(" S "), .user(" u ")], addGenerationPrompt: false) ==
            "<bos><start_of_turn>user\n S \n\nu<end_of_turn>\n")
    }

    @Test func gemmaRolesMustAlternate() {
        #expect(throws: GenerationError.rolesMustAlternate(format: "gemma", index: 1, role: "user", expected: "assistant")) {
            try ChatFormat.gemma.render([.user("a"), .user("b")], addGenerationPrompt: true)
        }
        // Indices count the user's messages, including the system message the template set aside.
        #expect(throws: GenerationError.rolesMustAlternate(format: "gemma", index: 1, role: "assistant", expected: "user")) {
            try ChatFormat.gemma.render([.system("s"), .assistant("a")], addGenerationPrompt: true)
        }
    }

    @Test func mistralInstruct() throws {
        let f = ChatFormat.mistralInstruct
        #expect(try f.render([.user("Hi"), .assistant("Hello."), .user("Name a colour.")], addGenerationPrompt: true) ==
            "<s>[INST] Hi [/INST]Hello.</s>[INST] Name a colour. [/INST]")
        // No generation prompt in this template: both settings render the same.
        #expect(try f.render(userOnly, addGenerationPrompt: false) == "<s>[INST] What is 2+2? [/INST]")
        #expect(try f.render(userOnly, addGenerationPrompt: true) == "<s>[INST] What is 2+2? [/INST]")
        #expect(try f.render(padded, addGenerationPrompt: true) ==
            "<s>[INST]   Hello \n [/INST]\tHi there  </s>[INST] \u{1C}ok\u{3000} [/INST]")
    }

    @Test func mistralRejectsSystemAndBadOrder() {
        #expect(throws: GenerationError.roleNotSupported(format: "mistral-instruct", index: 0, role: "system")) {
            try ChatFormat.mistralInstruct.render(systemMultiTurn, addGenerationPrompt: true)
        }
        #expect(throws: GenerationError.rolesMustAlternate(format: "mistral-instruct", index: 0, role: "assistant", expected: "user")) {
            try ChatFormat.mistralInstruct.render([.assistant("a")], addGenerationPrompt: true)
        }
    }

    @Test func endOfTurnClosesAssistantTurns() throws {
        for format in ChatFormat.allCases {
            let text = try format.render([.user("q"), .assistant("ANSWER"), .user("r")], addGenerationPrompt: false)
            #expect(text.contains("ANSWER" + format.endOfTurn), "\(format)")
        }
    }

    @Test func emptyConversationIsAnError() {
        for format in ChatFormat.allCases {
            #expect(throws: GenerationError.emptyConversation(format: format.rawValue)) {
                try format.render([], addGenerationPrompt: true)
            }
        }
    }

    @Test func formatNames() throws {
        #expect(try ChatFormat.named("llama3") == .llama3)
        #expect(throws: GenerationError.unknownChatFormat(name: "llama-3")) { try ChatFormat.named("llama-3") }
        #expect(GenerationError.unknownChatFormat(name: "x").description.contains("chatml-smollm, chatml, llama3, gemma, mistral-instruct"))
    }
}

@Suite struct ChatTemplateDetectionTests {
    @Test func publishedTemplatesAreRecognised() throws {
        let expected: [(String, ChatFormat)] = [
            ("chatml-smollm", .chatmlSmolLM), ("chatml", .chatml), ("llama3", .llama3),
            ("gemma2", .gemma), ("gemma3", .gemma), ("mistral-instruct", .mistralInstruct),
        ]
        for (file, format) in expected {
            #expect(try ChatFormat.detect(template: ChatFixtures.template(file)) == format, "\(file)")
        }
    }

    @Test func layoutDifferencesDoNotMatter() throws {
        // The same ChatML template with whitespace control, double quotes and line breaks.
        let reformatted = """
            {%- for message in messages -%}
              {{- "<|im_start|>" + message['role'] + "\\n" + message['content'] + "<|im_end|>" + "\\n" -}}
            {%- endfor -%}
            {%- if add_generation_prompt -%}
              {{- "<|im_start|>assistant\\n" -}}
            {%- endif -%}
            """
        #expect(try ChatFormat.detect(template: reformatted) == .chatml)
    }

    @Test func variantsThatRenderDifferentlyAreRejected() throws {
        // Llama 3.1 writes a dated system header: same markers as Llama 3, different output.
        let llama31 = try ChatFixtures.template("llama3")
            .replacingOccurrences(of: "{% set loop_messages = messages %}",
                                  with: "{% set date_string = \"26 Jul 2024\" %}{{ 'Cutting Knowledge Date: December 2023' }}{% set loop_messages = messages %}")
        do {
            _ = try ChatFormat.detect(template: llama31)
            Issue.record("a Llama 3.1 template was taken for Llama 3")
        } catch let GenerationError.unrecognisedTemplate(excerpt, family) {
            #expect(family == "Llama 3")
            #expect(excerpt.hasPrefix("{% set date_string = \"26 Jul 2024\" %}"))
            #expect(excerpt.hasSuffix("..."))
        }
        // A ChatML template with another default system message is not SmolLM's and not plain ChatML.
        let qwenLike = try ChatFixtures.template("chatml-smollm")
            .replacingOccurrences(of: ChatFormat.smolLMDefaultSystem, with: "You are a helpful assistant.")
        #expect(throws: GenerationError.self) { try ChatFormat.detect(template: qwenLike) }
        // Mistral v0.1 put a space after each answer.
        let mistralV01 = try ChatFixtures.template("mistral-instruct")
            .replacingOccurrences(of: "message['content'] + eos_token}}", with: "message['content'] + eos_token + ' ' }}")
        #expect(throws: GenerationError.self) { try ChatFormat.detect(template: mistralV01) }
    }

    @Test func unknownTemplateNamesTheOverride() {
        let template = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        do {
            _ = try ChatFormat.detect(template: template)
            Issue.record("an unknown template was accepted")
        } catch let error as GenerationError {
            #expect(error == .unrecognisedTemplate(excerpt: "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\\n{% endfo...", family: nil))
            // The library names the remedy in its own terms; the command line adds its flag.
            #expect(error.description.contains("Name a chat format") && !error.description.contains("--"))
            #expect(error.description.contains(ChatFormat.knownNames))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

@Suite struct ChatMessagesFileTests {
    private func parse(_ json: String) throws -> [ChatMessage] {
        try ChatMessage.parse(messagesJSON: Data(json.utf8), source: "chat.json")
    }

    @Test func arrayAndObjectForms() throws {
        let array = try parse(#"[{"role": "system", "content": "s"}, {"role": "user", "content": "héllo\n"}]"#)
        #expect(array == [.system("s"), .user("héllo\n")])
        let object = try parse(#"{"messages": [{"content": "a", "role": "assistant"}]}"#)
        #expect(object == [.assistant("a")])
    }

    /// A messages file is a small format: past `StrictJSON.maxSmallDocumentValues` values it is
    /// refused before Foundation builds its tree (3 values a message, and the array).
    @Test func valuesAreCapped() throws {
        let message = #"{"role": "user", "content": ""}"#
        let most = (StrictJSON.maxSmallDocumentValues - 1) / 3
        #expect(try parse("[" + Array(repeating: message, count: most).joined(separator: ",") + "]").count == most)
        #expect(throws: JSONSyntaxError.self) {
            try parse("[" + Array(repeating: message, count: most + 1).joined(separator: ",") + "]")
        }
    }

    @Test func malformedFilesNameFileAndIndex() {
        #expect(throws: GenerationError.unknownRole(path: "chat.json", index: 1, role: "tool")) {
            try parse(#"[{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]"#)
        }
        #expect(throws: GenerationError.messageMissingField(path: "chat.json", index: 0, field: "content")) {
            try parse(#"[{"role": "user"}]"#)
        }
        #expect(throws: GenerationError.messageFieldType(path: "chat.json", index: 0, field: "content", found: "a number")) {
            try parse(#"[{"role": "user", "content": 3}]"#)
        }
        #expect(throws: GenerationError.messageFieldType(path: "chat.json", index: 0, field: "role", found: "a boolean")) {
            try parse(#"[{"role": true, "content": "x"}]"#)
        }
        #expect(throws: GenerationError.messageUnknownField(path: "chat.json", index: 0, field: "name")) {
            try parse(#"[{"role": "user", "content": "x", "name": "bob"}]"#)
        }
        #expect(throws: GenerationError.messageNotObject(path: "chat.json", index: 0, found: "a string")) {
            try parse(#"["hello"]"#)
        }
        #expect(throws: GenerationError.messagesFileShape(path: "chat.json", found: "a number")) {
            try parse("42")
        }
        #expect(throws: GenerationError.messagesFileEmpty(path: "chat.json")) { try parse(#"{"messages": []}"#) }
        #expect(throws: GenerationError.messagesFileShape(path: "chat.json", found: "\"messages\" holding a string")) {
            try parse(#"{"messages": "hi"}"#)
        }
        #expect(throws: GenerationError.messagesFileShape(path: "chat.json", found: "an object without a \"messages\" key")) {
            try parse(#"{"msgs": []}"#)
        }
    }

    @Test func invalidJSONNamesTheFile() {
        do {
            _ = try parse(#"[{"role": "user", "content": "x"}"#)
            Issue.record("invalid JSON was accepted")
        } catch {
            // Strict RFC 8259 (JSONSyntaxError): the file, line:column and byte offset where the text is cut.
            #expect("\(error)" == "chat.json:1:34: not valid JSON (byte offset 33): expected ',' or ']', found the end of the text")
        }
    }

    @Test func unreadableFilesAreNamed() {
        #expect(throws: GenerationError.messagesFileUnreadable(path: "/no/such/chat.json", reason: "no such file")) {
            try ChatMessage.load(messagesFile: "/no/such/chat.json")
        }
        let dir = FileManager.default.temporaryDirectory.path
        #expect(throws: GenerationError.messagesFileUnreadable(path: dir, reason: "it is a directory")) {
            try ChatMessage.load(messagesFile: dir)
        }
    }

    @Test func codableUsesLowercaseRoles() throws {
        let data = try JSONEncoder().encode(ChatMessage.user("x"))
        #expect(String(decoding: data, as: UTF8.self).contains(#""role":"user""#))
        #expect(try JSONDecoder().decode(ChatMessage.self, from: data) == .user("x"))
        #expect(throws: GenerationError.unknownRole(path: nil, index: nil, role: "bot")) {
            try JSONDecoder().decode(ChatMessage.self, from: Data(#"{"role": "bot", "content": "x"}"#.utf8))
        }
    }
}
