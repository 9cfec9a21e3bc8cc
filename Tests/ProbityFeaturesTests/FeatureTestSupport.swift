// Fixtures for the feature tests: seeded random numbers, small SAEs written in SAELens's real
// on-disk layout (cfg.json + sae_weights.safetensors, F32/F16/BF16), a plain float64 reference
// encoder/decoder, and a way to run attached hooks on a buffer without a model.

import Foundation
import ProbityFormats
import ProbityTensor
@testable import ProbityFeatures
@testable import ProbityLM

/// The package's seeded SplitMix64 (the one generator every test uses), so fixtures are the same
/// on every run.
extension SplitMix64 {
    init(_ seed: UInt64) { self.init(seed: seed) }

    /// Uniform in [-1, 1] on a grid of 1/`steps`, so the value is exact in F16 (steps ≤ 1024) or BF16 (≤ 128).
    mutating func grid(_ steps: Int) -> Float {
        let k = Int(next() % UInt64(2 * steps + 1)) - steps
        return Float(k) / Float(steps)
    }
    mutating func floats(_ n: Int, steps: Int = 1024, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in grid(steps) * scale }
    }
}

enum WeightType { case f32, f16, bf16 }

/// Float → IEEE half bits, for values that are exactly representable and normal (or zero).
func halfBits(_ f: Float) -> UInt16 {
    if f == 0 { return f.sign == .minus ? 0x8000 : 0 }
    if f.isInfinite { return f.sign == .minus ? 0xFC00 : 0x7C00 }
    let b = f.bitPattern
    let sign = UInt16((b >> 16) & 0x8000)
    let exp = Int((b >> 23) & 0xFF) - 127 + 15
    let mant = UInt16((b >> 13) & 0x3FF)
    precondition(exp > 0 && exp < 31, "fixture value \(f) not a normal half")
    return sign | UInt16(exp) << 10 | mant
}

func bytes(_ values: [Float], as type: WeightType) -> (SafeTensorDType, [UInt8]) {
    var out: [UInt8] = []
    switch type {
    case .f32:
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return (.f32, out)
    case .f16:
        for v in values { withUnsafeBytes(of: halfBits(v).littleEndian) { out.append(contentsOf: $0) } }
        return (.f16, out)
    case .bf16:
        for v in values { withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { out.append(contentsOf: $0) } }
        return (.bf16, out)
    }
}

/// A small random SAE, its weights kept for the reference implementation.
struct SAEFixture {
    var dIn = 8
    var dSAE = 24
    var architecture = "standard"
    var k = 5
    var normalization: Any = "none"
    var applyBDec = true
    var legacy = false
    var type = WeightType.f32
    var hook = "blocks.1.hook_resid_post"
    var seed: UInt64 = 1

    var wEnc: [Float] = [], bEnc: [Float] = [], wDec: [Float] = [], bDec: [Float] = [], threshold: [Float] = []

    mutating func makeWeights() {
        var rng = SplitMix64(seed)
        let steps = type == .bf16 ? 128 : 1024
        wEnc = rng.floats(dIn * dSAE, steps: steps)
        bEnc = rng.floats(dSAE, steps: steps).map { $0 * 0.25 }
        wDec = rng.floats(dSAE * dIn, steps: steps)
        bDec = rng.floats(dIn, steps: steps).map { $0 * 0.5 }
        threshold = rng.floats(dSAE, steps: steps).map { abs($0) * 0.5 }
    }

    var config: [String: Any] {
        var c: [String: Any] = ["d_in": dIn, "d_sae": dSAE, "apply_b_dec_to_input": applyBDec,
                                "normalize_activations": normalization, "dtype": "float32"]
        if legacy {
            c["hook_point"] = hook
            c["model_name"] = "smollm2-135m"
            if architecture == "topk" {
                c["activation_fn_str"] = "topk"
                c["activation_fn_kwargs"] = ["k": k]
            } else {
                c["architecture"] = architecture
                c["activation_fn_str"] = "relu"
            }
        } else {
            c["architecture"] = architecture
            if architecture == "topk" { c["k"] = k }
            c["metadata"] = ["hook_name": hook, "model_name": "smollm2-135m", "sae_lens_version": "6.5.0"]
        }
        return c
    }

