// Plain, slow reference implementations the kernels are tested against: ggml's dequantization
// formulas written out element by element in Swift, and float64 matrix products.
@testable import ProbityTensor

enum Reference {
    /// binary16 -> binary32 from the definition: (-1)^s · 2^(e-15) · 1.m, subnormals 2^-14 · 0.m.
    static func half(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let e = Int((h >> 10) & 0x1f), m = Int(h & 0x3ff)
        if e == 0x1f {
            let bits = UInt32(h & 0x8000) << 16 | 0x7f80_0000 | UInt32(m) << 13
            return Float(bitPattern: bits)
        }
        if e == 0 { return sign * Float(Double(m) * 0x1p-24) }
        return sign * Float(Double(1024 + m) * Double(sign: .plus, exponent: e - 25, significand: 1))
    }

    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    /// Dequantizes `bytes` (whole blocks of `type`) element by element.
    static func dequantize(_ type: GGMLType, _ bytes: [UInt8]) -> [Float] {
        var out: [Float] = []
        let bpb = type.bytesPerBlock
        for start in stride(from: 0, to: bytes.count, by: bpb) {
            let b = Array(bytes[start..<start + bpb])
            switch type {
            case .f32: out.append(Float(bitPattern: u32(b, 0)))
            case .f16: out.append(half(u16(b, 0)))
            case .bf16: out.append(Float(bitPattern: UInt32(u16(b, 0)) << 16))
            case .q4_0:
                let d = half(u16(b, 0))
                for j in 0..<32 {
                    let byte = b[2 + j % 16]
                    let q = j < 16 ? Int(byte & 0xf) : Int(byte >> 4)
                    out.append(Float(q - 8) * d)
                }
            case .q4_1:
                let d = half(u16(b, 0)), m = half(u16(b, 2))
                for j in 0..<32 {
                    let byte = b[4 + j % 16]
                    let q = j < 16 ? Int(byte & 0xf) : Int(byte >> 4)
                    out.append(Float(q) * d + m)
                }
            case .q5_0, .q5_1:
                let d = half(u16(b, 0))
                let m: Float = type == .q5_1 ? half(u16(b, 2)) : 0
                let o = type == .q5_1 ? 4 : 2
                let qh = u32(b, o)
                for j in 0..<32 {
                    let byte = b[o + 4 + j % 16]
                    let low = j < 16 ? Int(byte & 0xf) : Int(byte >> 4)
                    let q = low | Int((qh >> UInt32(j)) & 1) << 4  // bit j of qh is element j's fifth bit
                    out.append(type == .q5_1 ? Float(q) * d + m : Float(q - 16) * d)
                }
            case .q8_0:
                let d = half(u16(b, 0))
                for j in 0..<32 { out.append(Float(Int8(bitPattern: b[2 + j])) * d) }
            case .q4_K, .q5_K:
                // 8 sub-blocks of 32: weight = (d·scale)·q - dmin·min, q with a fifth bit for Q5_K.
                let d = half(u16(b, 0)), dmin = half(u16(b, 2))
                let scales = Array(b[4..<16])
                let five = type == .q5_K
                let qs = five ? Array(b[48..<176]) : Array(b[16..<144])
                for sub in 0..<8 {
                    let (sc, m) = kScaleMin(sub, scales)
                    for l in 0..<32 {
                        let byte = qs[32 * (sub / 2) + l]
                        var q = sub % 2 == 0 ? Int(byte & 0xf) : Int(byte >> 4)
                        if five && (b[16 + l] >> UInt8(sub)) & 1 == 1 { q += 16 }
                        out.append((d * Float(sc)) * Float(q) - dmin * Float(m))
                    }
                }
            case .q6_K:
                // 16 groups of 16: weight = (d·scale[g])·(q - 32), q = 4 low bits | 2 high bits.
                let d = half(u16(b, 208))
                for e in 0..<256 {
                    let half128 = e / 128, p = e % 128, quadrant = p / 32, l = p % 32
                    let low = b[64 * half128 + l + (quadrant % 2 == 1 ? 32 : 0)]
                    let lowBits = quadrant < 2 ? Int(low & 0xf) : Int(low >> 4)
                    let highBits = Int(b[128 + 32 * half128 + l] >> UInt8(2 * quadrant)) & 3
                    let scale = Int8(bitPattern: b[192 + e / 16])
                    out.append(d * Float(scale) * Float((lowBits | highBits << 4) - 32))
                }
            case .q2_K:
                // 16 groups of 16: weight = (d·(s & 15))·q − dmin·(s >> 4), q two bits of qs.
                let d = half(u16(b, 80)), dmin = half(u16(b, 82))
                for e in 0..<256 {
                    let n = e / 128, j = (e % 128) / 32, l = e % 32
                    let q = Int(b[16 + 32 * n + l] >> UInt8(2 * j)) & 3
                    let s = b[8 * n + 2 * j + l / 16]
                    out.append((d * Float(s & 15)) * Float(q) - dmin * Float(s >> 4))
                }
            case .q3_K:
                // 16 groups of 16: weight = (d·(scale − 32))·(q − 4·(1 − hbit)).
                let d = half(u16(b, 108))
                for e in 0..<256 {
                    let n = e / 128, j = (e % 128) / 32, l = e % 32
                    let low = Int(b[32 + 32 * n + l] >> UInt8(2 * j)) & 3
                    let hbit = Int(b[l] >> UInt8(4 * n + j)) & 1
                    let g = 8 * n + 2 * j + l / 16
                    let scaleLow = g < 8 ? Int(b[96 + g] & 15) : Int(b[96 + g - 8] >> 4)
                    let scaleHigh = Int(b[104 + g % 4] >> UInt8(2 * (g / 4))) & 3
                    let scale = (scaleLow | scaleHigh << 4) - 32
                    out.append((d * Float(scale)) * Float(low - (hbit == 1 ? 0 : 4)))
                }
            case .iq4_NL:
                let d = half(u16(b, 0))
                for j in 0..<32 {
                    let byte = b[2 + j % 16]
                    out.append(d * Float(iq4Values[j < 16 ? Int(byte & 15) : Int(byte >> 4)]))
                }
            case .iq4_XS:
                // 8 groups of 32: weight = (d·(scale − 32))·table[index], scale 4 low + 2 high bits.
                let d = half(u16(b, 0)), high = u16(b, 2)
                for e in 0..<256 {
                    let g = e / 32, j = e % 32
                    let scaleLow = Int(b[4 + g / 2] >> UInt8(4 * (g % 2))) & 15
                    let scaleHigh = Int(high >> UInt16(2 * g)) & 3
                    let scale = (scaleLow | scaleHigh << 4) - 32
                    let byte = b[8 + 16 * g + j % 16]
                    out.append((d * Float(scale)) * Float(iq4Values[j < 16 ? Int(byte & 15) : Int(byte >> 4)]))
                }
            default:
                fatalError("no reference for \(type)")
            }
        }
        return out
    }

