// The Gemma 3 architecture as llama.cpp builds it (src/models/gemma3.cpp, hparams in
// llama-model.cpp): token embedding scaled by √width; per block RMSNorm → attention with RMSNorm on
// each query and key head, RoPE on halves (GGML "neox" mode) and grouped-query heads, in a sliding
// window on most blocks → RMSNorm → residual, RMSNorm → GELU-tanh gated MLP → RMSNorm → residual;
// final RMSNorm; output head tied to the embedding. llama.cpp's converter stores Gemma's
// RMSNorm weights with the +1 already added, so every norm here is x / rms(x) · w.

import Foundation
import ProbityFormats
import ProbityTensor

/// Gemma 3 hyperparameters read from GGUF metadata, with what the format leaves implicit spelled
/// out as llama.cpp fixes it (window pattern, local RoPE base, attention scale).
struct Gemma3Config: Sendable {
    var blocks: Int
    var width: Int          // d_model
    var ffnWidth: Int
    var heads: Int
    var kvHeads: Int
    var headDim: Int
    var ropeDims: Int       // dimensions rotated in each head (≤ headDim)
    var rmsEps: Float
    var vocab: Int
    var context: Int
    /// Positions a sliding-window block attends to, the query's own included.
    var window: Int
    /// Every `globalEvery`-th block (blocks globalEvery − 1, 2·globalEvery − 1, …) attends to the
    /// whole context; the others to the window.
    var globalEvery: Int
    var ropeBaseGlobal: Double
    var ropeBaseLocal: Double
    /// Multiplies global blocks' RoPE angles (1 / the linear scaling factor; 1 without scaling).
    var ropeScaleGlobal: Double
    /// Applied to the scores: 1/√headDim (1/√(width/heads) for the 62-block 27B, as llama.cpp has it).
    var attentionScale: Float
    /// tanh soft-capping of the logits, when the file declares it: c · tanh(logit / c).
    var finalLogitSoftcap: Float?

    var qWidth: Int { heads * headDim }
    var kvWidth: Int { kvHeads * headDim }

    func isGlobal(block l: Int) -> Bool { (l + 1) % globalEvery == 0 }

