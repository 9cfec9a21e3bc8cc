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

    /// The tiny llama of Fuzz/corpus/gguf/tiny-llama.gguf (scripts/lib/fuzz-seeds.py), without its
    /// vocabulary: the base every LoRA input is checked against and applied to.
    static let loraBase: GGUFFile = {
        let (width, ffn, heads, kvHeads, headDim, vocab) = (8, 16, 2, 1, 4, 8)
        func values(_ n: Int, _ k: Int) -> [Float] { (0..<n).map { Float(($0 * 7 + k * 13) % 17 - 8) / 16 } }
        var w = GGUFWriter(name: "tiny-llama.gguf")
        let kv: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(1)),
            ("llama.context_length", .uint32(16)), ("llama.embedding_length", .uint32(UInt32(width))),
            ("llama.feed_forward_length", .uint32(UInt32(ffn))), ("llama.attention.head_count", .uint32(UInt32(heads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ("llama.rope.dimension_count", .uint32(UInt32(headDim))), ("llama.rope.freq_base", .float32(10000)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        let tensors: [(String, [Int], [Float])] = [
            ("token_embd.weight", [width, vocab], values(width * vocab, 1)),
            ("output.weight", [width, vocab], values(width * vocab, 2)),
            ("output_norm.weight", [width], [Float](repeating: 1, count: width)),
            ("blk.0.attn_norm.weight", [width], [Float](repeating: 1, count: width)),
            ("blk.0.ffn_norm.weight", [width], [Float](repeating: 1, count: width)),
            ("blk.0.attn_q.weight", [width, heads * headDim], values(width * heads * headDim, 3)),
            ("blk.0.attn_k.weight", [width, kvHeads * headDim], values(width * kvHeads * headDim, 4)),
            ("blk.0.attn_v.weight", [width, kvHeads * headDim], values(width * kvHeads * headDim, 5)),
            ("blk.0.attn_output.weight", [heads * headDim, width], values(width * heads * headDim, 6)),
            ("blk.0.ffn_gate.weight", [width, ffn], values(width * ffn, 7)),
            ("blk.0.ffn_up.weight", [width, ffn], values(width * ffn, 8)),
            ("blk.0.ffn_down.weight", [ffn, width], values(width * ffn, 9)),
        ]
        do {
            for (k, v) in kv { try w.set(k, v) }
            for (name, shape, floats) in tensors { try w.addTensor(name: name, shape: shape, floats: floats) }
            return try GGUFFile(bytes: w.bytes(), name: "tiny-llama.gguf")
        } catch {
            preconditionFailure("the fuzz base model is ours and well formed: \(error)")
        }
    }()

    static func lora(_ bytes: [UInt8]) throws -> FuzzOutcome {
        let adapter = try LoRAAdapterFile(try GGUFFile(bytes: bytes, name: "input.gguf"))
        // Twice at different scales: adapters add up, and a scale of 0 must be harmless.
        let updates = try LoRAUpdates(adapters: [(adapter, 1), (adapter, 0)], base: loraBase)
        let model = try LlamaModel(gguf: loraBase, pool: pool, adapters: updates)
        let logits = try model.makeSession(capacity: 2).forward([1, 2], logits: .all)
        guard logits.count == 2 * model.info.vocabularySize else {
            return .violation("forward returned \(logits.count) logits for 2 positions of a vocabulary of \(model.info.vocabularySize)")
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
