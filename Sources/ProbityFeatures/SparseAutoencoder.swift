// A sparse autoencoder's weights and math, following SAELens's inference SAEs (sae_lens/saes/*.py):
// input scaled (normalize_activations), b_dec subtracted, pre = x·W_enc + b_enc, the activation
// function, then x̂ = (f·W_dec + b_dec) / scale. Weights stay in their stored F32, F16 or BF16.

import ProbityTensor

/// An SAE: `W_enc [d_in, d_sae]`, `b_enc [d_sae]`, `W_dec [d_sae, d_in]`, `b_dec [d_in]`, and for
/// JumpReLU `threshold [d_sae]`, as SAELens stores them. `W_enc` and `W_dec` are kept in the
/// element type they were stored in (widening F16 to float would double the bytes every encode
/// reads); `W_enc` is held transposed, one row of d_in weights per latent, so that encoding is
/// a row-dot product per latent. Every product converts the weights exactly and accumulates in
/// float32; only the order of summation differs from a float32 sgemm.
public final class SparseAutoencoder: Sendable {
    public let config: SAEConfig
    /// The encoder's element type in memory (`.f32`, `.f16` or `.bf16`): the type it was stored in.
    public var weightType: GGMLType { encoder.matrix.type }
    /// The decoder's element type in memory.
    public var decoderWeightType: GGMLType { decoder.matrix.type }
    private let encoder: OwnedMatrix  // (dSAE, dIn): W_encᵀ
    private let decoder: OwnedMatrix  // (dSAE, dIn): W_dec
    // A Q8_0 copy of the encoder that bounds every pre-activation of one position, so decode
    // computes exactly only the latents that can be active (nil when d_in is not a multiple of 32).
    private let screen: ScreeningMatrix?
    public let bEnc: [Float]      // (dSAE)
    public let bDec: [Float]      // (dIn)
    public let threshold: [Float]? // (dSAE), JumpReLU only

    public var dIn: Int { config.dIn }
    public var dSAE: Int { config.dSAE }

    /// `W_enc` as floats, (d_in, d_sae) row-major.
    /// - Complexity: O(d_in · d_sae); this is a widened copy.
    public var wEnc: [Float] {
        let d = dIn, n = dSAE
        var out = [Float](repeating: 0, count: d * n)
        for i in 0..<n {
            let row = encoder.row(i)
            for j in 0..<d { out[j * n + i] = row[j] }
        }
        return out
    }

    /// `W_dec` as floats, (d_sae, d_in) row-major.
    /// - Complexity: O(d_in · d_sae); this is a widened copy.
    public var wDec: [Float] {
        var out: [Float] = []
        out.reserveCapacity(dIn * dSAE)
        for i in 0..<dSAE { out += decoder.row(i) }
        return out
    }

    /// Builds an SAE from float weights, checking every shape and that every value is finite.
    /// `weightType` `.f16` or `.bf16` rounds W_enc and W_dec to that type (nearest, ties to even),
    /// as saving them in it would. `path` names the weights in errors.
    public convenience init(config: SAEConfig, wEnc: [Float], bEnc: [Float], wDec: [Float], bDec: [Float],
                            threshold: [Float]?, weightType: GGMLType = .f32, path: String = "<memory>") throws {
        let d = config.dIn, n = config.dSAE
        for (name, values, shape) in [("W_enc", wEnc, [d, n]), ("W_dec", wDec, [n, d])] {
            guard values.count == d * n else {
                throw FeatureError.tensorShape(path: path, name: name, expected: shape, found: [values.count])
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw FeatureError.nonFinite(path: path, name: name, index: bad)
            }
        }
        let encoder = try SAEWeights.matrix(type: weightType, rows: n, cols: d) { i, j in wEnc[j * n + i] }
        let decoder = try SAEWeights.matrix(type: weightType, rows: n, cols: d) { i, j in wDec[i * d + j] }
        try self.init(config: config, encoder: encoder, decoder: decoder, bEnc: bEnc, bDec: bDec,
                      threshold: threshold, path: path)
    }

