// The body of each fuzz target: the real reader on the input, then what a caller does next with
// what it read, so a file that parses but breaks a later step is found too.

import Foundation
import ProbityAudit
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityRules
import ProbityTensor

/// A tokenizer shared between inputs (`Tokenizer` is immutable and thread-safe).
final class TokenizerBox: Sendable {
    let tokenizer: Tokenizer
    init(_ tokenizer: Tokenizer) { self.tokenizer = tokenizer }
    static func load(_ path: String) throws -> TokenizerBox { TokenizerBox(try Tokenizer(gguf: try GGUFFile(path: path))) }
}

enum FuzzReaders {
    /// SmolLM2-135M's shape: what rule files and control vectors are checked against.
    static let model = ModelInfo(architecture: "llama", blockCount: 30, width: 576, vocabularySize: 49152, contextLength: 8192)
    static let pool = ThreadPool(threads: 1)

    static func gguf(_ bytes: [UInt8]) throws -> FuzzOutcome {
        let file = try GGUFFile(bytes: bytes, name: "input.gguf")
        for key in file.metadataKeys { _ = file.value(key)?.summary() }
        for t in file.tensors where file.data(for: t).count != t.byteCount {
            return .violation("tensor '\(t.name)': data view of \(file.data(for: t).count) bytes, info says \(t.byteCount)")
        }
        // A vocabulary, when the file has one, must tokenize and detokenize without trapping.
        if let tokenizer = try? Tokenizer(gguf: file) {
            let ids = tokenizer.encode("Hello, world! <|im_start|> 東京 🚀", addSpecial: true, parseSpecial: true)
            _ = try? tokenizer.decode(ids)
            for id in 0..<min(tokenizer.vocabulary.tokens.count, 64) { _ = try? tokenizer.pieceBytes(id) }
        }
        // The model it declares: loaded, and one token run through it when the file is a whole model.
        let model = try ModelRegistry.load(file, pool: pool)
        let session = try model.makeSession(capacity: 2)
        let logits = try session.forward([0])
        guard logits.count == model.info.vocabularySize else {
            return .violation("forward returned \(logits.count) logits for a vocabulary of \(model.info.vocabularySize)")
        }
        return .accepted
    }

    static func controlVector(_ bytes: [UInt8], _ context: FuzzContext) throws -> FuzzOutcome {
        let path = try context.file("control.gguf", bytes)
        let vector = try ControlVector.load(path: path)
        try vector.validate(for: model, path: path)
        for (layer, values) in vector.directions where values.count != vector.width {
            return .violation("direction \(layer) has \(values.count) values, the vector's width is \(vector.width)")
        }
        return .accepted
    }

    static func safetensors(_ bytes: [UInt8]) throws -> FuzzOutcome {
        let file = try SafeTensorsFile(bytes: bytes, name: "input.safetensors")
        for t in file.tensors {
            guard file.data(for: t).count == t.byteCount else {
                return .violation("tensor '\(t.name)': data view of \(file.data(for: t).count) bytes, info says \(t.byteCount)")
            }
            guard let floats = try? file.floats(for: t) else { continue }
            guard floats.count == t.elementCount else {
                return .violation("tensor '\(t.name)': \(floats.count) floats for \(t.elementCount) elements")
            }
        }
        return .accepted
    }

    static func saeConfig(_ bytes: [UInt8]) throws -> FuzzOutcome {
        _ = try SAEConfig.parse(Data(bytes), path: "cfg.json")
        return .accepted
    }

    static func pack(_ bytes: [UInt8], _ context: FuzzContext) throws -> FuzzOutcome {
        let dir = context.scratch + "/pack"
        if let packs = context.packs, !FileManager.default.fileExists(atPath: dir + "/directions.safetensors") {
            // The directions pack's weights and labels, for a pack.json that names them.
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for name in ["directions.safetensors", "labels.json"] {
                let data = try Data(contentsOf: URL(fileURLWithPath: packs + "/caa-toy/" + name))
                _ = try context.file("pack/" + name, [UInt8](data))
            }
        }
        _ = try context.file("pack/pack.json", bytes)
        let pack = try FeaturePack.load(path: dir)
        _ = try pack.checkCompatibility(model: model, modelPath: "model.gguf", modelName: "SmolLM2-135M-Instruct",
                                        allowModelMismatch: true)
        return .accepted
    }