    /// The IQ4_NL / IQ4_XS code book (ggml's kvalues_iq4nl).
    static let iq4Values: [Int] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// Scale and min of K-quant sub-block `j` from the 12 packed bytes (6 bits each).
    static func kScaleMin(_ j: Int, _ q: [UInt8]) -> (Int, Int) {
        if j < 4 { return (Int(q[j] & 63), Int(q[j + 4] & 63)) }
        return (Int(q[j + 4] & 0xf) | Int(q[j - 4] >> 6) << 4, Int(q[j + 4] >> 4) | Int(q[j] >> 6) << 4)
    }

    /// Random whole blocks of `type` for `elements` elements, with finite scales of moderate size.
    static func randomBlocks(_ type: GGMLType, elements: Int, rng: inout SplitMix64) -> [UInt8] {
        var bytes = (0..<(type.byteCount(elements: elements) ?? 0)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        func putHalf(_ v: Float, at o: Int) {
            let h = Float16(v).bitPattern
            bytes[o] = UInt8(h & 0xff)
            bytes[o + 1] = UInt8(h >> 8)
        }
        let bpb = type.bytesPerBlock
        for start in stride(from: 0, to: bytes.count, by: bpb) {
            switch type {
            case .f32:
                let bits = Float.random(in: -2...2, using: &rng).bitPattern
                for k in 0..<4 { bytes[start + k] = UInt8((bits >> (8 * UInt32(k))) & 0xff) }
            case .f16: putHalf(Float.random(in: -2...2, using: &rng), at: start)
            case .bf16:
                let bits = Float.random(in: -2...2, using: &rng).bitPattern >> 16
                bytes[start] = UInt8(bits & 0xff)
                bytes[start + 1] = UInt8(bits >> 8)
            case .q4_0, .q5_0, .q8_0:
                putHalf(Float.random(in: 0.001...0.05, using: &rng), at: start)
            case .q4_1, .q5_1:
                putHalf(Float.random(in: 0.001...0.05, using: &rng), at: start)
                putHalf(Float.random(in: -0.4...0, using: &rng), at: start + 2)
            case .q4_K, .q5_K:
                putHalf(Float.random(in: 0.0001...0.002, using: &rng), at: start)
                putHalf(Float.random(in: 0.0001...0.002, using: &rng), at: start + 2)
            case .q6_K:
                putHalf(Float.random(in: 0.0001...0.001, using: &rng), at: start + 208)
            case .q2_K:
                putHalf(Float.random(in: 0.001...0.01, using: &rng), at: start + 80)
                putHalf(Float.random(in: 0.001...0.01, using: &rng), at: start + 82)
            case .q3_K:
                putHalf(Float.random(in: 0.0001...0.002, using: &rng), at: start + 108)
            case .iq4_NL, .iq4_XS:
                putHalf(Float.random(in: 0.0001...0.002, using: &rng), at: start)
            default: break
            }
        }
        return bytes
    }

    /// out[b][r] = Σ_c W[r][c] · x[b][c] in float64.
    static func multiply(_ w: [Float], rows: Int, cols: Int, _ x: [Float], batch: Int) -> [Double] {
        var out = [Double](repeating: 0, count: batch * rows)
        for b in 0..<batch {
            for r in 0..<rows {
                var s = 0.0
                for c in 0..<cols { s += Double(w[r * cols + c]) * Double(x[b * cols + c]) }
                out[b * rows + r] = s
            }
        }
        return out
    }
}
