// A whole SAE training run on a model: stream activations from corpora, train a TopK SAE,
// checkpoint at buffer boundaries, resume, report progress, and write the pack.

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityTensor

/// What `probity sae train` asks for.
public struct SAETrainingRequest: Sendable {
    public var point: HookPoint
    public var corpora: [String]
    public var latents: Int
    public var k: Int
    public var tokens: Int
    public var out: String
    public var resume = false
    public var batchSize = 4096
    public var context = 256
    /// Rows per shuffling buffer.
    public var bufferRows = 65536
    public var learningRate: Float = 2e-4
    public var seed: UInt64 = 0
    /// Checkpoint directory (default: OUT/checkpoint).
    public var checkpoint: String?
    /// Save a checkpoint every this many buffers.
    public var checkpointEvery = 1
    /// Dead-latent window in tokens (0: 10M or a quarter of the run, whichever is smaller).
    public var deadAfter = 0
    public var chatFormat: String?
    /// How the pack stores its weights (training is always in float32).
    public var dtype: SafeTensorDType = .f32
    /// Stop (with a checkpoint) after this many buffers in this invocation; 0 means no limit.
    /// For testing that an interrupted run resumes to the same result.
    public var stopAfterBuffers = 0

    public init(point: HookPoint, corpora: [String], latents: Int, k: Int, tokens: Int, out: String) {
        self.point = point
        self.corpora = corpora
        self.latents = latents
        self.k = k
        self.tokens = tokens
        self.out = out
    }

    public var checkpointDirectory: String { checkpoint ?? out + "/checkpoint" }

    /// Checks the arguments that do not need the model.
    public func validate() throws {
        guard latents > 0 else { throw TrainingError.badArgument(name: "latents", expected: "a positive number", found: "\(latents)") }
        guard k > 0 && k <= latents else { throw TrainingError.badArgument(name: "k", expected: "1 to the number of latents (\(latents))", found: "\(k)") }
        guard batchSize > 0 else { throw TrainingError.badArgument(name: "batch size", expected: "a positive number", found: "\(batchSize)") }
        guard tokens >= batchSize else {
            throw TrainingError.badArgument(name: "tokens", expected: "at least one batch (\(batchSize))", found: "\(tokens)")
        }
        guard context >= 2 else { throw TrainingError.badArgument(name: "context", expected: "at least 2 tokens", found: "\(context)") }
        guard !corpora.isEmpty else { throw TrainingError.badArgument(name: "corpora", expected: "at least one file", found: "none") }
        guard [.f32, .f16, .bf16].contains(dtype) else {
            throw TrainingError.badArgument(name: "weight type", expected: "f32, f16 or bf16", found: dtype.rawValue)
        }
        guard checkpointEvery > 0 else {
            throw TrainingError.badArgument(name: "checkpoint every", expected: "a positive number of buffers", found: "\(checkpointEvery)")
        }
    }
}

