// The Llama architecture as llama.cpp builds it (src/models/llama.cpp): token embedding, per
// block RMSNorm → attention with RoPE and grouped-query heads → residual, RMSNorm → SwiGLU MLP →
// residual; final RMSNorm; output head (tied to the embedding when `output.weight` is absent).
// The families that share this block (Qwen2, Qwen3, Phi-3; DecoderFamily.swift) load and run here
// with their differences as data: RoPE pair layout, q/k/v biases, per-head q/k norms, fused q/k/v
// and gate/up tensors, RoPE frequency factors.

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
    var ropeLayout: RopeLayout
    var headNorms: Bool
    var rmsEps: Float
    var vocab: Int
    var context: Int

    var qWidth: Int { heads * headDim }
    var kvWidth: Int { kvHeads * headDim }
    /// The widest input of a product, in whole blocks of 32 (decode's 8-bit inputs).
    var q8Width: Int { (max(width, qWidth, ffnWidth) + 31) / 32 * 32 }

    init(_ meta: MetadataReader, family: DecoderFamily, vocab: Int) throws {
        let arch = family.architecture
        ropeLayout = family.ropeLayout
        headNorms = family.headNorms
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
        let valueDim = try meta.int(GGUFKey.valueLength(arch: arch), default: headDim)
        try check(valueDim == headDim, "attention.value_length", "the key length \(headDim)", valueDim)
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
    var qNorm: [Float]?         // (headDim), with kNorm when the family norms heads
    var kNorm: [Float]?
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

    /// Takes block `l`'s updates; nil when there are none. Fused tensors (`attn_qkv`, Phi-3's
    /// gate-and-up `ffn_up`) take none, so an adapter for them is refused at load.
    init?(block l: Int, fusedQKV: Bool, fusedGateUp: Bool, from adapters: inout LoRAUpdates) {
        typealias N = GGUFTensorName
        q = fusedQKV ? [] : adapters.take(N.attnQ(block: l))
        k = fusedQKV ? [] : adapters.take(N.attnK(block: l))
        v = fusedQKV ? [] : adapters.take(N.attnV(block: l))
        o = adapters.take(N.attnOutput(block: l))
        gate = fusedGateUp ? [] : adapters.take(N.ffnGate(block: l))
        up = fusedGateUp ? [] : adapters.take(N.ffnUp(block: l))
        down = adapters.take(N.ffnDown(block: l))
        if [q, k, v, o, gate, up, down].allSatisfy(\.isEmpty) { return nil }
    }
}

/// A model of one of the Llama-style families (`DecoderFamily.all`) loaded from GGUF.
public final class LlamaModel: LanguageModel {
    public let info: ModelInfo
    public let family: DecoderFamily
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
    /// Inverse RoPE frequencies base^(-2j/ropeDims) / factor[j], j < ropeDims/2, in float64.
    let ropeInverseFrequencies: [Double]
    /// How its sessions' KV caches store keys and values.
    public let kvCache: KVCacheStorage
    /// How decode's products take their input (8-bit only when asked for).
    public let activations: ActivationPrecision
    // Keeps the memory map (and so every matrix's data) alive.
    private let file: GGUFFile