    /// Builds an SAE from weights already laid out: `encoder` holds W_encᵀ (d_sae rows of d_in),
    /// `decoder` W_dec (d_sae rows of d_in), each F32, F16 or BF16 with finite values.
    init(config: SAEConfig, encoder: OwnedMatrix, decoder: OwnedMatrix, bEnc: [Float], bDec: [Float],
         threshold: [Float]?, path: String) throws {
        let d = config.dIn, n = config.dSAE
        for (name, m) in [("W_enc", encoder.matrix), ("W_dec", decoder.matrix)] {
            guard m.rows == n, m.cols == d else {
                throw FeatureError.tensorShape(path: path, name: name, expected: name == "W_enc" ? [d, n] : [n, d],
                                               found: name == "W_enc" ? [m.cols, m.rows] : [m.rows, m.cols])
            }
            precondition([.f32, .f16, .bf16].contains(m.type), "SAE weights of type \(m.type.name)")
        }
        let expected: [(String, [Float]?, Int)] = [("b_enc", bEnc, n), ("b_dec", bDec, d)]
        for (name, values, count) in expected {
            guard let values, values.count == count else {
                throw FeatureError.tensorShape(path: path, name: name, expected: [count], found: [values?.count ?? 0])
            }
        }
        if case .jumpReLU = config.architecture {
            guard let threshold else { throw FeatureError.missingTensor(path: path, name: "threshold") }
            guard threshold.count == n else {
                throw FeatureError.tensorShape(path: path, name: "threshold", expected: [n], found: [threshold.count])
            }
        }
        for (name, values) in [("b_enc", bEnc), ("b_dec", bDec), ("threshold", threshold ?? [])] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw FeatureError.nonFinite(path: path, name: name, index: bad)
            }
        }
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        screen = ScreeningMatrix(encoder.matrix)
        self.bEnc = bEnc
        self.bDec = bDec
        self.threshold = config.architecture == .jumpReLU ? threshold : nil
    }

    /// The input scale of one position: SAELens multiplies the input by it before encoding and
    /// divides the reconstruction by it after decoding.
    func inputScale(_ x: UnsafePointer<Float>) -> Float {
        switch config.normalization {
        case .none, .expectedAverageOnlyIn(nil): return 1
        case .expectedAverageOnlyIn(let s?): return s
        case .constantNormRescale:
            var ss: Float = 0
            for j in 0..<dIn { ss += x[j] * x[j] }
            // A zero vector has no direction to rescale; leave it as is rather than divide by 0.
            return ss > 0 ? Float(Double(dIn).squareRoot()) / ss.squareRoot() : 1
        }
    }

    /// Encodes `count` positions (`x`: count × d_in, row-major) at once, on `pool`'s threads
    /// (nil: the calling thread only).
    /// - Complexity: one (count × d_in) · (d_in × d_sae) product, split by latents across the pool
    ///   (dequantized panels for many positions), plus O(count · d_sae) for the activation. One
    ///   position is screened first: a pass over a Q8_0 copy of W_enc (half an F16 matrix's bytes)
    ///   bounds every pre-activation, and only latents that can be active get their exact dot.
    public func encode(_ x: UnsafePointer<Float>, count: Int, pool: ThreadPool? = nil) -> SAEEncoding {
        encode(x, count: count, pool: pool, screening: true)
    }

    /// `encode` with screening on or off (off: every latent's dot; tests compare the two).
    func encode(_ x: UnsafePointer<Float>, count: Int, pool: ThreadPool?, screening: Bool) -> SAEEncoding {
        let d = dIn, n = dSAE
        var scales = [Float](repeating: 1, count: count)
        var input = [Float](repeating: 0, count: count * d)   // (count, dIn)
        var pre = [Float](repeating: 0, count: count * n)     // (count, dSAE)
        var ranked = [[Int]?](repeating: nil, count: count)
        let bias: Float = config.applyBDecToInput ? 1 : 0
        for r in 0..<count {
            let row = x + r * d
            let c = inputScale(row)
            scales[r] = c
            for j in 0..<d { input[r * d + j] = c * row[j] - bias * bDec[j] }
        }
        guard count > 0 else { return SAEEncoding(count: 0, dSAE: n, latents: [], scales: [], ranked: []) }
        let pool = pool ?? Self.callerOnly
        input.withUnsafeBufferPointer { a in
            pre.withUnsafeMutableBufferPointer { c in
                guard let ap = a.baseAddress, let cp = c.baseAddress else { return }
                if count == 1, screening, let screen, screenedPreActivations(ap, screen: screen, into: cp, pool: pool) {
                    // Bias added, latents that cannot be active at −∞.
                } else {
                    encoder.matrix.multiply(ap, batch: count, into: cp, pool: pool)
                    for r in 0..<count { Vec.add(cp + r * n, bEnc, n) }
                }
                ranked.withUnsafeMutableBufferPointer { rk in
                    guard let rp = rk.baseAddress else { return }
                    // Positions are independent: several per item so each item is worth a dispatch.
                    let per = 8
                    pool.parallelFor((count + per - 1) / per) { item in
                        for r in (item * per)..<min(count, (item + 1) * per) {
                            rp[r] = activate(cp + r * n)
                        }
                    }
                }
            }
        }
        return SAEEncoding(count: count, dSAE: n, latents: pre, scales: scales, ranked: ranked)
    }

    /// One position's pre-activations (bias included) for the latents that can be nonzero after
    /// the activation, the same bits the full product gives them; −∞ for the rest, which the
    /// activation turns into 0 exactly as it would their true values. A latent is left out only
    /// when its bound proves it: below the k-th largest lower bound (TopK), at most 0 (ReLU), or
    /// at most its threshold (JumpReLU). Returns false (nothing written) for non-finite input.
    private func screenedPreActivations(_ x: UnsafePointer<Float>, screen: ScreeningMatrix,
                                        into pre: UnsafeMutablePointer<Float>, pool: ThreadPool) -> Bool {
        let n = dSAE
        var approx = [Float](repeating: 0, count: n), bound = [Float](repeating: 0, count: n)
        approx.withUnsafeMutableBufferPointer { a in
            bound.withUnsafeMutableBufferPointer { b in
                if let ap = a.baseAddress, let bp = b.baseAddress { screen.screen(x, approx: ap, bound: bp, pool: pool) }
            }
        }
        // Bounds on pre = fl(product + b_enc), in double so that forming them rounds nothing away.
        let u = 0x1p-24
        var low = [Double](repeating: 0, count: n), high = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let a = Double(approx[i]), b = Double(bEnc[i]), e0 = Double(bound[i])
            guard a.isFinite, e0.isFinite else { return false }
            let e = e0 * (1 + 1e-6) + 4 * u * (abs(a) + abs(b) + e0) + 0x1p-140
            low[i] = a + b - e
            high[i] = a + b + e
        }
        var candidates: [Int] = []
        switch config.architecture {
        case .topK(let k):
            guard k < n else { return false }
            let tau = Self.kthLargest(low, k)
            for i in 0..<n where high[i] >= tau { candidates.append(i) }
        case .standard:
            for i in 0..<n where high[i] > 0 { candidates.append(i) }
        case .jumpReLU:
            let t = threshold ?? []
            for i in 0..<n where high[i] > 0 && high[i] > Double(t[i]) { candidates.append(i) }
        }
        pre.update(repeating: -.infinity, count: n)
        encoder.matrix.multiply(x, selected: candidates, into: pre, pool: pool)
        for i in candidates { pre[i] += bEnc[i] }
        return true
    }

    /// The k-th largest of `values` (k ≥ 1, k ≤ count).
    /// - Complexity: O(count) expected (quickselect).
    static func kthLargest(_ values: [Double], _ k: Int) -> Double {
        var v = values
        var lo = 0, hi = v.count - 1
        let target = k - 1   // index in descending order
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        while lo < hi {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let p = v[lo + Int((seed >> 33) % UInt64(hi - lo + 1))]
            var i = lo, j = hi
            while i <= j {
                while v[i] > p { i += 1 }
                while v[j] < p { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return v[target] }
        }
        return v[target]
    }

    /// A pool of the calling thread alone, for callers that pass none.
    private static let callerOnly = ThreadPool(threads: 1)

    /// Applies the activation function in place to one position's pre-activations. Returns the
    /// nonzero latents largest first when the activation finds them anyway (TopK), else nil.
    func activate(_ f: UnsafeMutablePointer<Float>) -> [Int]? {
        let n = dSAE
        switch config.architecture {
        case .standard:
            for i in 0..<n { f[i] = max(f[i], 0) }
            return nil
        case .jumpReLU:
            // SAELens: relu(pre) · (pre > threshold); a pre-activation equal to the threshold is off.
            let t = threshold ?? []
            for i in 0..<n { f[i] = f[i] > t[i] && f[i] > 0 ? f[i] : 0 }
            return nil
        case .topK(let k):
            let keep = Vec.topIndices(UnsafeBufferPointer(start: f, count: n), k: k)
            var kept = [Float](repeating: 0, count: keep.count)
            for (slot, i) in keep.enumerated() { kept[slot] = max(f[i], 0) }
            f.update(repeating: 0, count: n)
            for (slot, i) in keep.enumerated() { f[i] = kept[slot] }
            // Largest first with ties by index, as `active` orders them; ReLU'd ones dropped.
            return keep.filter { f[$0] != 0 }
        }
    }

    /// Decodes one position's latents: x̂ = (f·W_dec + b_dec) / scale, into `out` (d_in floats).
    /// - Complexity: O(d_sae) to find the nonzero latents, O(d_in) per nonzero latent.
    public func decode(_ f: UnsafePointer<Float>, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let nonzero = (0..<dSAE).filter { f[$0] != 0 }
        decode(f, nonzero: nonzero, scale: scale, into: out)
    }

    /// Decodes position `r` of an encoding (its known nonzero latents when the encoding has them).
    public func decode(_ e: SAEEncoding, row r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < e.count && e.dSAE == dSAE, "row \(r) of another encoding")
        e.latents.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { return }
            let f = base + r * dSAE
            decode(f, nonzero: e.nonzero(r), scale: e.scales[r], into: out)
        }
    }

    /// x̂ from the latents at `nonzero` (ascending), summed in index order.
    private func decode(_ f: UnsafePointer<Float>, nonzero: [Int], scale: Float, into out: UnsafeMutablePointer<Float>) {
        let d = dIn
        for j in 0..<d { out[j] = bDec[j] }
        withDecoderRows { row in
            for i in nonzero { Vec.axpy(f[i], row(i), out, d) }
        }
        let inv = 1 / scale
        if inv != 1 { for j in 0..<d { out[j] *= inv } }
    }

    /// Calls `body` with a function giving decoder row `i` as floats (valid until the next call).
    private func withDecoderRows(_ body: ((Int) -> UnsafePointer<Float>) -> Void) {
        let m = decoder.matrix
        if m.type == .f32 {
            let base = m.data.assumingMemoryBound(to: Float.self)
            body { base + $0 * m.cols }
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(m.cols, 1)) { buf in
            guard let p = buf.baseAddress else { return }
            body { i in
                m.dequantizeRow(i, into: p)
                return UnsafePointer(p)
            }
        }
    }

    /// Adds `W_dec[i] · delta / scale` to `x`: the change in the reconstruction when latent `i`
    /// moves by `delta`, which is how an edit is written back without touching the error term.
    public func addDecoderRow(_ i: Int, times delta: Float, scale: Float, to x: UnsafeMutablePointer<Float>) {
        precondition(i >= 0 && i < dSAE, "latent \(i) outside 0..<\(dSAE)")
        withDecoderRows { row in Vec.axpy(delta / scale, row(i), x, dIn) }
    }

    /// Latent `i`'s decoder row (its direction in the model's activations).
    public func decoderRow(_ i: Int) -> [Float] {
        precondition(i >= 0 && i < dSAE, "latent \(i) outside 0..<\(dSAE)")
        return decoder.row(i)
    }

    /// Latent `i`'s encoder weights (column `i` of W_enc) as floats.
    public func encoderRow(_ i: Int) -> [Float] {
        precondition(i >= 0 && i < dSAE, "latent \(i) outside 0..<\(dSAE)")
        return encoder.row(i)
    }
}

