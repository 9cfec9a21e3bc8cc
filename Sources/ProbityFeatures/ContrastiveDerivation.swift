// Contrastive activation addition (Rimsky et al., "Steering Llama 2 via Contrastive Activation
// Addition"): a steering direction as the mean difference of activations at one hook point between
// paired positive and negative prompts, at each prompt's last position, averaged over its positions,
// or averaged over a conversation's reply (the positions a response-scoped rule reads).

import Foundation
import ProbityLM

/// Deriving a steering direction from contrast pairs.
public enum ContrastiveDerivation {
    /// Which positions of a prompt stand for it.
    public enum Reduction: String, Sendable, CaseIterable {
        /// The last position (where the model is about to answer).
        case last
        /// The mean over all of the prompt's positions.
        case mean
        /// The mean over the positions of a conversation's last message (an assistant reply), the
        /// tokens a rule's `scope: response` reads.
        case reply
    }

    /// The activation representing each prompt at `point`.
    public static func representations(model: any LanguageModel, prompts: [[Int]], point: HookPoint,
                                       at reduction: Reduction) throws -> [[Float]] {
        try representations(model: model, prompts: raw(prompts), point: point, at: reduction)
    }

    /// The activation representing each prompt at `point`; `.reply` needs each prompt's reply
    /// positions (chat messages, `PromptSet.prompts`).
    public static func representations(model: any LanguageModel, prompts: [PromptSet.Prompt], point: HookPoint,
                                       at reduction: Reduction) throws -> [[Float]] {
        try model.info.validate(point)
        let width = model.info.width
        var out: [[Float]] = []
        for prompt in prompts {
            let tokens = prompt.tokens
            guard !tokens.isEmpty else { throw FeatureError.emptyPrompt }
            let rows: Range<Int>
            switch reduction {
            case .last: rows = (tokens.count - 1)..<tokens.count
            case .mean: rows = 0..<tokens.count
            case .reply:
                guard let reply = prompt.reply else { throw FeatureError.noReply(line: prompt.line) }
                rows = reply
            }
            var sum = [Double](repeating: 0, count: width)
            let hooks = HookSet()
            hooks.attach(at: point) { acts in
                for r in 0..<acts.count where rows.contains(acts.positions.lowerBound + r) {
                    let row = acts.values + r * acts.width
                    for j in 0..<width { sum[j] += Double(row[j]) }
                }
            }
            let session = try model.makeSession(capacity: tokens.count)
            // The last position the reduction reads: the pass stops at `point` and needs no more tokens.
            try session.forward(Array(tokens[..<rows.upperBound]), origins: nil, hooks: hooks, through: point)
            out.append(sum.map { Float($0 / Double(rows.count)) })
        }
        return out
    }

    /// mean_i (a(positive_i) − a(negative_i)): the CAA direction. Prompts pair up in order.
    public static func derive(model: any LanguageModel, positive: [[Int]], negative: [[Int]], point: HookPoint,
                              at reduction: Reduction) throws -> [Float] {
        try derive(model: model, positive: raw(positive), negative: raw(negative), point: point, at: reduction)
    }

    /// Token lists as prompts without reply positions, numbered from line 1.
    static func raw(_ prompts: [[Int]]) -> [PromptSet.Prompt] {
        prompts.enumerated().map { PromptSet.Prompt(tokens: $1, reply: nil, line: $0 + 1) }
    }

    /// The CAA direction from prompts that may carry reply positions (`PromptSet.prompts`).
    public static func derive(model: any LanguageModel, positive: [PromptSet.Prompt], negative: [PromptSet.Prompt],
                              point: HookPoint, at reduction: Reduction) throws -> [Float] {
        guard positive.count == negative.count, !positive.isEmpty else {
            throw FeatureError.pairCount(positive: positive.count, negative: negative.count)
        }
        let pos = try representations(model: model, prompts: positive, point: point, at: reduction)
        let neg = try representations(model: model, prompts: negative, point: point, at: reduction)
        return meanDifference(pos, neg)
    }

    /// mean_i (a_i − b_i), accumulated in float64.
    public static func meanDifference(_ a: [[Float]], _ b: [[Float]]) -> [Float] {
        guard let width = a.first?.count else { return [] }
        var acc = [Double](repeating: 0, count: width)
        for (x, y) in zip(a, b) {
            for j in 0..<width { acc[j] += Double(x[j]) - Double(y[j]) }
        }
        return acc.map { Float($0 / Double(a.count)) }
    }

    /// Writes a directions pack holding one direction, with its provenance: the inputs' SHA-256,
    /// the model, the hook, the reduction, the counts, and the fingerprints of the prompts that
    /// derived it (`items`: every positive and negative prompt); `adapters` are the LoRA adapters
    /// the model ran with (file name, SHA-256 and scale of each), recorded when there are any.
    public static func writePack(direction: Direction, to directory: String, modelName: String?, modelPath: String,
                                 adapters: [(path: String, scale: Float)] = [],
                                 positivePath: String, negativePath: String, pairs: Int, reduction: Reduction,
                                 items: DerivationItems) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FeaturePack.writeDirections([direction], to: directory + "/directions.safetensors")
        let modelSHA = try SHA256.hex(file: modelPath)
        var provenance: [String: Any] = [
            "method": "contrastive activation addition (mean difference)",
            "hook": direction.point.name,
            "at": reduction.rawValue,
            "pairs": pairs,
            "positive": ["file": URL(fileURLWithPath: positivePath).lastPathComponent, "sha256": try SHA256.hex(file: positivePath)],
            "negative": ["file": URL(fileURLWithPath: negativePath).lastPathComponent, "sha256": try SHA256.hex(file: negativePath)],
            "model": ["name": modelName as Any? ?? NSNull(), "gguf_sha256": modelSHA] as [String: Any],
            "norm": Double(direction.vector.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()),
        ]
        if !adapters.isEmpty {
            provenance["adapters"] = try adapters.map { a -> [String: Any] in
                ["file": URL(fileURLWithPath: a.path).lastPathComponent, "sha256": try SHA256.hex(file: a.path), "scale": Double(a.scale)]
            }
        }
        let provenanceJSON = String(decoding: try JSONSerialization.data(withJSONObject: provenance, options: [.sortedKeys]), as: UTF8.self)
        let manifest = PackManifest(name: direction.name, kind: .directions, modelName: modelName, modelSHA256: modelSHA,
                                    hook: direction.point.name, labels: nil, directions: "directions.safetensors",
                                    provenanceJSON: provenanceJSON, derivationItems: items)
        try manifest.jsonData().write(to: URL(fileURLWithPath: directory + "/" + PackManifest.fileName))
    }
}
