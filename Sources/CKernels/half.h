// IEEE binary16 conversions shared by the kernels: the exact widening to float and the narrowing
// with round to nearest, ties to even (as F16C's vcvtps2ph with rounding control 0 and ggml's
// GGML_FP32_TO_FP16 round). Portable C, integer operations only.
#ifndef PROBITY_CKERNELS_HALF_H
#define PROBITY_CKERNELS_HALF_H

#include <stdint.h>
#include <string.h>

static inline float pk_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t pk_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float pk_widen_half(uint16_t h) {
    // Move exponent and mantissa into place and rebias; subnormals are renormalised by one exact
    // float subtraction; inf and NaN keep their payload because only integer operations touch them.
    uint32_t o = (uint32_t)(h & 0x7fff) << 13;
    uint32_t exp = o & (0x7c00u << 13);
    o += (127 - 15) << 23;
    if (exp == (0x7c00u << 13)) {
        o += (128 - 16) << 23;
    } else if (exp == 0) {
        o += 1 << 23;
        o = pk_float_to_bits(pk_bits_to_float(o) - pk_bits_to_float(113u << 23));
    }
    return pk_bits_to_float(o | ((uint32_t)(h & 0x8000) << 16));
}

// The binary16 nearest to f, ties to even: ±infinity past the largest half (from 65520 up), a
// subnormal or ±0 below the smallest normal, NaN quiet with the top of its payload (as F16C).
static inline uint16_t pk_narrow_half(float f) {
    const uint32_t b = pk_float_to_bits(f);
    const uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
    const uint32_t mag = b & 0x7fffffff, exponent = mag >> 23, mantissa = mag & 0x7fffff;
    if (mag > 0x7f800000) return (uint16_t)(sign | 0x7e00 | (mantissa >> 13));
    if (mag >= 0x477ff000) return (uint16_t)(sign | 0x7c00);
    if (exponent < 113) {
        // Subnormal half or zero: the full significand in units of 2^-24, shifted by 126 - exponent.
        if (exponent < 102) return sign;  // below 2^-25: rounds to zero
        const uint32_t full = mantissa | 0x800000, shift = 126 - exponent;
        const uint32_t q = full >> shift, rest = full & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        return (uint16_t)(sign | (q + (rest > halfway || (rest == halfway && (q & 1)))));
    }
    uint32_t bits = ((exponent - 112) << 10) | (mantissa >> 13);
    const uint32_t rest = mantissa & 0x1fff;
    bits += rest > 0x1000 || (rest == 0x1000 && (bits & 1));  // a carry into the exponent is right
    return (uint16_t)(sign | bits);
}

#endif