public enum SAETrainingRun {
    /// Runs the request on `loaded`; `progress` receives one line per report. Returns metrics.json's content.
    @discardableResult
    public static func run(_ request: SAETrainingRequest, loaded: LoadedModel,
                           progress: (String) -> Void) throws -> [String: Any] {
        try request.validate()
        let corpora = try request.corpora.map { try Corpus(path: $0) }
        let info = loaded.model.info
        try info.validate(request.point)
        let chatFormat: ChatFormat? = try? ChatTemplate.format(for: loaded.file, override: request.chatFormat)
        if let name = request.chatFormat { _ = try ChatFormat.named(name) }
        let modelName = (try? loaded.file.optionalString("general.name")) ?? nil ?? URL(fileURLWithPath: loaded.path).lastPathComponent

        let steps = request.tokens / request.batchSize
        var options = TopKTrainingOptions(dIn: info.width, latents: request.latents, k: request.k, totalSteps: steps)
        options.batchSize = request.batchSize
        options.learningRate = request.learningRate
        options.seed = request.seed
        options.warmupSteps = min(1000, max(1, steps / 20))
        options.deadAfterTokens = request.deadAfter > 0 ? request.deadAfter : min(10_000_000, max(request.batchSize, request.tokens / 4))
        try options.validate()
        let runFacts = [
            "model": modelName, "hook": request.point.name, "corpora": request.corpora.joined(separator: ","),
            "context": "\(request.context)", "buffer_rows": "\(request.bufferRows)",
        ]

        let source = WindowSource(corpora: corpora, split: .train, tokenizer: loaded.tokenizer, chatFormat: chatFormat,
                                  context: request.context)
        let collector = try ActivationCollector(model: loaded.model, tokenizer: loaded.tokenizer, point: request.point,
                                                context: request.context)
        var trainer: TopKTrainer?
        var start = StreamPosition(documentsConsumed: 0, buffersFilled: 0)
        let ckpt = request.checkpointDirectory
        if request.resume && TrainingCheckpoint.exists(at: ckpt) {
            let (t, position) = try TrainingCheckpoint.load(from: ckpt, expecting: options, run: runFacts)
            trainer = t
            start = position
            progress("resuming from \(ckpt): step \(t.step)/\(steps), \(t.tokensSeen) tokens")
        }
        let batches = ShuffledBatches(source: source, collector: collector, batchSize: request.batchSize,
                                      bufferRows: request.bufferRows, seed: request.seed,
                                      documentsConsumed: start.documentsConsumed, buffersFilled: start.buffersFilled)
        var trainSeconds = 0.0
        var recent: [TopKStepStats] = []
        var buffersThisRun = 0
        var tokensAtStart = -1
        var stoppedEarly = false
        let threads = loaded.pool.threadCount
        let finished = trainer.map { $0.step >= steps } ?? false
        if !finished { try batches.run { rows in
            if trainer == nil {
                // Scale and b_dec from the first buffer (already shuffled), at most 16k rows.
                let sampleRows = min(rows.count / info.width, 16384)
                trainer = try TopKTrainer(options: options, sample: Array(rows[0..<(sampleRows * info.width)]), count: sampleRows)
            }
            guard let t = trainer else { return false }
            if tokensAtStart < 0 { tokensAtStart = t.tokensSeen }
            let count = rows.count / info.width / request.batchSize
            let lap = Date()
            // Training sgemms are large and the pool is idle meanwhile: OpenBLAS gets every core.
            t.blasThreads = threads
            rows.withUnsafeBufferPointer { p in
                for b in 0..<count where t.step < steps {
                    let stats = t.train(p.baseAddress! + b * request.batchSize * info.width, count: request.batchSize)
                    recent.append(stats)
                    if recent.count > 20 { recent.removeFirst() }
                }
            }
            trainSeconds += Date().timeIntervalSince(lap)
            buffersThisRun += 1
            let last = recent.last
            progress(String(format: "step %d/%d  tokens %d  collect %.0f tok/s  train %.0f tok/s  loss %.4f  fvu %.4f  l0 %.1f  dead %.4f  lr %.2e",
                            t.step, steps, t.tokensSeen,
                            Double(batches.collectedRows) / max(batches.collectSeconds, 1e-9),
                            Double(t.tokensSeen - tokensAtStart) / max(trainSeconds, 1e-9),
                            last?.mse ?? 0, last?.fvu ?? 0, last?.l0 ?? 0, t.deadFraction, Double(last?.learningRate ?? 0)))
            let position = StreamPosition(documentsConsumed: batches.documentsConsumed, buffersFilled: batches.buffersFilled)
            let done = t.step >= steps
            let stopNow = request.stopAfterBuffers > 0 && buffersThisRun >= request.stopAfterBuffers && !done
            if done || stopNow || buffersThisRun % request.checkpointEvery == 0 {
                try TrainingCheckpoint.save(t, stream: position, run: runFacts, to: ckpt)
            }
            if stopNow { stoppedEarly = true }
            return !done && !stopNow
        } }
        guard let t = trainer else { throw TrainingError.emptyCorpus(split: "training", paths: request.corpora) }
        if stoppedEarly {
            return ["stopped_at_step": t.step]
        }
        if t.step < steps {
            progress("corpora exhausted after \(t.step) of \(steps) steps (\(t.tokensSeen) tokens)")
        }
        let mean = { (f: (TopKStepStats) -> Double) in recent.isEmpty ? 0 : recent.map(f).reduce(0, +) / Double(recent.count) }
        let metrics: [String: Any] = [
            "steps": t.step, "tokens": t.tokensSeen, "latents": request.latents, "k": request.k, "d_in": info.width,
            "batch_size": request.batchSize, "learning_rate": Double(request.learningRate), "seed": Double(request.seed),
            "norm_scaling_factor": Double(t.scale),
            "final_mse": mean { $0.mse }, "final_fvu": mean { $0.fvu }, "final_l0": mean { $0.l0 },
            "final_aux_loss": mean { $0.auxLoss }, "dead_fraction": t.deadFraction,
            "dead_after_tokens": options.deadAfterTokens,
            "collect_tokens_per_second": Double(batches.collectedRows) / max(batches.collectSeconds, 1e-9),
            "train_tokens_per_second": trainSeconds > 0 ? Double(t.tokensSeen - max(tokensAtStart, 0)) / trainSeconds : 0,
            "note": "throughput counts this invocation only; averages are over the last 20 steps",
        ]
        let provenance: [String: Any] = [
            "method": "TopK SAE (Gao et al. 2024) trained by probity sae train",
            "corpora": request.corpora.map { URL(fileURLWithPath: $0).lastPathComponent },
            "split": "train (documents whose id hash is not 0 mod \(Corpus.heldOutModulus))",
            "context": request.context, "tokens": t.tokensSeen, "seed": Double(request.seed),
            "stored_dtype": request.dtype.rawValue,
        ]
        let sae = try t.makeSAE(hookName: request.point.name, modelName: modelName)
        try SAEPackWriter.write(sae, to: request.out, hookName: request.point.name, modelName: modelName,
                                modelSHA256: try SHA256.hex(file: loaded.path), contextSize: request.context,
                                datasets: request.corpora.map { URL(fileURLWithPath: $0).lastPathComponent }, dtype: request.dtype,
                                metrics: metrics, provenance: provenance)
        return metrics
    }
}
