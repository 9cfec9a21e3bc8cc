// Vector kernels of the forward pass (SIMD), each with a plain float64 twin in `Vec.Reference`
// that the tests hold them to. Formulas follow ggml's ggml_vec_* and rms_norm.
import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Vector kernels over raw float buffers of length `n`.
public enum Vec {
    /// Σ a[i]·b[i], accumulated in float.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        pk_dot_f32(a, b, n)
    }

    /// out = x / sqrt(mean(x²) + eps) · weight. `out` may be `x`.
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, _ n: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        // The sum of squares in double, as ggml does, so long rows lose nothing to rounding.
        var sum = 0.0
        var i = 0
        var acc = SIMD8<Float>()
        var lanes = 0
        while i + 8 <= n {
            let v = load8(x + i)
            acc.addProduct(v, v)
            i += 8
            lanes += 1
            if lanes == 64 {  // flush before the float lanes grow long
                sum += acc.sumInDouble
                acc = SIMD8<Float>()
                lanes = 0
            }
        }
        sum += acc.sumInDouble
        while i < n { sum += Double(x[i]) * Double(x[i]); i += 1 }
        let scale = Float(1.0 / (sum / Double(max(n, 1)) + Double(eps)).squareRoot())
        i = 0
        while i + 8 <= n {
            store8(load8(x + i) * scale * load8(weight + i), out + i)
            i += 8
        }
        while i < n { out[i] = x[i] * scale * weight[i]; i += 1 }
    }

    /// In place: x = exp(x - max x) / Σ exp(x - max x), with libm's expf.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        var maxValue = x[0]
        for i in 1..<n where x[i] > maxValue { maxValue = x[i] }
        var sum = 0.0
        for i in 0..<n {
            let e = expf(x[i] - maxValue)
            x[i] = e
            sum += Double(e)
        }
        scale(x, Float(1.0 / sum), n)
    }

    /// gate = silu(gate) · up, where silu(g) = g / (1 + exp(-g)).
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    /// x += y.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(load8(x + i) + load8(y + i), x + i); i += 8 }
        while i < n { x[i] += y[i]; i += 1 }
    }

    /// y += a·x.
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let av = SIMD8<Float>(repeating: a)
        while i + 8 <= n {
            var v = load8(y + i)
            v.addProduct(av, load8(x + i))
            store8(v, y + i)
            i += 8
        }
        while i < n { y[i] += a * x[i]; i += 1 }
    }

    /// x *= a.
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(load8(x + i) * a, x + i); i += 8 }
        while i < n { x[i] *= a; i += 1 }
    }

    @inline(__always)
    private static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}

extension SIMD8<Float> {
    fileprivate var sumInDouble: Double {
        var s = 0.0
        for k in 0..<8 { s += Double(self[k]) }
        return s
    }
}

extension Vec {
    /// Plain float64 twins of the kernels: obviously correct and slow, for tests and references.
    public enum Reference {
        public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
            var s = 0.0
            for i in 0..<n { s += Double(a[i]) * Double(b[i]) }
            return s
        }

        public static func rmsNorm(_ x: [Float], weight: [Float], eps: Float) -> [Double] {
            let meanSquare = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
            let scale = 1 / (meanSquare + Double(eps)).squareRoot()
            return zip(x, weight).map { Double($0) * scale * Double($1) }
        }

        public static func softmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max() ?? 0)
            let e = x.map { exp(Double($0) - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }

        public static func siluMul(_ gate: [Float], _ up: [Float]) -> [Double] {
            zip(gate, up).map { g, u in Double(g) / (1 + exp(-Double(g))) * Double(u) }
        }

    }
}