    static func labels(_ bytes: [UInt8], _ context: FuzzContext) throws -> FuzzOutcome {
        let labels = try FeatureLabels.load(path: try context.file("labels.json", bytes))
        // What was read writes back and reads again the same.
        let again = try context.file("labels-again.json", [UInt8](labels.encoded()))
        do { _ = try FeatureLabels.load(path: again) } catch {
            return .violation("labels read from the input do not read back after writing: \(error)")
        }
        return .accepted
    }

    static func rules(_ bytes: [UInt8], _ context: FuzzContext) throws -> FuzzOutcome {
        if let packs = context.packs, !FileManager.default.fileExists(atPath: context.scratch + "/packs") {
            // Rule files name packs as ../packs/<name>, as the fixtures do.
            try FileManager.default.createSymbolicLink(atPath: context.scratch + "/packs", withDestinationPath: packs)
        }
        let path = try context.file("rules/input.yaml", bytes)
        let compiled = try CompiledRules.compile(files: [path], model: model, modelPath: context.scratch + "/model.gguf",
                                                 modelName: "SmolLM2-135M-Instruct")
        _ = try compiled.makeRun(steered: true)
        return .accepted
    }

    static func suite(_ bytes: [UInt8], _ context: FuzzContext) throws -> FuzzOutcome {
        // Suites name rule files relative to themselves, as `../rules/*.yaml` (what the seeds use).
        if !FileManager.default.fileExists(atPath: context.scratch + "/rules/suite-rules.yaml") {
            _ = try context.file("rules/suite-rules.yaml", Array("schema_version: 1\nrules: []\n".utf8))
        }
        _ = try AuditSuite.load(path: try context.file("suite/suite.yaml", bytes))
        return .accepted
    }

    static func chatMessages(_ bytes: [UInt8]) throws -> FuzzOutcome {
        let messages = try ChatMessage.parse(messagesJSON: Data(bytes), source: "messages.json")
        for format in ChatFormat.allCases { _ = try? format.renderChat(messages, addGenerationPrompt: true) }
        return .accepted
    }

    static func report(_ bytes: [UInt8]) throws -> FuzzOutcome {
        let report = try AuditReport.decode(Data(bytes), path: "report.json")
        // A report Probity accepts, it must be able to write and read again.
        let written = try report.json()
        do { _ = try AuditReport.decode(written, path: "report.json (written)") } catch {
            return .violation("the report does not read back after writing: \(error)")
        }
        _ = try? AuditReport.merge([(path: "a.json", report: report)])
        _ = try? AuditReport.merge([(path: "a.json", report: report), (path: "b.json", report: report)])
        return .accepted
    }

    /// Any text, encoded without special-token parsing, must decode to itself: both vocabularies
    /// cover every byte (qwen2 byte-level, llama-spm by byte fallback). The one exception is
    /// SentencePiece's space marker U+2581, which stands for a space in every piece: a text's own
    /// U+2581 comes back as a space, as in llama.cpp.
    static func roundTrip(_ bytes: [UInt8], _ box: TokenizerBox) throws -> FuzzOutcome {
        let tokenizer = box.tokenizer
        let text = String(decoding: bytes, as: UTF8.self)
        let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let decoded = try tokenizer.decode(ids)
        var expected = Array(text.utf8)
        if tokenizer.vocabulary.model == .sentencePiece {
            expected = Array(String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })).utf8)
        }
        // Bytes, not String ==, which would call canonically equivalent texts equal.
        guard Array(decoded.utf8) == expected else {
            return .violation("round trip changed the text: \(Array(text.utf8)) became \(Array(decoded.utf8)) via \(ids)")
        }
        // With specials parsed, any split must still decode.
        _ = try tokenizer.decode(tokenizer.encode(text, addSpecial: true, parseSpecial: true))
        return .accepted
    }

    static func npy(_ bytes: [UInt8]) throws -> FuzzOutcome {
        let array = try NPY.decode(bytes: bytes, name: "input.npy")
        let count = array.shape.reduce(1, *)
        guard array.values.count == count else {
            return .violation("\(array.values.count) values for shape \(array.shape)")
        }
        return .accepted
    }
}
