// The Llama architecture as llama.cpp builds it (src/models/llama.cpp): token embedding, per
// block RMSNorm → attention with RoPE on adjacent pairs (GGML "normal" mode) and grouped-query
// heads → residual, RMSNorm → SwiGLU MLP → residual; final RMSNorm; output head (tied to the
// embedding when `output.weight` is absent). Optional q/k/v biases load Qwen2-style files too.

import Foundation
import ProbityFormats
import ProbityTensor

/// Hyperparameters read from GGUF metadata.
struct LlamaConfig: Sendable {
    var blocks: Int
    var width: Int          // d_model
    var ffnWidth: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var ropeDims: Int       // dimensions rotated in each head (≤ headDim)
    var ropeBase: Double
    var rmsEps: Float
    var vocab: Int
    var context: Int

    var qWidth: Int { heads * headDim }
    var kvWidth: Int { kvHeads * headDim }

    init(_ meta: MetadataReader, arch: String, vocab: Int) throws {
        blocks = try meta.int(GGUFKey.blockCount(arch: arch))
        width = try meta.int(GGUFKey.embeddingLength(arch: arch))
        ffnWidth = try meta.int(GGUFKey.feedForwardLength(arch: arch))
        heads = try meta.int(GGUFKey.headCount(arch: arch))
        kvHeads = try meta.int(GGUFKey.headCountKV(arch: arch), default: heads)
        headDim = try meta.int(GGUFKey.keyLength(arch: arch), default: heads > 0 ? width / heads : 0)
        ropeDims = try meta.int(GGUFKey.ropeDimensionCount(arch: arch), default: headDim)
        ropeBase = try meta.double(GGUFKey.ropeFreqBase(arch: arch), default: 10_000)
        rmsEps = Float(try meta.double(GGUFKey.rmsEpsilon(arch: arch), default: 1e-5))
        context = try meta.int(GGUFKey.contextLength(arch: arch))
        self.vocab = vocab
        func check(_ ok: Bool, _ key: String, _ expected: String, _ found: Int) throws {
            if !ok { throw ModelError.badMetadata(key: "\(arch).\(key)", expected: expected, found: String(found), path: meta.path) }
        }
        try check(blocks > 0 && blocks <= 1024, "block_count", "1 to 1024", blocks)
        try check(width > 0, "embedding_length", "a positive width", width)
        try check(ffnWidth > 0, "feed_forward_length", "a positive width", ffnWidth)
        try check(heads > 0, "attention.head_count", "a positive count", heads)
        try check(kvHeads > 0 && heads % kvHeads == 0, "attention.head_count_kv",
                  "a positive divisor of head_count \(heads)", kvHeads)
        try check(headDim > 0 && headDim % 2 == 0, "attention.key_length", "a positive even size", headDim)
        try check(ropeDims >= 0 && ropeDims <= headDim && ropeDims % 2 == 0, "rope.dimension_count",
                  "an even number ≤ head size \(headDim)", ropeDims)
        try check(context > 0, "context_length", "a positive length", context)
    }
}

/// One block's weights. Matrices stay quantized in the memory map.
struct LlamaBlock: Sendable {
    var attnNorm: [Float]       // (width)
    var wq: QuantizedMatrix     // (qWidth, width)
    var wk: QuantizedMatrix     // (kvWidth, width)
    var wv: QuantizedMatrix     // (kvWidth, width)
    var wo: QuantizedMatrix     // (width, qWidth)
    var bq: [Float]?, bk: [Float]?, bv: [Float]?
    var ffnNorm: [Float]        // (width)
    var gate: QuantizedMatrix   // (ffnWidth, width)
    var up: QuantizedMatrix     // (ffnWidth, width)
    var down: QuantizedMatrix   // (width, ffnWidth)
    /// LoRA updates to this block's products; nil when no adapter touches the block.
    var lora: LlamaBlockLoRA?
}

/// The low-rank updates an adapter adds to one block's products (LoRA.swift).
struct LlamaBlockLoRA: Sendable {
    var q: [LowRankUpdate], k: [LowRankUpdate], v: [LowRankUpdate], o: [LowRankUpdate]
    var gate: [LowRankUpdate], up: [LowRankUpdate], down: [LowRankUpdate]

    /// Takes block `l`'s updates; nil when there are none.
    init?(block l: Int, from adapters: inout LoRAUpdates) {
        typealias N = GGUFTensorName
        q = adapters.take(N.attnQ(block: l)); k = adapters.take(N.attnK(block: l))
        v = adapters.take(N.attnV(block: l)); o = adapters.take(N.attnOutput(block: l))
        gate = adapters.take(N.ffnGate(block: l)); up = adapters.take(N.ffnUp(block: l))
        down = adapters.take(N.ffnDown(block: l))
        if [q, k, v, o, gate, up, down].allSatisfy(\.isEmpty) { return nil }
    }
}

