// A micro-benchmark of the hot kernels on synthetic weights of the default model's shapes
// (SmolLM2-135M: d_model 576, FFN 1536, vocab 49152), for `probity bench` and kernel work.

/// Times the quantized matrix products on random weights and reports throughput.
public enum KernelBenchmark {
    /// Runs each measurement at each thread count for about `seconds` and returns them by name:
    /// `gemv.<type>.<rows>x<cols>.t<N>.GBps` (weight bytes read per second, batch 1),
    /// `gemm.<type>.<rows>x<cols>.b512.t<N>.GFLOPs` (batch 512), and for the whole default
    /// model's matrices per token (30 blocks of Q4_1 plus the Q8_0 head), with weights rotated
    /// through memory rather than cache: `model.decode.t<N>.ms` and `model.prefill512.t<N>.tokps` (the blocks at batch 512, the head for the last position only).
    public static func run(threads: [Int] = [1, 2], seconds: Double = 0.5) -> [String: Double] {
        var results: [String: Double] = [:]
        var rng = SplitMix64(seed: 42)
        let gate = Weights(.q4_1, rows: 1536, cols: 576, rng: &rng)
        let head = Weights(.q8_0, rows: 49152, cols: 576, rng: &rng)
        let model = ModelWeights(rng: &rng)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: 512 * 1536)
        defer { x.deallocate() }
        for i in 0..<(512 * 1536) { x[i] = Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 512 * 49152)
        defer { out.deallocate() }

        for n in threads {
            let pool = ThreadPool(threads: n)
            for w in [gate, head] {
                let name = "\(w.matrix.type.name.lowercased()).\(w.matrix.rows)x\(w.matrix.cols)"
                let t = time(seconds) { w.matrix.multiply(x, batch: 1, into: out, pool: pool) }
                results["gemv.\(name).t\(n).GBps"] = Double(w.matrix.byteCount) / t / 1e9
            }
            let flops = 2.0 * 512 * Double(gate.matrix.rows * gate.matrix.cols)
            let t = time(seconds) { gate.matrix.multiply(x, batch: 512, into: out, pool: pool) }
            results["gemm.q4_1.1536x576.b512.t\(n).GFLOPs"] = flops / t / 1e9

            let decode = time(seconds) { model.forEachMatrix { $0.multiply(x, batch: 1, into: out, pool: pool) } }
            results["model.decode.t\(n).ms"] = decode * 1e3
            let prefill = time(seconds, minimumRuns: 1) {
                model.forEachBlockMatrix { $0.multiply(x, batch: 512, into: out, pool: pool) }
                model.head.matrix.multiply(x, batch: 1, into: out, pool: pool)  // logits of the last position
            }
            results["model.prefill512.t\(n).tokps"] = 512 / prefill
        }
        return results
    }

    /// Seconds per call: the best of repeated timings, after one warm-up call.
    private static func time(_ seconds: Double, minimumRuns: Int = 3, _ body: () -> Void) -> Double {
        body()
        let clock = ContinuousClock()
        var best = Double.infinity, spent = 0.0, runs = 0
        while spent < seconds || runs < minimumRuns {
            let start = clock.now
            body()
            let d = start.duration(to: clock.now)
            let s = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            best = min(best, s)
            spent += s
            runs += 1
        }
        return best
    }

    /// Random blocks with finite, moderate scales.
    private final class Weights {
        let bytes: UnsafeMutableRawPointer
        let matrix: QuantizedMatrix

        init(_ type: GGMLType, rows: Int, cols: Int, rng: inout SplitMix64) {
            let count = type.byteCount(elements: rows * cols) ?? 0
            bytes = .allocate(byteCount: count, alignment: 64)
            for i in stride(from: 0, to: count - 7, by: 8) { bytes.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
            let half: [UInt16] = [0x2000, 0x2400, 0x2800]  // 2^-7, 2^-6, 2^-5
            for block in stride(from: 0, to: count, by: type.bytesPerBlock) {
                bytes.storeBytes(of: half[Int(rng.next() % 3)], toByteOffset: block, as: UInt16.self)
                if type == .q4_1 || type == .q5_1 {
                    bytes.storeBytes(of: 0xA000 as UInt16, toByteOffset: block + 2, as: UInt16.self)
                }
            }
            do {
                matrix = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: bytes)
            } catch {
                preconditionFailure("benchmark matrix: \(error)")
            }
        }

        deinit { bytes.deallocate() }
    }

    /// The default model's matrices: 30 blocks of q, k, v, o, gate, up, down (Q4_1) and the head.
    private struct ModelWeights {
        var blocks: [[Weights]] = []
        let head: Weights

        init(rng: inout SplitMix64) {
            for _ in 0..<30 {
                blocks.append([
                    Weights(.q4_1, rows: 576, cols: 576, rng: &rng), Weights(.q4_1, rows: 192, cols: 576, rng: &rng),
                    Weights(.q4_1, rows: 192, cols: 576, rng: &rng), Weights(.q4_1, rows: 576, cols: 576, rng: &rng),
                    Weights(.q4_1, rows: 1536, cols: 576, rng: &rng), Weights(.q4_1, rows: 1536, cols: 576, rng: &rng),
                    Weights(.q4_1, rows: 576, cols: 1536, rng: &rng),
                ])
            }
            head = Weights(.q8_0, rows: 49152, cols: 576, rng: &rng)
        }

        func forEachBlockMatrix(_ body: (QuantizedMatrix) -> Void) {
            for block in blocks { for w in block { body(w.matrix) } }
        }

        func forEachMatrix(_ body: (QuantizedMatrix) -> Void) {
            forEachBlockMatrix(body)
            body(head.matrix)
        }
    }
}
