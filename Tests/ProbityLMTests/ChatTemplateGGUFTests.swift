// Choosing a chat format from a GGUF: the default model's template, tiny in-memory GGUFs, overrides.

import Foundation
import Testing
import ProbityFormats
import ProbityLM
import ProbityTestSupport

/// A GGUF with only the given metadata, in memory, written by the project's GGUF writer.
private func tinyGGUF(_ metadata: [(String, GGUFValue)], name: String = "tiny.gguf") throws -> GGUFFile {
    var writer = GGUFWriter(name: name)
    for (key, value) in metadata { try writer.set(key, value) }
    return try GGUFFile(bytes: writer.bytes(), name: name)
}

@Suite struct ChatTemplateGGUFTests {
    @Test func templateIsDetected() throws {
        let gguf = try tinyGGUF([(GGUFKey.chatTemplate, .string(ChatFixtures.template("llama3")))])
        #expect(try ChatTemplate.format(for: gguf, override: nil) == .llama3)
    }

    @Test func overrideWinsAndIsChecked() throws {
        let gguf = try tinyGGUF([(GGUFKey.chatTemplate, .string(ChatFixtures.template("llama3")))])
        #expect(try ChatTemplate.format(for: gguf, override: "gemma") == .gemma)
        #expect(throws: GenerationError.unknownChatFormat(name: "vicuna")) {
            try ChatTemplate.format(for: gguf, override: "vicuna")
        }
    }

    @Test func modelWithoutTemplateSuggestsOverride() throws {
        let gguf = try tinyGGUF([(GGUFKey.architecture, .string("llama"))], name: "base.gguf")
        #expect(throws: GenerationError.modelHasNoTemplate(path: "base.gguf")) {
            try ChatTemplate.format(for: gguf, override: nil)
        }
        #expect(GenerationError.modelHasNoTemplate(path: "base.gguf").description.contains("name a chat format"))
        // An override makes a template unnecessary.
        #expect(try ChatTemplate.format(for: gguf, override: "chatml") == .chatml)
    }

    @Test func templateOfWrongTypeIsNamed() throws {
        let gguf = try tinyGGUF([(GGUFKey.chatTemplate, .uint32(7))], name: "odd.gguf")
        do {
            _ = try ChatTemplate.format(for: gguf, override: nil)
            Issue.record("a non-string template was accepted")
        } catch let FormatError.wrongValueType(path, key, expected, _) {
            #expect(path == "odd.gguf" && key == GGUFKey.chatTemplate && expected == "a string")
        }
    }
}

@Suite struct ChatTemplateDefaultModelTests {
    @Test func defaultModelIsSmolLMChatML() throws {
        let gguf = try GGUFFile(path: TestData.defaultModelPath())
        #expect(try ChatTemplate.format(for: gguf, override: nil) == .chatmlSmolLM)
        // The fixture the other tests use is the model's own template, byte for byte.
        #expect(try gguf.requiredString(GGUFKey.chatTemplate) == ChatFixtures.template("chatml-smollm"))
    }
}