/// A Llama-architecture model loaded from GGUF.
public final class LlamaModel: LanguageModel {
    public let info: ModelInfo
    let config: LlamaConfig
    let embedding: QuantizedMatrix   // (vocab, width)
    let blocks: [LlamaBlock]
    /// Per block, `[wq, wk, wv]` and `[gate, up]` with their work items, built once for decode's
    /// fused dispatch.
    let qkvGroups: [MatrixGroup]
    let gateUpGroups: [MatrixGroup]
    let outputNorm: [Float]          // (width)
    let output: QuantizedMatrix      // (vocab, width); the embedding when tied
    /// LoRA updates to the output head (only an untied `output.weight` can have them).
    let outputLoRA: [LowRankUpdate]
    let pool: ThreadPool
    /// Inverse RoPE frequencies base^(-2j/ropeDims), j < ropeDims/2, in float64.
    let ropeInverseFrequencies: [Double]
    // Keeps the memory map (and so every matrix's data) alive.
    private let file: GGUFFile

    /// Loads the model in `gguf`, with `adapters`' low-rank updates on its products.
    public init(gguf: GGUFFile, pool: ThreadPool, adapters: LoRAUpdates = .none) throws {
        let meta = MetadataReader(gguf)
        let arch = try meta.string(GGUFKey.architecture)
        let tensors = TensorReader(gguf)
        guard let embd = gguf.tensor(named: GGUFTensorName.tokenEmbedding) else {
            throw ModelError.missingTensor(GGUFTensorName.tokenEmbedding, path: gguf.path)
        }
        let vocab = embd.shape.count == 2 ? embd.shape[1] : 0
        let c = try LlamaConfig(meta, arch: arch, vocab: vocab)
        config = c
        file = gguf
        self.pool = pool
        embedding = try tensors.matrix(GGUFTensorName.tokenEmbedding, rows: c.vocab, cols: c.width)
        var blocks: [LlamaBlock] = []
        blocks.reserveCapacity(c.blocks)
        for l in 0..<c.blocks {
            typealias N = GGUFTensorName
            blocks.append(LlamaBlock(
                attnNorm: try tensors.vector(N.attnNorm(block: l), count: c.width),
                wq: try tensors.matrix(N.attnQ(block: l), rows: c.qWidth, cols: c.width),
                wk: try tensors.matrix(N.attnK(block: l), rows: c.kvWidth, cols: c.width),
                wv: try tensors.matrix(N.attnV(block: l), rows: c.kvWidth, cols: c.width),
                wo: try tensors.matrix(N.attnOutput(block: l), rows: c.width, cols: c.qWidth),
                bq: try tensors.optionalVector(N.attnQBias(block: l), count: c.qWidth),
                bk: try tensors.optionalVector(N.attnKBias(block: l), count: c.kvWidth),
                bv: try tensors.optionalVector(N.attnVBias(block: l), count: c.kvWidth),
                ffnNorm: try tensors.vector(N.ffnNorm(block: l), count: c.width),
                gate: try tensors.matrix(N.ffnGate(block: l), rows: c.ffnWidth, cols: c.width),
                up: try tensors.matrix(N.ffnUp(block: l), rows: c.ffnWidth, cols: c.width),
                down: try tensors.matrix(N.ffnDown(block: l), rows: c.width, cols: c.ffnWidth)))
        }
        var adapters = adapters
        if !adapters.isEmpty {
            for l in 0..<c.blocks { blocks[l].lora = LlamaBlockLoRA(block: l, from: &adapters) }
        }
        self.blocks = blocks
        qkvGroups = blocks.map { MatrixGroup([$0.wq, $0.wk, $0.wv], threads: pool.threadCount) }
        gateUpGroups = blocks.map { MatrixGroup([$0.gate, $0.up], threads: pool.threadCount) }
        outputNorm = try tensors.vector(GGUFTensorName.outputNorm, count: c.width)
        if gguf.tensor(named: GGUFTensorName.output) != nil {
            output = try tensors.matrix(GGUFTensorName.output, rows: c.vocab, cols: c.width)
        } else {
            output = embedding
        }
        outputLoRA = gguf.tensor(named: GGUFTensorName.output) != nil ? adapters.take(GGUFTensorName.output) : []
        try adapters.checkAllTaken(arch: arch)
        ropeInverseFrequencies = (0..<(c.ropeDims / 2)).map { j in
            pow(c.ropeBase, -2.0 * Double(j) / Double(c.ropeDims))
        }
        info = ModelInfo(architecture: arch, blockCount: c.blocks, width: c.width,
                         vocabularySize: c.vocab, contextLength: c.context)
    }