    init(_ meta: MetadataReader, arch: String, vocab: Int) throws {
        blocks = try meta.int(GGUFKey.blockCount(arch: arch))
        width = try meta.int(GGUFKey.embeddingLength(arch: arch))
        ffnWidth = try meta.int(GGUFKey.feedForwardLength(arch: arch))
        heads = try meta.int(GGUFKey.headCount(arch: arch))
        kvHeads = try meta.int(GGUFKey.headCountKV(arch: arch), default: heads)
        headDim = try meta.int(GGUFKey.keyLength(arch: arch), default: heads > 0 ? width / heads : 0)
        let valueDim = try meta.int(GGUFKey.valueLength(arch: arch), default: headDim)
        ropeDims = try meta.int(GGUFKey.ropeDimensionCount(arch: arch), default: headDim)
        ropeBaseGlobal = try meta.double(GGUFKey.ropeFreqBase(arch: arch), default: 10_000)
        ropeBaseLocal = try meta.double(GGUFKey.ropeFreqBaseSWA(arch: arch), default: 10_000)
        rmsEps = Float(try meta.double(GGUFKey.rmsEpsilon(arch: arch), default: 1e-6))
        context = try meta.int(GGUFKey.contextLength(arch: arch))
        window = try meta.int(GGUFKey.slidingWindow(arch: arch))
        globalEvery = try meta.int(GGUFKey.slidingWindowPattern(arch: arch), default: 6)
        self.vocab = vocab
        let path = meta.path
        func check(_ ok: Bool, _ key: String, _ expected: String, _ found: String) throws {
            if !ok { throw ModelError.badMetadata(key: "\(arch).\(key)", expected: expected, found: found, path: path) }
        }
        try check(blocks > 0 && blocks <= 1024, "block_count", "1 to 1024", String(blocks))
        try check(width > 0, "embedding_length", "a positive width", String(width))
        try check(ffnWidth > 0, "feed_forward_length", "a positive width", String(ffnWidth))
        try check(heads > 0, "attention.head_count", "a positive count", String(heads))
        try check(kvHeads > 0 && heads % kvHeads == 0, "attention.head_count_kv",
                  "a positive divisor of head_count \(heads)", String(kvHeads))
        try check(headDim > 0 && headDim % 2 == 0, "attention.key_length", "a positive even size", String(headDim))
        try check(valueDim == headDim, "attention.value_length", "the key length \(headDim)", String(valueDim))
        try check(ropeDims >= 0 && ropeDims <= headDim && ropeDims % 2 == 0, "rope.dimension_count",
                  "an even number ≤ head size \(headDim)", String(ropeDims))
        try check(ropeBaseGlobal > 0, "rope.freq_base", "a positive base", String(ropeBaseGlobal))
        try check(ropeBaseLocal > 0, "rope.freq_base_swa", "a positive base", String(ropeBaseLocal))
        try check(context > 0, "context_length", "a positive length", String(context))
        try check(window > 0, "attention.sliding_window", "a positive number of positions", String(window))
        try check(globalEvery > 0, "attention.sliding_window_pattern", "a positive period", String(globalEvery))

        // Linear RoPE scaling of the global blocks (the larger Gemma 3 files); no other kind.
        ropeScaleGlobal = 1
        if let type = meta.gguf.value(GGUFKey.ropeScalingType(arch: arch)) {
            guard let name = type.stringValue else {
                throw ModelError.badMetadata(key: GGUFKey.ropeScalingType(arch: arch), expected: "a string",
                                             found: type.typeName, path: path)
            }
            switch name {
            case "none": break
            case "linear":
                let factor = try meta.double(GGUFKey.ropeScalingFactor(arch: arch), default: 1)
                try check(factor > 0, "rope.scaling.factor", "a positive factor", String(factor))
                ropeScaleGlobal = 1 / factor
            default:
                try check(false, "rope.scaling.type", "'none' or 'linear'", "'\(name)'")
            }
        }
        // Gemma 2's attention soft-capping is not part of Gemma 3; a file that asks for it is refused.
        if meta.gguf.value(GGUFKey.attnLogitSoftcapping(arch: arch)) != nil {
            try check(false, "attn_logit_softcapping", "no attention soft-capping (Gemma 3 has none)", "a value")
        }
        if meta.gguf.value(GGUFKey.finalLogitSoftcapping(arch: arch)) != nil {
            let cap = try meta.double(GGUFKey.finalLogitSoftcapping(arch: arch), default: 0)
            try check(cap > 0, "final_logit_softcapping", "a positive cap", String(cap))
            finalLogitSoftcap = Float(cap)
        }
        attentionScale = blocks == 62 ? 1 / Float(width / heads).squareRoot() : 1 / Float(headDim).squareRoot()
    }
}

/// One block's weights. Matrices stay quantized in the memory map.
struct Gemma3Block: Sendable {
    var attnNorm: [Float]       // (width)
    var wq: QuantizedMatrix     // (qWidth, width)
    var wk: QuantizedMatrix     // (kvWidth, width)
    var wv: QuantizedMatrix     // (kvWidth, width)
    var qNorm: [Float]          // (headDim)
    var kNorm: [Float]          // (headDim)
    var wo: QuantizedMatrix     // (width, qWidth)
    var attnPostNorm: [Float]   // (width)
    var ffnNorm: [Float]        // (width)
    var gate: QuantizedMatrix   // (ffnWidth, width)
    var up: QuantizedMatrix     // (ffnWidth, width)
    var down: QuantizedMatrix   // (width, ffnWidth)
    var ffnPostNorm: [Float]    // (width)
}