/// Building SAE weight matrices in their element type.
enum SAEWeights {
    /// A rows × cols matrix of `type` (F32, F16 or BF16) with element (i, j) = `value(i, j)`,
    /// rounded to nearest (ties to even) for the 16-bit types.
    static func matrix(type: GGMLType, rows: Int, cols: Int, value: (Int, Int) -> Float) throws -> OwnedMatrix {
        try OwnedMatrix(type: type, rows: rows, cols: cols) { raw in
            switch type {
            case .f32:
                let p = raw.bindMemory(to: Float.self)
                for i in 0..<rows { for j in 0..<cols { p[i * cols + j] = value(i, j) } }
            case .f16:
                let p = raw.bindMemory(to: UInt16.self)
                for i in 0..<rows { for j in 0..<cols { p[i * cols + j] = HalfPrecision.halfBits(value(i, j)) } }
            case .bf16:
                let p = raw.bindMemory(to: UInt16.self)
                for i in 0..<rows { for j in 0..<cols { p[i * cols + j] = HalfPrecision.bfloat16Bits(value(i, j)) } }
            default:
                preconditionFailure("SAE weights of type \(type.name)")
            }
        }
    }
}

/// The latents of the positions of one step, with each position's input scale.
public struct SAEEncoding: Sendable {
    public let count: Int
    public let dSAE: Int
    /// (count, dSAE), row-major.
    public private(set) var latents: [Float]
    /// Each position's input scale (1 without normalisation).
    public let scales: [Float]
    // Per position, its nonzero latents largest first (ties: lower index first) when the
    // activation already knew them (TopK); nil where they must be found by a scan.
    private var ranked: [[Int]?]

