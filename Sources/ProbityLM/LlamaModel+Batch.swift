// The Llama-style block over several sequences in one forward, one decode position each: every
// weight matrix is read once per step for all of them (`multiplyVectors`), while everything
// per-sequence (RoPE angles, KV cache store and attention, LoRA updates, hooks) runs on each
// sequence's own row with the same calls LlamaPass.run makes for one row, so each sequence's
// logits have the bits of its own decode step.

import ProbityTensor

extension LlamaModel: BatchSteppingModel {
    func makeBatchStepper() -> BatchStepper { LlamaBatchStep(model: self) }
}

/// The fused decode step and its scratch, which grows to the largest batch seen.
final class LlamaBatchStep: BatchStepper {
    let model: LlamaModel
    private var rows = 0
    private var buffers: [UnsafeMutablePointer<Float>] = []
    /// Each row's quantized inputs, in the 8-bit activation mode only.
    private var q8: Q8Vectors?

    init(model: LlamaModel) { self.model = model }

    deinit { buffers.forEach { $0.deallocate() } }

    /// Room for `n` rows in every buffer: x, xn, q, k, v, att, proj, gate, up, cos, sin, head.
    private func reserve(_ n: Int) {
        guard n > rows else { return }
        buffers.forEach { $0.deallocate() }
        let c = model.config
        let widths = [c.width, c.width, c.qWidth, c.kvWidth, c.kvWidth, c.qWidth, c.width, c.ffnWidth, c.ffnWidth,
                      c.ropeDims / 2, c.ropeDims / 2, c.width]
        buffers = widths.map { w in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * w))
            p.initialize(repeating: 0, count: max(1, n * w))
            return p
        }
        if model.activations == .q8 { q8 = Q8Vectors(maxCols: c.q8Width, slots: n) }
        rows = n
    }

    func step(_ requests: [DecodeRequest]) throws -> [[Float]] {
        let m = model
        var sessions: [ModelSession<LlamaPass>] = []
        for (i, r) in requests.enumerated() {
            guard let s = r.session as? ModelSession<LlamaPass>, s.pass.model === m else {
                throw BatchError.foreignSession(index: i)
            }
            sessions.append(s)
        }
        let chunks = try zip(sessions, requests).map { s, r in
            try s.stepChunk(token: r.token, origin: r.origin, hooks: r.hooks)
        }
        reserve(requests.count)
        let logitRows = requests.indices.filter { requests[$0].wantsLogits }
        var logits = [Float](repeating: 0, count: logitRows.count * m.config.vocab)
        logits.withUnsafeMutableBufferPointer { out in
            run(sessions.map(\.pass), chunks, logitRows: logitRows, into: out.baseAddress)
        }
        for (s, r) in zip(sessions, requests) { s.commitStep(token: r.token) }
        var result = [[Float]](repeating: [], count: requests.count)
        let vocab = m.config.vocab
        for (j, i) in logitRows.enumerated() { result[i] = Array(logits[(j * vocab)..<((j + 1) * vocab)]) }
        return result
    }

    /// One position of each chunk (chunk i on row i of every buffer), then the output head for
    /// `logitRows`, written in their order to `out`.
    private func run(_ passes: [LlamaPass], _ chunks: [ForwardChunk], logitRows: [Int],
                     into out: UnsafeMutablePointer<Float>?) {
        let m = model, c = m.config, pool = m.pool, n = chunks.count
        let b = buffers
        let (x, xn, q, k, v, att, proj, gate, up, cos, sin, head) =
            (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11])
        let half = c.ropeDims / 2, scale = 1 / Float(c.headDim).squareRoot()
        let (precision, q8) = (m.activations, self.q8)
        func each(_ point: HookPoint, _ base: UnsafeMutablePointer<Float>, _ width: Int) {
            for i in 0..<n { chunks[i].hook(point, base + i * width) }
        }
        func lora(_ updates: [LowRankUpdate], _ input: UnsafeMutablePointer<Float>, _ inWidth: Int,
                  _ output: UnsafeMutablePointer<Float>, _ outWidth: Int, rows: Int? = nil) {
            guard !updates.isEmpty else { return }
            for i in 0..<(rows ?? n) { updates.apply(input + i * inWidth, batch: 1, into: output + i * outWidth) }
        }

        for (i, chunk) in chunks.enumerated() {
            m.embedding.dequantizeRow(chunk.tokens[chunk.tokens.startIndex], into: x + i * c.width)
            BlockMath.ropeAngles(start: chunk.start, rows: 1, inverse: m.ropeInverseFrequencies,
                                 cos: cos + i * half, sin: sin + i * half)
        }
        each(.embed, x, c.width)

        for l in 0..<c.blocks {
            let w = m.blocks[l]
            each(.residPre(l), x, c.width)

            BlockMath.rmsNorm(x, rows: n, width: c.width, weight: w.attnNorm, eps: c.rmsEps, into: xn)
            m.qkvGroups[l].multiplyVectors(xn, vectors: n, precision: precision, q8: q8, into: [q, k, v], pool: pool)
            if let a = w.lora {
                lora(a.q, xn, c.width, q, c.qWidth)
                lora(a.k, xn, c.width, k, c.kvWidth)
                lora(a.v, xn, c.width, v, c.kvWidth)
            }
            if let bias = w.bq { BlockMath.addBias(bias, to: q, rows: n) }
            if let bias = w.bk { BlockMath.addBias(bias, to: k, rows: n) }
            if let bias = w.bv { BlockMath.addBias(bias, to: v, rows: n) }
            if let qn = w.qNorm, let kn = w.kNorm {
                BlockMath.headNorm(q, rows: n, heads: c.heads, headDim: c.headDim, weight: qn, eps: c.rmsEps)
                BlockMath.headNorm(k, rows: n, heads: c.kvHeads, headDim: c.headDim, weight: kn, eps: c.rmsEps)
            }
            for (i, chunk) in chunks.enumerated() {
                let qi = q + i * c.qWidth, ki = k + i * c.kvWidth
                BlockMath.rope(qi, rows: 1, heads: c.heads, headDim: c.headDim, ropeDims: c.ropeDims,
                               layout: c.ropeLayout, cos: cos + i * half, sin: sin + i * half)
                BlockMath.rope(ki, rows: 1, heads: c.kvHeads, headDim: c.headDim, ropeDims: c.ropeDims,
                               layout: c.ropeLayout, cos: cos + i * half, sin: sin + i * half)
                let cache = passes[i].cache
                cache.store(block: l, keys: ki, values: v + i * c.kvWidth, rows: 1, at: chunk.start)
                cache.attend(block: l, queries: qi, heads: c.heads, rows: 1, start: chunk.start, scale: scale,
                             into: att + i * c.qWidth, pool: pool)
            }
            w.wo.multiplyVectors(att, vectors: n, stride: c.qWidth, precision: precision, q8: q8, into: proj,
                                 outStride: c.width, pool: pool)
            if let a = w.lora { lora(a.o, att, c.qWidth, proj, c.width) }
            each(.attnOut(l), proj, c.width)
            for i in 0..<n { Vec.add(x + i * c.width, proj + i * c.width, c.width) }
            each(.residMid(l), x, c.width)

            BlockMath.rmsNorm(x, rows: n, width: c.width, weight: w.ffnNorm, eps: c.rmsEps, into: xn)
            m.gateUpGroups[l].multiplyVectors(xn, vectors: n, precision: precision, q8: q8, into: [gate, up],
                                              pool: pool)
            if let a = w.lora {
                lora(a.gate, xn, c.width, gate, c.ffnWidth)
                lora(a.up, xn, c.width, up, c.ffnWidth)
            }
            for i in 0..<n { Vec.siluMul(gate + i * c.ffnWidth, up + i * c.ffnWidth, c.ffnWidth) }
            w.down.multiplyVectors(gate, vectors: n, stride: c.ffnWidth, precision: precision, q8: q8, into: proj,
                                   outStride: c.width, pool: pool)
            if let a = w.lora { lora(a.down, gate, c.ffnWidth, proj, c.width) }
            each(.mlpOut(l), proj, c.width)
            for i in 0..<n { Vec.add(x + i * c.width, proj + i * c.width, c.width) }
            each(.residPost(l), x, c.width)
        }

        BlockMath.rmsNorm(x, rows: n, width: c.width, weight: m.outputNorm, eps: c.rmsEps, into: xn)
        each(.finalNormalized, xn, c.width)
        guard let out, !logitRows.isEmpty else { return }
        // The rows whose logits were asked for, side by side (a copy changes no bits).
        for (j, i) in logitRows.enumerated() { (head + j * c.width).update(from: xn + i * c.width, count: c.width) }
        m.output.multiplyVectors(head, vectors: logitRows.count, stride: c.width, precision: precision, q8: q8,
                                 into: out, outStride: c.vocab, pool: pool)
        lora(m.outputLoRA, head, c.width, out, c.vocab, rows: logitRows.count)
    }
}