    public func makeSession(capacity: Int? = nil) throws -> InferenceSession {
        try ModelSession(info: info, capacity: capacity, pool: pool) { rows, capacity in
            LlamaPass(model: self, rows: rows, capacity: capacity)
        }
    }
}

/// One sequence's KV cache and scratch buffers, reused across steps; `ModelSession` feeds it chunks.
final class LlamaPass: ForwardPass {
    let model: LlamaModel
    private let cache: KVCache
    private let s: Scratch

    /// Activations of one chunk; every buffer has room for `rows` positions.
    private struct Scratch {
        let x: UnsafeMutablePointer<Float>       // (rows, width) residual stream
        let xn: UnsafeMutablePointer<Float>      // (rows, width) normalized
        let q: UnsafeMutablePointer<Float>       // (rows, qWidth)
        let k: UnsafeMutablePointer<Float>       // (rows, kvWidth)
        let v: UnsafeMutablePointer<Float>       // (rows, kvWidth)
        let att: UnsafeMutablePointer<Float>     // (rows, qWidth) attention output before wo
        let proj: UnsafeMutablePointer<Float>    // (rows, width) attention or MLP output
        let gate: UnsafeMutablePointer<Float>    // (rows, ffnWidth)
        let up: UnsafeMutablePointer<Float>      // (rows, ffnWidth)
        let qkvOut: [UnsafeMutablePointer<Float>]     // [q, k, v], for decode's fused dispatch
        let gateUpOut: [UnsafeMutablePointer<Float>]  // [gate, up]
        let cos: UnsafeMutablePointer<Float>     // (rows, ropeDims / 2)
        let sin: UnsafeMutablePointer<Float>     // (rows, ropeDims / 2)

        init(rows: Int, _ c: LlamaConfig) {
            func buf(_ n: Int) -> UnsafeMutablePointer<Float> {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
                p.initialize(repeating: 0, count: max(n, 1))
                return p
            }
            x = buf(rows * c.width); xn = buf(rows * c.width)
            q = buf(rows * c.qWidth); k = buf(rows * c.kvWidth); v = buf(rows * c.kvWidth)
            att = buf(rows * c.qWidth); proj = buf(rows * c.width)
            gate = buf(rows * c.ffnWidth); up = buf(rows * c.ffnWidth)
            qkvOut = [q, k, v]
            gateUpOut = [gate, up]
            cos = buf(rows * c.ropeDims / 2); sin = buf(rows * c.ropeDims / 2)
        }

        func free() {
            for p in [x, xn, q, k, v, att, proj, gate, up, cos, sin] { p.deallocate() }
        }
    }

    init(model: LlamaModel, rows: Int, capacity: Int) {
        self.model = model
        let c = model.config
        cache = KVCache(blocks: c.blocks, kvHeads: c.kvHeads, headDim: c.headDim, heads: c.heads, capacity: capacity)
        s = Scratch(rows: rows, c)
    }

    deinit {
        s.free()
    }