    init(count: Int, dSAE: Int, latents: [Float], scales: [Float], ranked: [[Int]?]) {
        self.count = count
        self.dSAE = dSAE
        self.latents = latents
        self.scales = scales
        self.ranked = ranked
    }

    /// Latent `i` of position `r`.
    public func latent(_ i: Int, row r: Int) -> Float { latents[r * dSAE + i] }

    /// Sets latent `i` of position `r` (an intervention's edit).
    public mutating func setLatent(_ i: Int, row r: Int, to value: Float) {
        latents[r * dSAE + i] = value
        ranked[r] = nil
    }

    /// Position `r`'s nonzero latents, largest first (ties: lower index first), at most `limit`.
    public func active(_ r: Int, limit: Int = .max) -> [ActiveLatent] {
        let n = dSAE
        if let known = ranked[r] {
            return known.prefix(max(limit, 0)).map { ActiveLatent(index: $0, activation: latents[r * n + $0]) }
        }
        return latents.withUnsafeBufferPointer { all in
            let row = UnsafeBufferPointer(rebasing: all[(r * n)..<((r + 1) * n)])
            let nonzero = l0(r)
            return Vec.topIndices(row, k: min(limit, nonzero)).map { ActiveLatent(index: $0, activation: row[$0]) }
        }
    }

    /// Position `r`'s number of nonzero latents.
    public func l0(_ r: Int) -> Int {
        if let known = ranked[r] { return known.count }
        var count = 0
        for i in (r * dSAE)..<((r + 1) * dSAE) where latents[i] != 0 { count += 1 }
        return count
    }

    /// Position `r`'s nonzero latents in ascending index order.
    func nonzero(_ r: Int) -> [Int] {
        if let known = ranked[r] { return known.sorted() }
        return (0..<dSAE).filter { latents[r * dSAE + $0] != 0 }
    }
}

/// One latent that fired, and how strongly.
public struct ActiveLatent: Sendable, Equatable, Codable {
    public var index: Int
    public var activation: Float
}