    /// Loads the model in `gguf` (any architecture of `DecoderFamily.all`), with `adapters`'
    /// low-rank updates on its products, its sessions' KV caches stored as `kvCache`, decode's
    /// products taking `activations`.
    public init(gguf: GGUFFile, pool: ThreadPool, adapters: LoRAUpdates = .none, kvCache: KVCacheStorage = .f32,
                activations: ActivationPrecision = .f32) throws {
        self.kvCache = kvCache
        self.activations = activations
        let meta = MetadataReader(gguf)
        let arch = try meta.string(GGUFKey.architecture)
        guard let family = DecoderFamily.all.first(where: { $0.architecture == arch }) else {
            throw ModelError.unsupportedArchitecture(arch, supported: DecoderFamily.all.map(\.architecture))
        }
        for (name, reason) in family.refusedTensors where gguf.tensor(named: name) != nil {
            throw ModelError.unsupportedVariant(tensor: name, reason: reason, path: gguf.path)
        }
        let tensors = TensorReader(gguf)
        guard let embd = gguf.tensor(named: GGUFTensorName.tokenEmbedding) else {
            throw ModelError.missingTensor(GGUFTensorName.tokenEmbedding, path: gguf.path)
        }
        let vocab = embd.shape.count == 2 ? embd.shape[1] : 0
        let c = try LlamaConfig(meta, family: family, vocab: vocab)
        self.family = family
        config = c
        file = gguf
        self.pool = pool
        embedding = try tensors.matrix(GGUFTensorName.tokenEmbedding, rows: c.vocab, cols: c.width)
        var blocks: [LlamaBlock] = []
        blocks.reserveCapacity(c.blocks)
        let fusedQKV = gguf.tensor(named: GGUFTensorName.attnQKV(block: 0)) != nil
        for l in 0..<c.blocks {
            typealias N = GGUFTensorName
            let attention = try Self.attentionProjections(tensors, block: l, fused: fusedQKV, c)
            let (gate, up) = try Self.gateUp(tensors, block: l, fused: family.fusedGateUp, c)
            blocks.append(LlamaBlock(
                attnNorm: try tensors.vector(N.attnNorm(block: l), count: c.width),
                wq: attention.q, wk: attention.k, wv: attention.v,
                wo: try tensors.matrix(N.attnOutput(block: l), rows: c.width, cols: c.qWidth),
                bq: attention.bq, bk: attention.bk, bv: attention.bv,
                qNorm: family.headNorms ? try tensors.vector(N.attnQNorm(block: l), count: c.headDim) : nil,
                kNorm: family.headNorms ? try tensors.vector(N.attnKNorm(block: l), count: c.headDim) : nil,
                ffnNorm: try tensors.vector(N.ffnNorm(block: l), count: c.width),
                gate: gate, up: up,
                down: try tensors.matrix(N.ffnDown(block: l), rows: c.width, cols: c.ffnWidth)))
        }
        var adapters = adapters
        if !adapters.isEmpty {
            for l in 0..<c.blocks {
                blocks[l].lora = LlamaBlockLoRA(block: l, fusedQKV: fusedQKV, fusedGateUp: family.fusedGateUp,
                                                from: &adapters)
            }
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
        let factors = family.ropeFrequencyFactors
            ? try tensors.optionalVector(GGUFTensorName.ropeFrequencies, count: c.ropeDims / 2) : nil
        if let factors, let bad = factors.first(where: { !($0.isFinite && $0 > 0) }) {
            throw ModelError.badMetadata(key: GGUFTensorName.ropeFrequencies, expected: "positive finite factors",
                                         found: String(bad), path: gguf.path)
        }
        ropeInverseFrequencies = BlockMath.ropeInverseFrequencies(base: c.ropeBase, ropeDims: c.ropeDims,
                                                                  factors: factors)
        info = ModelInfo(architecture: arch, blockCount: c.blocks, width: c.width,
                         vocabularySize: c.vocab, contextLength: c.context)
    }

    public func makeSession(capacity: Int? = nil) throws -> InferenceSession {
        try ModelSession(info: info, capacity: capacity, pool: pool) { capacity in
            LlamaPass(model: self, capacity: capacity)
        }
    }

    /// q, k, v and their optional biases: separate tensors, or row ranges of a fused `attn_qkv`
    /// (q, then k, then v, as llama.cpp's create_tensor_qkv reads it).
    private static func attentionProjections(_ t: TensorReader, block l: Int, fused: Bool, _ c: LlamaConfig) throws
        -> (q: QuantizedMatrix, k: QuantizedMatrix, v: QuantizedMatrix, bq: [Float]?, bk: [Float]?, bv: [Float]?) {
        typealias N = GGUFTensorName
        let qEnd = c.qWidth, kEnd = c.qWidth + c.kvWidth, vEnd = c.qWidth + 2 * c.kvWidth
        if fused {
            let qkv = try t.matrix(N.attnQKV(block: l), rows: vEnd, cols: c.width)
            var biases: ([Float]?, [Float]?, [Float]?) = (nil, nil, nil)
            if let b = try t.optionalVector(N.attnQKVBias(block: l), count: vEnd) {
                biases = (Array(b[0..<qEnd]), Array(b[qEnd..<kEnd]), Array(b[kEnd..<vEnd]))
            } else {
                biases = (try t.optionalVector(N.attnQBias(block: l), count: c.qWidth),
                          try t.optionalVector(N.attnKBias(block: l), count: c.kvWidth),
                          try t.optionalVector(N.attnVBias(block: l), count: c.kvWidth))
            }
            return (try qkv.rows(0..<qEnd), try qkv.rows(qEnd..<kEnd), try qkv.rows(kEnd..<vEnd),
                    biases.0, biases.1, biases.2)
        }
        return (try t.matrix(N.attnQ(block: l), rows: c.qWidth, cols: c.width),
                try t.matrix(N.attnK(block: l), rows: c.kvWidth, cols: c.width),
                try t.matrix(N.attnV(block: l), rows: c.kvWidth, cols: c.width),
                try t.optionalVector(N.attnQBias(block: l), count: c.qWidth),
                try t.optionalVector(N.attnKBias(block: l), count: c.kvWidth),
                try t.optionalVector(N.attnVBias(block: l), count: c.kvWidth))
    }

    /// The MLP's gate and up projections: two tensors, or the halves of one `ffn_up` of 2·ffn rows
    /// (gate first).
    private static func gateUp(_ t: TensorReader, block l: Int, fused: Bool, _ c: LlamaConfig) throws
        -> (gate: QuantizedMatrix, up: QuantizedMatrix) {
        typealias N = GGUFTensorName
        if fused {
            let both = try t.matrix(N.ffnUp(block: l), rows: 2 * c.ffnWidth, cols: c.width)
            return (try both.rows(0..<c.ffnWidth), try both.rows(c.ffnWidth..<(2 * c.ffnWidth)))
        }
        return (try t.matrix(N.ffnGate(block: l), rows: c.ffnWidth, cols: c.width),
                try t.matrix(N.ffnUp(block: l), rows: c.ffnWidth, cols: c.width))
    }
}

/// One sequence's KV cache and scratch buffers (sized to the chunk it runs, `ChunkScratch`);
/// `ModelSession` feeds it chunks.
final class LlamaPass: ForwardPass {
    let model: LlamaModel
    let cache: KVCache
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