    /// One pass of the layer loop over `chunk`, at positions `chunk.positions`.
    func run(_ chunk: ForwardChunk) {
        let m = model, c = m.config, pool = m.pool
        let n = chunk.count
        let p0 = chunk.start

        // Embedding lookup: x[i] = E[token_i].
        for (i, t) in chunk.tokens.enumerated() { m.embedding.dequantizeRow(t, into: s.x + i * c.width) }
        chunk.hook(.embed, s.x)

        // RoPE angles for these positions: θ = p · base^(-2j/d), computed in float64.
        let half = c.ropeDims / 2
        for i in 0..<n {
            let p = Double(p0 + i)
            for j in 0..<half {
                let angle = p * m.ropeInverseFrequencies[j]
                s.cos[i * half + j] = Float(Foundation.cos(angle))
                s.sin[i * half + j] = Float(Foundation.sin(angle))
            }
        }

        // A partial pass runs only the blocks up to its last hook point.
        for l in chunk.blocks {
            let w = m.blocks[l]
            chunk.hook(.residPre(l), s.x)

            // Attention: xn = RMSNorm(x); q, k, v projections; RoPE; append k, v to the cache.
            rmsNorm(rows: n, weight: w.attnNorm)
            if n == 1 {
                m.qkvGroups[l].multiply(s.xn, into: s.qkvOut, pool: pool)
            } else {
                w.wq.multiply(s.xn, batch: n, into: s.q, pool: pool)
                w.wk.multiply(s.xn, batch: n, into: s.k, pool: pool)
                w.wv.multiply(s.xn, batch: n, into: s.v, pool: pool)
            }
            if let a = w.lora {
                a.q.apply(s.xn, batch: n, into: s.q)
                a.k.apply(s.xn, batch: n, into: s.k)
                a.v.apply(s.xn, batch: n, into: s.v)
            }
            if let b = w.bq { addBias(b, to: s.q, rows: n) }
            if let b = w.bk { addBias(b, to: s.k, rows: n) }
            if let b = w.bv { addBias(b, to: s.v, rows: n) }
            rope(s.q, rows: n, heads: c.heads)
            rope(s.k, rows: n, heads: c.kvHeads)
            cache.store(block: l, keys: s.k, values: s.v, rows: n, at: p0)
            cache.attend(block: l, queries: s.q, heads: c.heads, rows: n, start: p0,
                         scale: 1 / Float(c.headDim).squareRoot(), into: s.att, pool: pool)
            w.wo.multiply(s.att, batch: n, into: s.proj, pool: pool)
            if let a = w.lora { a.o.apply(s.att, batch: n, into: s.proj) }
            chunk.hook(.attnOut(l), s.proj)
            Vec.add(s.x, s.proj, n * c.width)
            chunk.hook(.residMid(l), s.x)

            // MLP: down(silu(gate(xn)) * up(xn)).
            rmsNorm(rows: n, weight: w.ffnNorm)
            if n == 1 {
                m.gateUpGroups[l].multiply(s.xn, into: s.gateUpOut, pool: pool)
            } else {
                w.gate.multiply(s.xn, batch: n, into: s.gate, pool: pool)
                w.up.multiply(s.xn, batch: n, into: s.up, pool: pool)
            }
            if let a = w.lora {
                a.gate.apply(s.xn, batch: n, into: s.gate)
                a.up.apply(s.xn, batch: n, into: s.up)
            }
            Vec.siluMul(s.gate, s.up, n * c.ffnWidth)
            w.down.multiply(s.gate, batch: n, into: s.proj, pool: pool)
            if let a = w.lora { a.down.apply(s.gate, batch: n, into: s.proj) }
            chunk.hook(.mlpOut(l), s.proj)
            Vec.add(s.x, s.proj, n * c.width)
            chunk.hook(.residPost(l), s.x)
        }

        guard chunk.runsFinal else { return }
        rmsNorm(rows: n, weight: m.outputNorm)
        chunk.hook(.finalNormalized, s.xn)

        // Output head, only over the rows whose logits were asked for.
        if let (rows, logits) = chunk.logits {
            m.output.multiply(s.xn + rows.lowerBound * c.width, batch: rows.count, into: logits, pool: pool)
            m.outputLoRA.apply(s.xn + rows.lowerBound * c.width, batch: rows.count, into: logits)
        }
    }

    /// xn[i] = RMSNorm(x[i]) · weight for each row.
    private func rmsNorm(rows n: Int, weight: [Float]) {
        let c = model.config
        weight.withUnsafeBufferPointer { w in
            guard let wp = w.baseAddress else { return }
            for i in 0..<n {
                Vec.rmsNorm(s.x + i * c.width, weight: wp, eps: c.rmsEps, c.width, into: s.xn + i * c.width)
            }
        }
    }

    private func addBias(_ bias: [Float], to x: UnsafeMutablePointer<Float>, rows n: Int) {
        bias.withUnsafeBufferPointer { b in
            guard let bp = b.baseAddress else { return }
            for i in 0..<n { Vec.add(x + i * bias.count, bp, bias.count) }
        }
    }

    /// Rotates adjacent pairs (2j, 2j+1) of the first ropeDims dimensions of every head.
    private func rope(_ x: UnsafeMutablePointer<Float>, rows n: Int, heads: Int) {
        let c = model.config
        let half = c.ropeDims / 2
        for i in 0..<n {
            let cs = s.cos + i * half, sn = s.sin + i * half
            for h in 0..<heads {
                let v = x + i * heads * c.headDim + h * c.headDim
                for j in 0..<half {
                    let a = v[2 * j], b = v[2 * j + 1]
                    v[2 * j] = a * cs[j] - b * sn[j]
                    v[2 * j + 1] = a * sn[j] + b * cs[j]
                }
            }
        }
    }
}

extension GGUFTensorName {
    // Optional projection biases (Qwen2-style files).
    static func attnQBias(block: Int) -> String { "blk.\(block).attn_q.bias" }
    static func attnKBias(block: Int) -> String { "blk.\(block).attn_k.bias" }
    static func attnVBias(block: Int) -> String { "blk.\(block).attn_v.bias" }
}
