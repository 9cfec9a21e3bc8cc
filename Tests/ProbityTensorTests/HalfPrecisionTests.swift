// Rounding floats to binary16 and bfloat16 against a plain reference: the two neighbours of the
// value, picked by exact distance in double, ties to the even one.
import Testing
@testable import ProbityTensor

@Suite struct HalfPrecisionTests {
    /// The representable 16-bit value nearest to f, by brute force over the two candidates around it.
    static func nearest(_ f: Float, widen: (UInt16) -> Float, candidates: [UInt16]) -> UInt16 {
        var best = candidates[0]
        for c in candidates.dropFirst() {
            let dc = abs(Double(widen(c)) - Double(f)), db = abs(Double(widen(best)) - Double(f))
            if dc < db || (dc == db && c & 1 == 0 && best & 1 == 1) { best = c }
        }
        return best
    }

    @Test func halfRoundTripsEveryHalf() {
        var bad: [UInt16] = []
        for h in 0...0xFFFF {
            let bits = UInt16(h)
            let f = Reference.half(bits)
            let back = HalfPrecision.halfBits(f)
            if f.isNaN ? back & 0x7C00 != 0x7C00 || back & 0x3FF == 0 : back != bits { bad.append(bits) }
        }
        #expect(bad.isEmpty, "first: \(bad.prefix(5).map { String($0, radix: 16) })")
    }

    @Test func halfRoundsToNearestEven() {
        var rng = SplitMix64(seed: 3)
        var bad: [String] = []
        // Magnitudes across the subnormal, normal and overflowing ranges of binary16.
        for _ in 0..<200_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x8FFF_FFFF | 0x3000_0000)
            let g = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            for v in [f, g] where v.isFinite {
                let got = HalfPrecision.halfBits(v)
                let mag = abs(v)
                let want: UInt16
                if mag >= 65520 {   // halfway between 65504 and 65536 and beyond: infinity
                    want = (v.sign == .minus ? 0x8000 : 0) | 0x7C00
                } else {
                    // Candidates: the half at or below |v| and the next one up.
                    var lo: UInt16 = 0
                    var hi: UInt16 = 0x7BFF
                    while lo < hi {   // largest h with half(h) <= |v|
                        let mid = (lo + hi + 1) / 2
                        if Reference.half(mid) <= mag { lo = mid } else { hi = mid - 1 }
                    }
                    let sign: UInt16 = v.sign == .minus ? 0x8000 : 0
                    want = sign | Self.nearest(mag, widen: Reference.half, candidates: [lo, lo + 1])
                }
                if got != want && bad.count < 5 { bad.append("\(v): \(got) vs \(want)") }
            }
        }
        #expect(bad.isEmpty, "first mismatches \(bad)")
        #expect(HalfPrecision.halfBits(.infinity) == 0x7C00 && HalfPrecision.halfBits(-.infinity) == 0xFC00)
        #expect(HalfPrecision.halfBits(.nan) & 0x7E00 == 0x7E00)
        #expect(HalfPrecision.halfBits(-0.0) == 0x8000)
        #expect(HalfPrecision.halfBits(0x1p-25) == 0 && HalfPrecision.halfBits(0x1.8p-25) == 1)   // tie to even, above it up
    }

    @Test func bfloat16RoundsToNearestEven() {
        var rng = SplitMix64(seed: 4)
        var bad: [String] = []
        let widen = { (b: UInt16) in Float(bitPattern: UInt32(b) << 16) }
        for _ in 0..<200_000 {
            let v = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            guard v.isFinite else { continue }
            let t = UInt16(v.bitPattern >> 16)
            let next = t & 0x7FFF == 0x7F7F ? t : t + 1   // the largest finite rounds up to infinity below
            var want = Self.nearest(v, widen: widen, candidates: [t, next])
            if t & 0x7FFF == 0x7F7F && abs(Double(v)) >= Double(widen(t & 0x7FFF)) + 0x1p119 { want = (t & 0x8000) | 0x7F80 }
            let got = HalfPrecision.bfloat16Bits(v)
            if got != want && bad.count < 5 { bad.append("\(v): \(got) vs \(want)") }
        }
        #expect(bad.isEmpty, "first mismatches \(bad)")
        #expect(HalfPrecision.bfloat16Bits(1) == 0x3F80 && HalfPrecision.bfloat16Bits(.nan) & 0x7FC0 == 0x7FC0)
    }
}