/// A Gemma 3 model loaded from GGUF.
public final class Gemma3Model: LanguageModel {
    public let info: ModelInfo
    let config: Gemma3Config
    let embedding: QuantizedMatrix   // (vocab, width)
    let blocks: [Gemma3Block]
    /// Per block, `[wq, wk, wv]` and `[gate, up]` for decode's fused dispatch.
    let qkvGroups: [MatrixGroup]
    let gateUpGroups: [MatrixGroup]
    let outputNorm: [Float]          // (width)
    let output: QuantizedMatrix      // (vocab, width); the embedding when tied
    let pool: ThreadPool
    /// Inverse RoPE frequencies base^(-2j/ropeDims), j < ropeDims/2, in float64, for the
    /// sliding-window blocks and (scaling included) for the global ones.
    let ropeLocal: [Double]
    let ropeGlobal: [Double]
    /// How its sessions' KV caches store keys and values.
    public let kvCache: KVCacheStorage
    /// How decode's products take their input (8-bit only when asked for).
    public let activations: ActivationPrecision
    // Keeps the memory map (and so every matrix's data) alive.
    private let file: GGUFFile

    /// Loads the Gemma 3 model in `gguf`, its sessions' KV caches stored as `kvCache`, decode's
    /// products taking `activations`.
    public init(gguf: GGUFFile, pool: ThreadPool, kvCache: KVCacheStorage = .f32,
                activations: ActivationPrecision = .f32) throws {
        self.kvCache = kvCache
        self.activations = activations
        let meta = MetadataReader(gguf)
        let arch = try meta.string(GGUFKey.architecture)
        let tensors = TensorReader(gguf)
        guard let embd = gguf.tensor(named: GGUFTensorName.tokenEmbedding) else {
            throw ModelError.missingTensor(GGUFTensorName.tokenEmbedding, path: gguf.path)
        }
        let vocab = embd.shape.count == 2 ? embd.shape[1] : 0
        let c = try Gemma3Config(meta, arch: arch, vocab: vocab)
        config = c
        file = gguf
        self.pool = pool
        embedding = try tensors.matrix(GGUFTensorName.tokenEmbedding, rows: c.vocab, cols: c.width)
        var blocks: [Gemma3Block] = []
        blocks.reserveCapacity(c.blocks)
        for l in 0..<c.blocks {
            typealias N = GGUFTensorName
            blocks.append(Gemma3Block(
                attnNorm: try tensors.vector(N.attnNorm(block: l), count: c.width),
                wq: try tensors.matrix(N.attnQ(block: l), rows: c.qWidth, cols: c.width),
                wk: try tensors.matrix(N.attnK(block: l), rows: c.kvWidth, cols: c.width),
                wv: try tensors.matrix(N.attnV(block: l), rows: c.kvWidth, cols: c.width),
                qNorm: try tensors.vector(N.attnQNorm(block: l), count: c.headDim),
                kNorm: try tensors.vector(N.attnKNorm(block: l), count: c.headDim),
                wo: try tensors.matrix(N.attnOutput(block: l), rows: c.width, cols: c.qWidth),
                attnPostNorm: try tensors.vector(N.attnPostNorm(block: l), count: c.width),
                ffnNorm: try tensors.vector(N.ffnNorm(block: l), count: c.width),
                gate: try tensors.matrix(N.ffnGate(block: l), rows: c.ffnWidth, cols: c.width),
                up: try tensors.matrix(N.ffnUp(block: l), rows: c.ffnWidth, cols: c.width),
                down: try tensors.matrix(N.ffnDown(block: l), rows: c.width, cols: c.ffnWidth),
                ffnPostNorm: try tensors.vector(N.ffnPostNorm(block: l), count: c.width)))
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
        ropeLocal = BlockMath.ropeInverseFrequencies(base: c.ropeBaseLocal, ropeDims: c.ropeDims)
        ropeGlobal = BlockMath.ropeInverseFrequencies(base: c.ropeBaseGlobal, ropeDims: c.ropeDims,
                                                      scale: c.ropeScaleGlobal)
        info = ModelInfo(architecture: arch, blockCount: c.blocks, width: c.width,
                         vocabularySize: c.vocab, contextLength: c.context)
    }

    public func makeSession(capacity: Int? = nil) throws -> InferenceSession {
        try ModelSession(info: info, capacity: capacity, pool: pool) { capacity in
            Gemma3Pass(model: self, capacity: capacity)
        }
    }
}

/// One sequence's KV cache and scratch buffers (sized to the chunk it runs, `ChunkScratch`);
/// `ModelSession` feeds it chunks.
final class Gemma3Pass: ForwardPass {
    let model: Gemma3Model
    private let cache: KVCache
    private var scratch: ChunkScratch<Scratch>
    private var s: Scratch { scratch.buffers }
    /// Rows the scratch holds now: 1 between forward calls.
    var scratchRows: Int { scratch.rows }
    /// Decode's quantized inputs, in the 8-bit activation mode only.
    private let q8: Q8Vectors?