    init(model: LlamaModel, capacity: Int) {
        self.model = model
        let c = model.config
        cache = KVCache(blocks: c.blocks, kvHeads: c.kvHeads, headDim: c.headDim, heads: c.heads, capacity: capacity,
                        storage: model.kvCache)
        scratch = ChunkScratch(c)
        q8 = model.activations == .q8 ? Q8Vectors(maxCols: c.q8Width) : nil
    }

    deinit {
        scratch.free()
    }

    func copyCache(from other: LlamaPass, positions: Int) {
        cache.copyPrefix(of: other.cache, positions: positions)
    }

    /// One pass of the layer loop over `chunk`, at positions `chunk.positions`.
    func run(_ chunk: ForwardChunk) {
        scratch.reserve(chunk.count)
        defer { scratch.release() }
        let m = model, c = m.config, pool = m.pool
        let n = chunk.count
        let p0 = chunk.start

        // Embedding lookup: x[i] = E[token_i].
        for (i, t) in chunk.tokens.enumerated() { m.embedding.dequantizeRow(t, into: s.x + i * c.width) }
        chunk.hook(.embed, s.x)

        // RoPE angles for these positions: θ = p · base^(-2j/d) / factor[j], computed in float64.
        BlockMath.ropeAngles(start: p0, rows: n, inverse: m.ropeInverseFrequencies, cos: s.cos, sin: s.sin)

        // A partial pass runs only the blocks up to its last hook point.
        for l in chunk.blocks {
            let w = m.blocks[l]
            chunk.hook(.residPre(l), s.x)

            // Attention: xn = RMSNorm(x); q, k, v projections (+ biases); RMSNorm per q and k head
            // (Qwen3); RoPE; append k, v to the cache.
            rmsNorm(rows: n, weight: w.attnNorm)
            if n == 1 {
                m.qkvGroups[l].multiply(s.xn, precision: m.activations, vectors: q8, into: s.qkvOut, pool: pool)
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
            if let b = w.bq { BlockMath.addBias(b, to: s.q, rows: n) }
            if let b = w.bk { BlockMath.addBias(b, to: s.k, rows: n) }
            if let b = w.bv { BlockMath.addBias(b, to: s.v, rows: n) }
            if let qn = w.qNorm, let kn = w.kNorm {
                BlockMath.headNorm(s.q, rows: n, heads: c.heads, headDim: c.headDim, weight: qn, eps: c.rmsEps)
                BlockMath.headNorm(s.k, rows: n, heads: c.kvHeads, headDim: c.headDim, weight: kn, eps: c.rmsEps)
            }
            rope(s.q, rows: n, heads: c.heads)
            rope(s.k, rows: n, heads: c.kvHeads)
            cache.store(block: l, keys: s.k, values: s.v, rows: n, at: p0)
            cache.attend(block: l, queries: s.q, heads: c.heads, rows: n, start: p0,
                         scale: 1 / Float(c.headDim).squareRoot(), into: s.att, pool: pool)
            product(w.wo, s.att, rows: n, into: s.proj)
            if let a = w.lora { a.o.apply(s.att, batch: n, into: s.proj) }
            chunk.hook(.attnOut(l), s.proj)
            Vec.add(s.x, s.proj, n * c.width)
            chunk.hook(.residMid(l), s.x)

            // MLP: down(silu(gate(xn)) * up(xn)).
            rmsNorm(rows: n, weight: w.ffnNorm)
            if n == 1 {
                m.gateUpGroups[l].multiply(s.xn, precision: m.activations, vectors: q8, into: s.gateUpOut, pool: pool)
            } else {
                w.gate.multiply(s.xn, batch: n, into: s.gate, pool: pool)
                w.up.multiply(s.xn, batch: n, into: s.up, pool: pool)
            }
            if let a = w.lora {
                a.gate.apply(s.xn, batch: n, into: s.gate)
                a.up.apply(s.xn, batch: n, into: s.up)
            }
            Vec.siluMul(s.gate, s.up, n * c.ffnWidth, pool: pool)
            product(w.down, s.gate, rows: n, into: s.proj)
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
            product(m.output, s.xn + rows.lowerBound * c.width, rows: rows.count, into: logits)
            m.outputLoRA.apply(s.xn + rows.lowerBound * c.width, batch: rows.count, into: logits)
        }
    }

    /// out = w · x for `rows` rows: one row (decode) in the model's activation precision, more
    /// (prefill, teacher-forced passes) always in float32.
    private func product(_ w: QuantizedMatrix, _ x: UnsafePointer<Float>, rows n: Int,
                         into out: UnsafeMutablePointer<Float>) {
        w.multiply(x, batch: n, precision: model.activations, vectors: q8, into: out, pool: model.pool)
    }

    /// xn[i] = RMSNorm(x[i]) · weight for each row.
    private func rmsNorm(rows n: Int, weight: [Float]) {
        let c = model.config
        BlockMath.rmsNorm(s.x, rows: n, width: c.width, weight: weight, eps: c.rmsEps, into: s.xn)
    }

    /// RoPE on the first ropeDims dimensions of every head, pairs as the family lays them out.
    private func rope(_ x: UnsafeMutablePointer<Float>, rows n: Int, heads: Int) {
        let c = model.config
        BlockMath.rope(x, rows: n, heads: heads, headDim: c.headDim, ropeDims: c.ropeDims, layout: c.ropeLayout,
                       cos: s.cos, sin: s.sin)
    }
}

extension GGUFTensorName {
    // Optional projection biases (Qwen2-style files) and the fused projection (Phi-3).
    static func attnQKV(block: Int) -> String { "blk.\(block).attn_qkv.weight" }
    static func attnQKVBias(block: Int) -> String { "blk.\(block).attn_qkv.bias" }
    static func attnQBias(block: Int) -> String { "blk.\(block).attn_q.bias" }
    static func attnKBias(block: Int) -> String { "blk.\(block).attn_k.bias" }
    static func attnVBias(block: Int) -> String { "blk.\(block).attn_v.bias" }
}
