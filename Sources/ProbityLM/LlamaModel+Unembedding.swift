// The output head applied to directions of the residual stream (direct logit attribution): which
// tokens a direction, such as an SAE latent's decoder row, pushes up or down when added before the
// final RMSNorm. The norm's per-channel weight is applied; its division by the RMS, which depends
// on the whole residual, is not (it scales every logit of a row alike).

extension LlamaModel {
    /// The width of the residual stream and the size of the vocabulary.
    public var unembeddingShape: (width: Int, vocab: Int) { (config.width, config.vocab) }

    /// Logits of each of `count` directions (`directions`, count × width, row-major): row i of the
    /// result (count × vocab) is W_out · (weight ⊙ directions[i]).
    public func unembed(_ directions: [Float], count: Int) -> [Float] {
        let width = config.width, vocab = config.vocab
        precondition(count >= 0 && directions.count == count * width, "unembed: expected \(count) × \(width) floats")
        guard count > 0 else { return [] }
        var scaled = directions
        for r in 0..<count {
            for c in 0..<width { scaled[r * width + c] *= outputNorm[c] }
        }
        var out = [Float](repeating: 0, count: count * vocab)
        scaled.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in
                guard let xp = x.baseAddress, let op = o.baseAddress else { return }
                output.multiply(xp, batch: count, into: op, pool: pool)
                outputLoRA.apply(xp, batch: count, into: op)
            }
        }
        return out
    }
}
