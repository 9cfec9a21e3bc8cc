// Contrastive activation addition (Rimsky et al., "Steering Llama 2 via Contrastive Activation
// Addition"): a steering direction as the mean difference of activations at one hook point between
// paired positive and negative prompts, at each prompt's last position or averaged over its positions.

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
    }

    /// Reads prompts from a JSONL file: one per line, as `{"text": ...}`, `{"prompt": ...}` or a bare
    /// JSON string. Blank lines are skipped.
    public static func readPrompts(path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw FeatureError.missingFile(path: path, what: "prompts file") }
        let text = String(decoding: data, as: UTF8.self)
        var prompts: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let value: Any
            do { value = try JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed]) } catch {
                throw FeatureError.badPairs(path: path, line: n + 1, reason: "not valid JSON")
            }
            if let s = value as? String {
                prompts.append(s)
            } else if let o = value as? [String: Any], let s = (o["text"] ?? o["prompt"]) as? String {
                prompts.append(s)
            } else {
                throw FeatureError.badPairs(path: path, line: n + 1, reason: "expected a JSON string or an object with a \"text\" or \"prompt\" string")
            }
            if prompts.last?.isEmpty == true { throw FeatureError.badPairs(path: path, line: n + 1, reason: "empty prompt") }
        }
        return prompts
    }

    /// The activation representing each prompt at `point`.
    public static func representations(model: any LanguageModel, prompts: [[Int]], point: HookPoint,
                                       at reduction: Reduction) throws -> [[Float]] {
        try model.info.validate(point)
        let width = model.info.width
        var out: [[Float]] = []
        for tokens in prompts {
            guard !tokens.isEmpty else { throw FeatureError.emptyPrompt }
            var sum = [Double](repeating: 0, count: width)
            var last = [Float](repeating: 0, count: width)
            var seen = 0
            let hooks = HookSet()
            hooks.attach(at: point) { acts in
                for r in 0..<acts.count {
                    let row = acts.values + r * acts.width
                    for j in 0..<width { sum[j] += Double(row[j]) }
                    if acts.positions.lowerBound + r == tokens.count - 1 {
                        for j in 0..<width { last[j] = row[j] }
                    }
                }
                seen += acts.count
            }
            let session = try model.makeSession(capacity: tokens.count)
            try session.forward(tokens, origins: nil, hooks: hooks, through: point)
            switch reduction {
            case .last: out.append(last)
            case .mean: out.append(sum.map { Float($0 / Double(max(seen, 1))) })
            }
        }
        return out
    }

    /// mean_i (a(positive_i) − a(negative_i)): the CAA direction. Prompts pair up in order.
    public static func derive(model: any LanguageModel, positive: [[Int]], negative: [[Int]], point: HookPoint,
                              at reduction: Reduction) throws -> [Float] {
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
    /// the model, the hook, the reduction and the counts.
    public static func writePack(direction: Direction, to directory: String, modelName: String?, modelPath: String,
                                 positivePath: String, negativePath: String, pairs: Int, reduction: Reduction) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FeaturePack.writeDirections([direction], to: directory + "/directions.safetensors")
        let modelSHA = try SHA256.hex(file: modelPath)
        let provenance: [String: Any] = [
            "method": "contrastive activation addition (mean difference)",
            "hook": direction.point.name,
            "at": reduction.rawValue,
            "pairs": pairs,
            "positive": ["file": URL(fileURLWithPath: positivePath).lastPathComponent, "sha256": try SHA256.hex(file: positivePath)],
            "negative": ["file": URL(fileURLWithPath: negativePath).lastPathComponent, "sha256": try SHA256.hex(file: negativePath)],
            "model": ["name": modelName as Any? ?? NSNull(), "gguf_sha256": modelSHA] as [String: Any],
            "norm": Double(direction.vector.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()),
        ]
        let provenanceJSON = String(decoding: try JSONSerialization.data(withJSONObject: provenance, options: [.sortedKeys]), as: UTF8.self)
        let manifest = PackManifest(name: direction.name, kind: .directions, modelName: modelName, modelSHA256: modelSHA,
                                    hook: direction.point.name, labels: nil, directions: "directions.safetensors",
                                    provenanceJSON: provenanceJSON)
        try manifest.jsonData().write(to: URL(fileURLWithPath: directory + "/" + PackManifest.fileName))
    }
}