    /// Activations of one chunk; every buffer has room for `rows` positions.
    private struct Scratch: PassScratch {
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
        let cosLocal: UnsafeMutablePointer<Float>     // (rows, ropeDims / 2)
        let sinLocal: UnsafeMutablePointer<Float>     // (rows, ropeDims / 2)
        let cosGlobal: UnsafeMutablePointer<Float>    // (rows, ropeDims / 2)
        let sinGlobal: UnsafeMutablePointer<Float>    // (rows, ropeDims / 2)

        init(rows: Int, _ c: Gemma3Config) {
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
            cosLocal = buf(rows * c.ropeDims / 2); sinLocal = buf(rows * c.ropeDims / 2)
            cosGlobal = buf(rows * c.ropeDims / 2); sinGlobal = buf(rows * c.ropeDims / 2)
        }

        func free() {
            for p in [x, xn, q, k, v, att, proj, gate, up, cosLocal, sinLocal, cosGlobal, sinGlobal] {
                p.deallocate()
            }
        }
    }

    init(model: Gemma3Model, capacity: Int) {
        self.model = model
        let c = model.config
        cache = KVCache(blocks: c.blocks, kvHeads: c.kvHeads, headDim: c.headDim, heads: c.heads, capacity: capacity,
                        storage: model.kvCache)
        scratch = ChunkScratch(c)
        q8 = model.activations == .q8
            ? Q8Vectors(maxCols: (max(c.width, c.qWidth, c.ffnWidth) + 31) / 32 * 32) : nil
    }

    deinit {
        scratch.free()
    }

    func copyCache(from other: Gemma3Pass, positions: Int) {
        cache.copyPrefix(of: other.cache, positions: positions)
    }

