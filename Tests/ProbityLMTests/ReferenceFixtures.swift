// The default model for the golden tests, and helpers over the reference outputs
// (ProbityTestSupport's `Reference`).

import Foundation
import ProbityFormats
import ProbityLM
import ProbityTensor
import ProbityTestSupport

extension Reference {
    /// The default model (scripts/setup fetches it), with its own thread pool.
    static func defaultModel(threads: Int = 2) throws -> LlamaModel {
        let gguf = try GGUFFile(path: try TestData.defaultModelPath())
        return try LlamaModel(gguf: gguf, pool: ThreadPool(threads: threads))
    }
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
