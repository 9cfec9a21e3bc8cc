// Feature statistics over corpora: documents cut into chat-formatted windows (as for SAE
// training), each run only as far as the SAE's hook point, its non-special positions encoded with
// one sgemm and added to FeatureStatistics (frequency, max activation, top contexts).

import Foundation
import ProbityFeatures
import ProbityLM

/// What `probity features stats` scans.
public struct FeatureScanRequest: Sendable {
    public var corpora: [String]
    public var split: CorpusSplit
    /// Positions (non-special tokens) to scan; the last window is cut so exactly this many are
    /// scanned unless the corpora run out first.
    public var tokens: Int
    /// Tokens per model window.
    public var window = 256
    public var options = FeatureStatisticsOptions()

    public init(corpora: [String], split: CorpusSplit, tokens: Int) {
        self.corpora = corpora
        self.split = split
        self.tokens = tokens
    }

    /// Checks the arguments that need neither the model nor the corpora.
    public func validate() throws {
        guard !corpora.isEmpty else { throw TrainingError.badArgument(name: "corpora", expected: "at least one file", found: "none") }
        guard tokens > 0 else { throw TrainingError.badArgument(name: "tokens", expected: "a positive number", found: "\(tokens)") }
        guard window >= 2 else { throw TrainingError.badArgument(name: "window", expected: "at least 2 tokens", found: "\(window)") }
        guard options.contextsPerLatent >= 1 && options.contextsPerLatent <= 1000 else {
            throw TrainingError.badArgument(name: "contexts per latent", expected: "1 to 1000", found: "\(options.contextsPerLatent)")
        }
        guard options.before >= 0 && options.before <= 256 else {
            throw TrainingError.badArgument(name: "tokens before", expected: "0 to 256 tokens", found: "\(options.before)")
        }
        guard options.after >= 0 && options.after <= 256 else {
            throw TrainingError.badArgument(name: "tokens after", expected: "0 to 256 tokens", found: "\(options.after)")
        }
    }
}

/// Progress of a scan, for a status line.
public struct FeatureScanProgress: Sendable {
    public var positions: Int
    public var target: Int
    public var seconds: Double
}

public enum FeatureScan {
    /// Scans `request.corpora` with `sae` at `point` and returns the statistics and the seconds spent.
    /// Documents are counted in file order across all splits (a context's `document`), so an index
    /// means the same document whichever split was scanned.
    public static func run(_ request: FeatureScanRequest, sae: SparseAutoencoder, model: any LanguageModel,
                           tokenizer: Tokenizer, point: HookPoint, chatFormat: ChatFormat?,
                           progress: (FeatureScanProgress) -> Void = { _ in }) throws -> (FeatureStatistics, Double) {
        try request.validate()
        let corpora = try request.corpora.map { try Corpus(path: $0) }
        try model.info.validate(point)
        guard sae.dIn == model.info.width else {
            throw FeatureError.widthMismatch(pack: "SAE", dIn: sae.dIn, modelWidth: model.info.width)
        }
        var stats = FeatureStatistics(dSAE: sae.dSAE, options: request.options)
        let collector = try ActivationCollector(model: model, tokenizer: tokenizer, point: point, context: request.window)
        let start = Date()
        var lastReport = start
        var rows: [Float] = []
        for corpus in corpora {
            let windows = WindowSource(corpora: [corpus], split: request.split, tokenizer: tokenizer, chatFormat: chatFormat,
                                       context: request.window)
            let source = URL(fileURLWithPath: corpus.path).lastPathComponent
            var document = -1
            try corpus.forEachDocument(split: .all) { doc in
                document += 1
                switch request.split {
                case .all: break
                case .train: if doc.isHeldOut { return true }
                case .heldOut: if !doc.isHeldOut { return true }
                }
                for var window in try windows.windows(doc) {
                    let remaining = request.tokens - stats.positions
                    var positions = window.indices.filter { !tokenizer.isSpecial(window[$0]) }
                    if positions.count > remaining {
                        positions.removeLast(positions.count - remaining)
                        window.removeLast(window.count - 1 - (positions.last ?? 0))
                    }
                    if positions.isEmpty { continue }
                    rows.removeAll(keepingCapacity: true)
                    let count = try collector.collect(window, into: &rows)
                    precondition(count == positions.count, "collector and scan disagree on special tokens")
                    let encoding = rows.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: count) }
                    try stats.add(encoding, rows: positions, window: window, source: source, document: document, tokenizer: tokenizer)
                    if Date().timeIntervalSince(lastReport) >= 10 {
                        lastReport = Date()
                        progress(FeatureScanProgress(positions: stats.positions, target: request.tokens,
                                                     seconds: lastReport.timeIntervalSince(start)))
                    }
                    if stats.positions >= request.tokens { return false }
                }
                return true
            }
            if stats.positions >= request.tokens { break }
        }
        return (stats, Date().timeIntervalSince(start))
    }
}