    /// One pass of the layer loop over `chunk`, at positions `chunk.positions`.
    func run(_ chunk: ForwardChunk) {
        scratch.reserve(chunk.count)
        defer { scratch.release() }
        let m = model, c = m.config, pool = m.pool
        let n = chunk.count
        let p0 = chunk.start

        // Embedding lookup, scaled: x[i] = E[token_i] · √width.
        for (i, t) in chunk.tokens.enumerated() { m.embedding.dequantizeRow(t, into: s.x + i * c.width) }
        Vec.scale(s.x, Float(c.width).squareRoot(), n * c.width)
        chunk.hook(.embed, s.x)

        // RoPE angles for these positions, θ = p · scale · base^(-2j/d) in float64, for both bases.
        BlockMath.ropeAngles(start: p0, rows: n, inverse: m.ropeLocal, cos: s.cosLocal, sin: s.sinLocal)
        BlockMath.ropeAngles(start: p0, rows: n, inverse: m.ropeGlobal, cos: s.cosGlobal, sin: s.sinGlobal)

        // A partial pass runs only the blocks up to its last hook point.
        for l in chunk.blocks {
            let w = m.blocks[l]
            let global = c.isGlobal(block: l)
            chunk.hook(.residPre(l), s.x)

            // Attention: xn = RMSNorm(x); q, k, v projections; RMSNorm per q and k head; RoPE;
            // append k, v to the cache; attend (in the window on sliding-window blocks).
            rmsNorm(s.x, rows: n, weight: w.attnNorm, into: s.xn)
            if n == 1 {
                m.qkvGroups[l].multiply(s.xn, precision: m.activations, vectors: q8, into: s.qkvOut, pool: pool)
            } else {
                w.wq.multiply(s.xn, batch: n, into: s.q, pool: pool)
                w.wk.multiply(s.xn, batch: n, into: s.k, pool: pool)
                w.wv.multiply(s.xn, batch: n, into: s.v, pool: pool)
            }
            BlockMath.headNorm(s.q, rows: n, heads: c.heads, headDim: c.headDim, weight: w.qNorm, eps: c.rmsEps)
            BlockMath.headNorm(s.k, rows: n, heads: c.kvHeads, headDim: c.headDim, weight: w.kNorm, eps: c.rmsEps)
            let (cs, sn) = global ? (s.cosGlobal, s.sinGlobal) : (s.cosLocal, s.sinLocal)
            rope(s.q, rows: n, heads: c.heads, cos: cs, sin: sn)
            rope(s.k, rows: n, heads: c.kvHeads, cos: cs, sin: sn)
            cache.store(block: l, keys: s.k, values: s.v, rows: n, at: p0)
            cache.attend(block: l, queries: s.q, heads: c.heads, rows: n, start: p0,
                         scale: c.attentionScale, window: global ? nil : c.window, into: s.att, pool: pool)
            w.wo.multiply(s.att, batch: n, precision: m.activations, vectors: q8, into: s.proj, pool: pool)
            // The post-attention norm belongs to the attention's output, as TransformerLens has it.
            rmsNorm(s.proj, rows: n, weight: w.attnPostNorm, into: s.proj)
            chunk.hook(.attnOut(l), s.proj)
            Vec.add(s.x, s.proj, n * c.width)
            chunk.hook(.residMid(l), s.x)

            // MLP: RMSNorm(down(gelu(gate(xn)) * up(xn))).
            rmsNorm(s.x, rows: n, weight: w.ffnNorm, into: s.xn)
            if n == 1 {
                m.gateUpGroups[l].multiply(s.xn, precision: m.activations, vectors: q8, into: s.gateUpOut, pool: pool)
            } else {
                w.gate.multiply(s.xn, batch: n, into: s.gate, pool: pool)
                w.up.multiply(s.xn, batch: n, into: s.up, pool: pool)
            }
            Vec.geluTanhMul(s.gate, s.up, n * c.ffnWidth, pool: pool)
            w.down.multiply(s.gate, batch: n, precision: m.activations, vectors: q8, into: s.proj, pool: pool)
            rmsNorm(s.proj, rows: n, weight: w.ffnPostNorm, into: s.proj)
            chunk.hook(.mlpOut(l), s.proj)
            Vec.add(s.x, s.proj, n * c.width)
            chunk.hook(.residPost(l), s.x)
        }

        guard chunk.runsFinal else { return }
        rmsNorm(s.x, rows: n, weight: m.outputNorm, into: s.xn)
        chunk.hook(.finalNormalized, s.xn)

        // Output head, only over the rows whose logits were asked for; then the soft cap, if any.
        if let (rows, logits) = chunk.logits {
            m.output.multiply(s.xn + rows.lowerBound * c.width, batch: rows.count, precision: m.activations,
                              vectors: q8, into: logits, pool: pool)
            if let cap = c.finalLogitSoftcap {
                for i in 0..<(rows.count * c.vocab) { logits[i] = cap * tanh(logits[i] / cap) }
            }
        }
    }

    /// out[i] = RMSNorm(x[i]) · weight for each width-wide row; `out` may be `x`.
    private func rmsNorm(_ x: UnsafeMutablePointer<Float>, rows n: Int, weight: [Float],
                         into out: UnsafeMutablePointer<Float>) {
        let c = model.config
        BlockMath.rmsNorm(x, rows: n, width: c.width, weight: weight, eps: c.rmsEps, into: out)
    }

    /// Rotates the pairs (j, j + ropeDims/2) of the first ropeDims dimensions of every head.
    private func rope(_ x: UnsafeMutablePointer<Float>, rows n: Int, heads: Int,
                      cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let c = model.config
        BlockMath.rope(x, rows: n, heads: heads, headDim: c.headDim, ropeDims: c.ropeDims, layout: .halves,
                       cos: cos, sin: sin)
    }
}
