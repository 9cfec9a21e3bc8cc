// Checkpoints of an SAE run (state.safetensors: weights and Adam moments; state.json: options,
// counters, stream position) and the finished SAE written in SAELens's layout as a feature pack
// (cfg.json, sae_weights.safetensors, metrics.json, pack.json).

import Foundation
import ProbityFeatures
import ProbityFormats

/// Where the stream stood at a checkpoint.
public struct StreamPosition: Sendable, Equatable, Codable {
    public var documentsConsumed: Int
    public var buffersFilled: Int

    public init(documentsConsumed: Int, buffersFilled: Int) {
        self.documentsConsumed = documentsConsumed
        self.buffersFilled = buffersFilled
    }
}

/// A saved run: enough to continue it exactly as if it had not stopped.
public enum TrainingCheckpoint {
    static let tensorsFile = "state.safetensors"
    static let stateFile = "state.json"

    struct State: Codable {
        var options: TopKTrainingOptions
        var step: Int
        var tokensSeen: Int
        var lastFired: [Int]
        var stream: StreamPosition
        /// Free-form facts of the run (model, hook, corpora) that a resume must match.
        var run: [String: String]
    }

    /// Whether `directory` holds a checkpoint.
    public static func exists(at directory: String) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/" + stateFile)
    }

    /// Writes the trainer's state; the JSON goes last, under a temporary name then renamed, so a
    /// crash mid-write leaves the previous checkpoint's JSON pointing at complete tensors or none.
    public static func save(_ trainer: TopKTrainer, stream: StreamPosition, run: [String: String], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var writer = SafeTensorsWriter(name: tensorsFile)
        for (name, shape, values) in trainer.stateTensors { try writer.addTensor(name: name, shape: shape, floats: values) }
        let tensorsPath = directory + "/" + tensorsFile
        try writer.write(to: tensorsPath + ".part")
        let state = State(options: trainer.options, step: trainer.step, tokensSeen: trainer.tokensSeen,
                          lastFired: trainer.lastFired, stream: stream, run: run)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(state)
        try json.write(to: URL(fileURLWithPath: directory + "/" + stateFile + ".part"))
        let fm = FileManager.default
        try? fm.removeItem(atPath: tensorsPath)
        try fm.moveItem(atPath: tensorsPath + ".part", toPath: tensorsPath)
        try? fm.removeItem(atPath: directory + "/" + stateFile)
        try fm.moveItem(atPath: directory + "/" + stateFile + ".part", toPath: directory + "/" + stateFile)
    }

    /// Loads a checkpoint, refusing one made with other options or for another run.
    public static func load(from directory: String, expecting options: TopKTrainingOptions,
                            run: [String: String]) throws -> (TopKTrainer, StreamPosition) {
        let statePath = directory + "/" + stateFile
        guard let data = try WholeFile.contents(statePath, what: "checkpoint state", limit: FileSizeLimits.smallJSON) else {
            throw TrainingError.badCheckpoint(path: directory, reason: "no \(stateFile)")
        }
        try StrictJSON.validate(data, path: statePath)
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: data) } catch {
            throw TrainingError.badCheckpoint(path: statePath, reason: "unreadable state: \(error.localizedDescription)")
        }
        if state.options != options {
            throw TrainingError.checkpointMismatch(path: directory, key: "options", checkpoint: describe(state.options),
                                                   requested: describe(options))
        }
        for key in run.keys.sorted() where state.run[key] != run[key] {
            throw TrainingError.checkpointMismatch(path: directory, key: key, checkpoint: state.run[key] ?? "(none)",
                                                   requested: run[key] ?? "(none)")
        }
        let file = try SafeTensorsFile(path: directory + "/" + tensorsFile)
        var tensors: [String: [Float]] = [:]
        for t in file.tensors where t.dtype == .f32 { tensors[t.name] = try file.floats(for: t) }
        let trainer = try TopKTrainer(options: options, tensors: tensors, step: state.step, tokensSeen: state.tokensSeen,
                                      lastFired: state.lastFired, path: directory)
        return (trainer, state.stream)
    }

    static func describe(_ o: TopKTrainingOptions) -> String {
        "latents \(o.latents), k \(o.k), batch \(o.batchSize), steps \(o.totalSteps), lr \(o.learningRate), seed \(o.seed)"
    }
}

