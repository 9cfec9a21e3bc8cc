// Loads llama.cpp's reference outputs (Tests/Fixtures/reference, see its README) and the
// default model for the golden tests.

import Foundation
import ProbityFormats
import ProbityLM
import ProbityTensor
import ProbityTestSupport

enum Reference {
    static let referenceDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reference")

    struct Variant {
        var prompt: String
        var variant: String
        var tokens: [Int]
        var top10: [Int]
        var greedy: [Int]
        var logitsFile: String
        var f64File: String { logitsFile.replacingOccurrences(of: ".npy", with: "_f64ref.npy") }
    }

    /// Every prompt × variant in reference.json.
    static func variants() throws -> [Variant] {
        let data = try Data(contentsOf: referenceDirectory.appendingPathComponent("reference.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let prompts = root["prompts"] as? [[String: Any]] else {
            throw FixtureError("reference.json: unexpected layout")
        }
        var out: [Variant] = []
        for p in prompts {
            guard let name = p["name"] as? String, let variants = p["variants"] as? [String: Any] else {
                throw FixtureError("reference.json: prompt without name or variants")
            }
            for key in variants.keys.sorted() {
                guard let v = variants[key] as? [String: Any],
                      let tokens = v["tokens"] as? [Int], let top10 = v["top10_ids"] as? [Int],
                      let greedy = v["greedy32"] as? [Int], let file = v["logits_file"] as? String else {
                    throw FixtureError("reference.json: \(name)/\(key) incomplete")
                }
                out.append(Variant(prompt: name, variant: key, tokens: tokens, top10: top10,
                                   greedy: greedy, logitsFile: file))
            }
        }
        return out
    }

    /// A reference .npy vector as Float64.
    static func vector(_ file: String) throws -> [Double] {
        let array = try NPY.read(path: referenceDirectory.appendingPathComponent(file).path)
        return array.values
    }

    /// The default model (scripts/setup fetches it), with its own thread pool.
    static func defaultModel(threads: Int = 2) throws -> LlamaModel {
        let gguf = try GGUFFile(path: try TestData.defaultModelPath())
        return try LlamaModel(gguf: gguf, pool: ThreadPool(threads: threads))
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// ‖a − b‖₂ / ‖b‖₂.
func relativeL2(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in a.indices {
        let d = Double(a[i]) - b[i]
        num += d * d
        den += b[i] * b[i]
    }
    return (num / den).squareRoot()
}

func relativeL2(_ a: [Float], _ b: [Float]) -> Double { relativeL2(a, b.map(Double.init)) }

/// Index of the largest value (lowest index on ties).
func argmax<T: Comparable>(_ v: some Collection<T>) -> Int {
    var best = 0, i = 0
    var bestValue: T? = nil
    for x in v {
        if bestValue == nil || x > bestValue! { bestValue = x; best = i }
        i += 1
    }
    return best
}

/// Indices of the k largest values.
func topK<T: Comparable>(_ v: [T], _ k: Int) -> [Int] {
    Array(v.indices.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(k))
}

/// A float64 reference pass's logits at one position over the whole vocabulary: its final state
/// times `output` (the model's output matrix, exactly dequantized row by row), summed in double.
func float64Logits<C: Collection<Double>>(_ output: QuantizedMatrix, width: Int, vocab: Int, final: C) -> [Double] {
    let f = Array(final)
    var row = [Float](repeating: 0, count: width)
    var out = [Double](repeating: 0, count: vocab)
    row.withUnsafeMutableBufferPointer { r in
        guard let rp = r.baseAddress else { return }
        for t in 0..<vocab {
            output.dequantizeRow(t, into: rp)
            var s = 0.0
            for c in 0..<width { s += Double(rp[c]) * f[c] }
            out[t] = s
        }
    }
    return out
}