    /// Writes cfg.json and sae_weights.safetensors into `dir` (created), with optional edits to the
    /// tensors (`tensors`: name → (shape, values)) for malformed-input tests.
    @discardableResult
    mutating func write(to dir: URL, config override: [String: Any]? = nil,
                        edit: (inout [String: ([Int], [Float])]) -> Void = { _ in }) throws -> URL {
        if wEnc.isEmpty { makeWeights() }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cfg = try JSONSerialization.data(withJSONObject: override ?? config, options: [.sortedKeys])
        try cfg.write(to: dir.appendingPathComponent("cfg.json"))
        var tensors: [String: ([Int], [Float])] = [
            "W_enc": ([dIn, dSAE], wEnc), "b_enc": ([dSAE], bEnc), "W_dec": ([dSAE, dIn], wDec), "b_dec": ([dIn], bDec),
        ]
        if architecture == "jumprelu" { tensors["threshold"] = ([dSAE], threshold) }
        edit(&tensors)
        var w = SafeTensorsWriter(name: dir.path + "/sae_weights.safetensors")
        for name in tensors.keys.sorted() {
            guard let (shape, values) = tensors[name] else { continue }
            let (dtype, data) = bytes(values, as: type)
            try w.addTensor(name: name, dtype: dtype, shape: shape, data: data)
        }
        try w.write(to: dir.path + "/sae_weights.safetensors")
        return dir
    }

    /// Plain float64 SAELens encode of one position.
    func referenceEncode(_ x: [Float]) -> (f: [Double], scale: Double) {
        let xd = x.map(Double.init)
        var scale = 1.0
        if let s = normalization as? String, s == "constant_norm_rescale" {
            scale = Double(dIn).squareRoot() / xd.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        var pre = [Double](repeating: 0, count: dSAE)
        for i in 0..<dSAE {
            var acc = Double(bEnc[i])
            for j in 0..<dIn {
                let xin = scale * xd[j] - (applyBDec ? Double(bDec[j]) : 0)
                acc += xin * Double(wEnc[j * dSAE + i])
            }
            pre[i] = acc
        }
        var f = [Double](repeating: 0, count: dSAE)
        switch architecture {
        case "jumprelu":
            for i in 0..<dSAE where pre[i] > Double(threshold[i]) { f[i] = max(pre[i], 0) }
        case "topk":
            let order = (0..<dSAE).sorted { pre[$0] > pre[$1] || (pre[$0] == pre[$1] && $0 < $1) }
            for i in order.prefix(k) { f[i] = max(pre[i], 0) }
        default:
            for i in 0..<dSAE { f[i] = max(pre[i], 0) }
        }
        return (f, scale)
    }

    func referenceDecode(_ f: [Double], scale: Double) -> [Double] {
        (0..<dIn).map { j in
            var acc = Double(bDec[j])
            for i in 0..<dSAE { acc += f[i] * Double(wDec[i * dIn + j]) }
            return acc / scale
        }
    }
}

/// A fresh scratch directory.
func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("probity-features-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// `text` written as labels.json in a fresh scratch directory; its path.
func writeLabelsFile(_ text: String) throws -> String {
    let path = try scratchDirectory().appendingPathComponent("labels.json").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Runs the hooks attached at `point` on `values` (count × width), as a forward step would (one
/// that ends at `stepEnd`, when given, as the first part of a split step does).
func runHooks(_ hooks: HookSet, at point: HookPoint, blocks: Int, values: inout [Float], width: Int,
              start: Int = 0, origins: [TokenOrigin]? = nil, stepEnd: Int? = nil) throws {
    let count = values.count / width
    let table = try hooks.slots(blocks: blocks)
    guard let slot = point.slot(blocks: blocks), let attached = table[slot] else { return }
    let tokens = Array(repeating: 0, count: count)
    let o = origins ?? Array(repeating: .prompt, count: count)
    values.withUnsafeMutableBufferPointer { buf in
        let acts = HookActivations(point: point, width: width, count: count, values: buf.baseAddress!,
                                   positions: start..<(start + count), tokens: tokens[...], origins: o[...],
                                   stepEnd: stepEnd)
        for h in attached { h(acts) }
    }
}

func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num += (Double(x) - y) * (Double(x) - y)
        den += y * y
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

func relativeError(_ a: [Float], _ b: [Float]) -> Double { relativeError(a, b.map(Double.init)) }
