// Choosing a chat format from a GGUF: the default model's template, tiny in-memory GGUFs, overrides.

import Foundation
import Testing
import ProbityFormats
import ProbityLM

/// A minimal GGUF v3 file in memory: no tensors, string or u32 metadata only.
enum TinyGGUF {
    enum Value { case string(String), u32(UInt32) }

    static func bytes(_ metadata: [(String, Value)]) -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        u32(3)
        u64(0)
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            str(key)
            switch value {
            case let .string(s): u32(8); str(s)
            case let .u32(v): u32(4); u32(v)
            }
        }
        return out
    }

    static func file(_ metadata: [(String, Value)], name: String = "tiny.gguf") throws -> GGUFFile {
        try GGUFFile(bytes: bytes(metadata), name: name)
    }
}

@Suite struct ChatTemplateGGUFTests {
    @Test func templateIsDetected() throws {
        let gguf = try TinyGGUF.file([(GGUFKey.chatTemplate, .string(Fixtures.template("llama3")))])
        #expect(try ChatTemplate.format(for: gguf, override: nil) == .llama3)
    }

    @Test func overrideWinsAndIsChecked() throws {
        let gguf = try TinyGGUF.file([(GGUFKey.chatTemplate, .string(Fixtures.template("llama3")))])
        #expect(try ChatTemplate.format(for: gguf, override: "gemma") == .gemma)
        #expect(throws: GenerationError.unknownChatFormat(name: "vicuna")) {
            try ChatTemplate.format(for: gguf, override: "vicuna")
        }
    }

    @Test func modelWithoutTemplateSuggestsOverride() throws {
        let gguf = try TinyGGUF.file([("general.architecture", .string("llama"))], name: "base.gguf")
        #expect(throws: GenerationError.modelHasNoTemplate(path: "base.gguf")) {
            try ChatTemplate.format(for: gguf, override: nil)
        }
        #expect(GenerationError.modelHasNoTemplate(path: "base.gguf").description.contains("--chat-format"))
        // An override makes a template unnecessary.
        #expect(try ChatTemplate.format(for: gguf, override: "chatml") == .chatml)
    }

    @Test func templateOfWrongTypeIsNamed() throws {
        let gguf = try TinyGGUF.file([(GGUFKey.chatTemplate, .u32(7))], name: "odd.gguf")
        do {
            _ = try ChatTemplate.format(for: gguf, override: nil)
            Issue.record("a non-string template was accepted")
        } catch let FormatError.wrongValueType(path, key, expected, _) {
            #expect(path == "odd.gguf" && key == GGUFKey.chatTemplate && expected == "a string")
        }
    }
}

@Suite(.enabled(if: FileManager.default.fileExists(atPath: ModelLocator.defaultModelPath),
                "default model not fetched (run scripts/setup)"))
struct ChatTemplateDefaultModelTests {
    @Test func defaultModelIsSmolLMChatML() throws {
        let gguf = try GGUFFile(path: ModelLocator.resolve("default"))
        #expect(try ChatTemplate.format(for: gguf, override: nil) == .chatmlSmolLM)
        // The fixture the other tests use is the model's own template, byte for byte.
        #expect(try gguf.requiredString(GGUFKey.chatTemplate) == Fixtures.template("chatml-smollm"))
    }
}
