// Rounding floats to IEEE binary16 and bfloat16 bits, round to nearest even as numpy, torch and
// F16C do; the exact widening back is in CKernels (pk_half_to_float) and Dequantize.

/// Float → 16-bit float conversions.
public enum HalfPrecision {
    /// The binary16 nearest to `f` (ties to even): overflow gives ±infinity, tiny values subnormals
    /// or ±0, NaN a quiet NaN with the same sign.
    public static func halfBits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        let exponent = Int((b >> 23) & 0xFF)
        let mantissa = b & 0x7F_FFFF
        if exponent == 0xFF { return sign | (mantissa == 0 ? 0x7C00 : 0x7E00) }
        // The value as a fixed-point number of units of 2^-24 (the smallest subnormal half),
        // shifted so that rounding happens in one place for normals and subnormals alike.
        let e = exponent - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            // Subnormal half (or zero): value = full mantissa · 2^(exponent - 150); units of 2^-24.
            guard exponent != 0, e >= -10 else { return sign }
            let full = mantissa | 0x80_0000
            let shift = UInt32(14 - e)   // 24-bit significand down to the subnormal's 10 bits
            let q = full >> shift
            let rest = full & ((1 << shift) - 1), half = UInt32(1) << (shift - 1)
            let rounded = q + (rest > half || (rest == half && q & 1 == 1) ? 1 : 0)
            return sign | UInt16(rounded)   // a carry into bit 10 is the smallest normal, as it should be
        }
        let q = mantissa >> 13
        let rest = mantissa & 0x1FFF
        var bits = UInt32(e) << 10 | q
        if rest > 0x1000 || (rest == 0x1000 && q & 1 == 1) { bits += 1 }   // a carry may reach infinity: correct
        return sign | UInt16(bits)
    }

    /// The bfloat16 nearest to `f` (ties to even); NaN stays a quiet NaN with the same sign.
    public static func bfloat16Bits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        if f.isNaN { return UInt16(b >> 16) | 0x40 }
        let rounded = b &+ 0x7FFF &+ ((b >> 16) & 1)
        return UInt16(rounded >> 16)
    }
}