/// Writes a trained SAE as a feature pack in SAELens's layout.
public enum SAEPackWriter {
    /// cfg.json in SAELens v6 form (TopK, `expected_average_only_in` with `norm_scaling_factor`),
    /// with the metadata SAELens's loader reads.
    public static func configJSON(_ sae: SparseAutoencoder, hookName: String, modelName: String,
                                  contextSize: Int, datasets: [String], dtype: SafeTensorDType = .f32) throws -> Data {
        let c = sae.config
        guard case .topK(let k) = c.architecture, case .expectedAverageOnlyIn(let s?) = c.normalization else {
            preconditionFailure("the trainer makes TopK SAEs with a norm scaling factor")
        }
        let cfg: [String: Any] = [
            "architecture": "topk",
            "d_in": c.dIn,
            "d_sae": c.dSAE,
            "k": k,
            "dtype": dtype == .f16 ? "float16" : dtype == .bf16 ? "bfloat16" : "float32",
            "device": "cpu",
            "apply_b_dec_to_input": c.applyBDecToInput,
            "normalize_activations": "expected_average_only_in",
            "norm_scaling_factor": Double(s),
            "reshape_activations": "none",
            "metadata": [
                "model_name": modelName,
                "hook_name": hookName,
                "hook_head_index": NSNull(),
                "prepend_bos": true,
                "context_size": contextSize,
                "dataset_path": datasets.joined(separator: ","),
                "sae_lens_training_version": NSNull(),
            ] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: cfg, options: [.sortedKeys, .prettyPrinted])
    }

    /// Writes cfg.json, sae_weights.safetensors (as `dtype`: F32, F16 or BF16), metrics.json and
    /// pack.json into `directory`; the manifest records the model by name and, when given, GGUF SHA-256.
    public static func write(_ sae: SparseAutoencoder, to directory: String, hookName: String, modelName: String,
                             modelSHA256: String? = nil, contextSize: Int, datasets: [String], dtype: SafeTensorDType = .f32,
                             metrics: [String: Any], provenance: [String: Any]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var writer = SafeTensorsWriter(name: SparseAutoencoder.weightsFileName)
        let d = sae.dIn, n = sae.dSAE
        try writer.addTensor(name: "W_enc", shape: [d, n], floats: sae.wEnc, as: dtype)
        try writer.addTensor(name: "b_enc", shape: [n], floats: sae.bEnc, as: dtype)
        try writer.addTensor(name: "W_dec", shape: [n, d], floats: sae.wDec, as: dtype)
        try writer.addTensor(name: "b_dec", shape: [d], floats: sae.bDec, as: dtype)
        try writer.write(to: directory + "/" + SparseAutoencoder.weightsFileName)
        try configJSON(sae, hookName: hookName, modelName: modelName, contextSize: contextSize, datasets: datasets, dtype: dtype)
            .write(to: URL(fileURLWithPath: directory + "/" + SparseAutoencoder.configFileName))
        try JSONSerialization.data(withJSONObject: metrics, options: [.sortedKeys, .prettyPrinted])
            .write(to: URL(fileURLWithPath: directory + "/metrics.json"))
        let provenanceJSON = String(decoding: try JSONSerialization.data(withJSONObject: provenance, options: [.sortedKeys]), as: UTF8.self)
        let name = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
        let manifest = PackManifest(name: name, kind: .sae, modelName: modelName, modelSHA256: modelSHA256, hook: hookName,
                                    labels: nil, provenanceJSON: provenanceJSON)
        try manifest.jsonData().write(to: URL(fileURLWithPath: directory + "/" + PackManifest.fileName))
    }
}
