// Dequantization and dot-product kernels over ggml blocks: a portable C version of each and, on
// x86-64, AVX2/FMA/F16C and AVX-512 versions chosen at run time. Layouts follow ggml-quants.c:
// Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]}, Q5_0 {f16 d; u8 qh[4]; u8 qs[16]},
// Q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]}, Q8_0 {f16 d; i8 qs[32]}; element j < 16 of a 4-bit block is
// the low nibble of qs[j], element j + 16 its high nibble. The 256-element K-quants follow
// dequantize_row_q4_K / q5_K / q6_K there. Q2_K, Q3_K, IQ4_NL and IQ4_XS live in lowbit.c.
#include "CKernels.h"
#include "half.h"
#include "hsum.h"
#include "lowbit.h"

#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#if defined(__x86_64__) || defined(_M_X64)
#define PK_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

enum {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
    T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30,
};

// Rows per tile of pk_gemv_multi: the tile's weights stay in cache while every vector passes.
#define MULTI_ROWS 8

// MARK: - scalars

static inline float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

float pk_half_to_float(uint16_t h) { return pk_widen_half(h); }

static inline float bf16_to_float(uint16_t h) { return bits_to_float((uint32_t)h << 16); }

// MARK: - portable kernels

static long block_size(uint32_t type) {
    switch (type) {
    case T_F32: case T_F16: case T_BF16: return 1;
    case T_Q4_K: case T_Q5_K: case T_Q6_K: case PK_T_Q2_K: case PK_T_Q3_K: case PK_T_IQ4_XS: return 256;
    default: return 32;
    }
}

static long block_bytes(uint32_t type) {
    switch (type) {
    case T_F32: return 4;
    case T_F16: case T_BF16: return 2;
    case T_Q4_0: return 18;
    case T_Q4_1: return 20;
    case T_Q5_0: return 22;
    case T_Q5_1: return 24;
    case T_Q8_0: return 34;
    case T_Q4_K: return 144;  // f16 d, dmin; 12 bytes of 6-bit scales and mins; 128 bytes of nibbles
    case T_Q5_K: return 176;  // as Q4_K plus 32 bytes of fifth bits before the nibbles
    case T_Q6_K: return 210;  // 128 bytes low nibbles, 64 bytes high pairs, 16 int8 scales, f16 d
    case PK_T_Q2_K: return 84;    // layouts in lowbit.c
    case PK_T_Q3_K: return 110;
    case PK_T_IQ4_NL: return 18;
    case PK_T_IQ4_XS: return 136;
    default: return 0;
    }
}

int pk_supported(uint32_t type) { return block_bytes(type) != 0; }

// Dequantizes `nb` blocks of a 32-element type.
static void dequant_blocks_generic(uint32_t type, const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, y += 32) {
        switch (type) {
        case T_Q4_0: {
            const float d = pk_half_to_float(load_u16(b));
            const uint8_t *qs = b + 2;
            for (int j = 0; j < 16; j++) {
                y[j] = (float)((qs[j] & 0x0f) - 8) * d;
                y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
            }
            b += 18;
            break;
        }
        case T_Q4_1: {
            const float d = pk_half_to_float(load_u16(b)), m = pk_half_to_float(load_u16(b + 2));
            const uint8_t *qs = b + 4;
            for (int j = 0; j < 16; j++) {
                y[j] = (float)(qs[j] & 0x0f) * d + m;
                y[j + 16] = (float)(qs[j] >> 4) * d + m;
            }
            b += 20;
            break;
        }
        case T_Q5_0: {
            const float d = pk_half_to_float(load_u16(b));
            const uint32_t qh = load_u32(b + 2);
            const uint8_t *qs = b + 6;
            for (int j = 0; j < 16; j++) {
                const int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                y[j] = (float)(((qs[j] & 0x0f) | h0) - 16) * d;
                y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
            }
            b += 22;
            break;
        }
        case T_Q5_1: {
            const float d = pk_half_to_float(load_u16(b)), m = pk_half_to_float(load_u16(b + 2));
            const uint32_t qh = load_u32(b + 4);
            const uint8_t *qs = b + 8;
            for (int j = 0; j < 16; j++) {
                const int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                y[j] = (float)((qs[j] & 0x0f) | h0) * d + m;
                y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
            }
            b += 24;
            break;
        }
        case T_Q8_0: {
            const float d = pk_half_to_float(load_u16(b));
            const int8_t *qs = (const int8_t *)(b + 2);
            for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
            b += 34;
            break;
        }
        }
    }
}

// Scale and min of sub-block j (of 8) from the 12 packed bytes of Q4_K and Q5_K: 6 bits each,
// the top two bits of sub-blocks 4..7 stored in the top bits of bytes 0..7.
static inline void k_scale_min(int j, const uint8_t *q, float *sc, float *m) {
    if (j < 4) {
        *sc = (float)(q[j] & 63);
        *m = (float)(q[j + 4] & 63);
    } else {
        *sc = (float)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Dequantizes `nb` 256-element K-quant blocks. Each product d·sc·q below is formed in the
// order ggml forms it, so every weight is the float ggml computes.
static void dequant_k_generic(uint32_t type, const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, y += 256) {
        switch (type) {
        case T_Q4_K: case T_Q5_K: {
            const int five = type == T_Q5_K;
            const float d = pk_half_to_float(load_u16(b)), dmin = pk_half_to_float(load_u16(b + 2));
            const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 16 + 32 * five;
            for (int j = 0; j < 4; j++, ql += 32) {
                float sc1, m1, sc2, m2;
                k_scale_min(2 * j, scales, &sc1, &m1);
                k_scale_min(2 * j + 1, scales, &sc2, &m2);
                const float d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
                for (int l = 0; l < 32; l++) {
                    const int h1 = five && (qh[l] >> (2 * j)) & 1 ? 16 : 0;
                    const int h2 = five && (qh[l] >> (2 * j + 1)) & 1 ? 16 : 0;
                    y[64 * j + l] = d1 * (float)((ql[l] & 0x0f) + h1) - mm1;
                    y[64 * j + 32 + l] = d2 * (float)((ql[l] >> 4) + h2) - mm2;
                }
            }
            b += five ? 176 : 144;
            break;
        }
        case T_Q6_K: {
            const uint8_t *ql = b, *qh = b + 128;
            const int8_t *sc = (const int8_t *)(b + 192);
            const float d = pk_half_to_float(load_u16(b + 208));
            for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8) {
                float *yy = y + 128 * n;
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    const int q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    yy[l] = d * (float)sc[is] * (float)q1;
                    yy[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    yy[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    yy[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
            }
            b += 210;
            break;
        }
        }
    }
}

static void dequant_generic(uint32_t type, const uint8_t *src, long count, float *dst) {
    switch (type) {
    case T_F32: memcpy(dst, src, (size_t)count * 4); return;
    case T_F16: for (long i = 0; i < count; i++) dst[i] = pk_half_to_float(load_u16(src + 2 * i)); return;
    case T_BF16: for (long i = 0; i < count; i++) dst[i] = bf16_to_float(load_u16(src + 2 * i)); return;
    case T_Q4_K: case T_Q5_K: case T_Q6_K: dequant_k_generic(type, src, count / 256, dst); return;
    case PK_T_Q2_K: case PK_T_Q3_K: case PK_T_IQ4_NL: case PK_T_IQ4_XS:
        pk_lowbit_dequant_generic(type, src, count, dst);
        return;
    default: dequant_blocks_generic(type, src, count / 32, dst); return;
    }
}

static float dot_generic(const float *a, const float *b, long n) {
    // Eight running sums so the compiler can keep them in vector lanes.
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

// One row: dequantize a chunk of blocks into a small buffer, then dot it with x.
static float row_dot_generic(uint32_t type, const uint8_t *row, long cols, const float *x) {
    if (type == T_F32) return dot_generic((const float *)(const void *)row, x, cols);
    enum { CHUNK = 256 };
    float buf[CHUNK];
    const long bs = block_size(type), bb = block_bytes(type);
    float sum = 0;
    for (long c = 0; c < cols; c += CHUNK) {
        const long n = cols - c < CHUNK ? cols - c : CHUNK;
        dequant_generic(type, row + (c / bs) * bb, n, buf);
        sum += dot_generic(buf, x + c, n);
    }
    return sum;
}

// MARK: - AVX2 / FMA / F16C kernels

#ifdef PK_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

AVX2_INLINE float half_avx2(const uint8_t *p) { return _cvtsh_ss(load_u16(p)); }

AVX2_INLINE __m256 u8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
AVX2_INLINE __m256 i8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

// Shuffle control putting bytes from..from+7 of a 16-byte row held in both 128-bit halves into
// the eight 32-bit lanes (lanes 0-3 from the low half, 4-7 from the high half), zeros above.
AVX2_INLINE __m256i spread_bytes_avx2(int from) {
    const char z = (char)0x80;
    return _mm256_setr_epi8((char)from, z, z, z, (char)(from + 1), z, z, z, (char)(from + 2), z, z, z, (char)(from + 3), z, z, z,
                            (char)(from + 4), z, z, z, (char)(from + 5), z, z, z, (char)(from + 6), z, z, z, (char)(from + 7), z, z, z);
}

// A Q5_0 / Q5_1 block's 32 five-bit values as bytes: elements 0..15 in `lo`, 16..31 in `hi`.
// `qh` (bit j the fifth bit of element j) is spread to bytes as 0x10 by a per-byte bit select.
AVX2_INLINE void q5_bytes_avx2(uint32_t qh, const uint8_t *nibbles, __m128i *lo, __m128i *hi) {
    const __m128i low4 = _mm_set1_epi8(0x0f), x10 = _mm_set1_epi8(0x10);
    const __m128i q = _mm_loadu_si128((const __m128i *)nibbles);
    const __m128i bitsel = _mm_set1_epi64x((long long)0x8040201008040201ULL);
    const __m128i h_lo = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)qh),
                                          _mm_set_epi8(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m128i h_hi = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)qh),
                                          _mm_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2));
    const __m128i hb_lo = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(h_lo, bitsel), bitsel), x10);
    const __m128i hb_hi = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(h_hi, bitsel), bitsel), x10);
    *lo = _mm_or_si128(_mm_and_si128(q, low4), hb_lo);
    *hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 4), low4), hb_hi);
}

// The 32 integers of a block of a type whose weights are d · n with no offset (Q4_0: n = q − 8,
// Q5_0: q − 16, Q8_0: q), as four vectors of eight floats (exact: |n| ≤ 128).
AVX2_INLINE void block_ints_avx2(uint32_t type, const uint8_t *b, __m256 n[4]) {
    switch (type) {
    case T_Q4_0: {
        // The 16 bytes in both halves (a load, no shuffle), one byte per 32-bit lane by one
        // in-lane shuffle each for bytes 0-7 and 8-15; then the low nibbles by a mask and the
        // high ones by a shift, in the 32-bit lanes: two shuffles where widening took six.
        const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 2)));
        const __m256i b07 = _mm256_shuffle_epi8(q, spread_bytes_avx2(0));
        const __m256i b8f = _mm256_shuffle_epi8(q, spread_bytes_avx2(8));
        const __m256i low4x = _mm256_set1_epi32(0x0f), eight = _mm256_set1_epi32(8);
        n[0] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b07, low4x), eight));
        n[1] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b8f, low4x), eight));
        n[2] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b07, 4), eight));
        n[3] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b8f, 4), eight));
        break;
    }
    case T_Q5_0: {
        __m128i lo, hi;
        q5_bytes_avx2(load_u32(b + 2), b + 6, &lo, &hi);
        const __m128i sixteen = _mm_set1_epi8(16);
        lo = _mm_sub_epi8(lo, sixteen);
        hi = _mm_sub_epi8(hi, sixteen);
        n[0] = i8x8_to_ps(lo);
        n[1] = i8x8_to_ps(_mm_srli_si128(lo, 8));
        n[2] = i8x8_to_ps(hi);
        n[3] = i8x8_to_ps(_mm_srli_si128(hi, 8));
        break;
    }
    default:  // T_Q8_0: eight bytes at a time, so each widening reads memory directly.
        for (int k = 0; k < 4; k++) n[k] = i8x8_to_ps(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * k)));
        break;
    }
}

// The 32 weights of one block as four vectors of eight, each exactly as ggml computes it.
AVX2_INLINE void block_avx2(uint32_t type, const uint8_t *b, __m256 w[4]) {
    switch (type) {
    case T_Q4_0: case T_Q5_0: case T_Q8_0: {
        // d · n, exact in float.
        const __m256 d = _mm256_set1_ps(half_avx2(b));
        block_ints_avx2(type, b, w);
        for (int k = 0; k < 4; k++) w[k] = _mm256_mul_ps(w[k], d);
        break;
    }
    case T_Q4_1: {
        // q * d is exact in float (4-bit times 11-bit significand), so the fused
        // multiply-add rounds once, exactly like ggml's x * d + m. Nibbles as Q4_0's.
        const __m256 d = _mm256_set1_ps(half_avx2(b)), m = _mm256_set1_ps(half_avx2(b + 2));
        const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 4)));
        const __m256i b07 = _mm256_shuffle_epi8(q, spread_bytes_avx2(0));
        const __m256i b8f = _mm256_shuffle_epi8(q, spread_bytes_avx2(8));
        const __m256i low4x = _mm256_set1_epi32(0x0f);
        w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b07, low4x)), d, m);
        w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b8f, low4x)), d, m);
        w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b07, 4)), d, m);
        w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b8f, 4)), d, m);
        break;
    }
    case T_Q5_1: {
        const __m256 d = _mm256_set1_ps(half_avx2(b)), m = _mm256_set1_ps(half_avx2(b + 2));
        __m128i lo, hi;
        q5_bytes_avx2(load_u32(b + 4), b + 8, &lo, &hi);
        w[0] = _mm256_fmadd_ps(u8x8_to_ps(lo), d, m);
        w[1] = _mm256_fmadd_ps(u8x8_to_ps(_mm_srli_si128(lo, 8)), d, m);
        w[2] = _mm256_fmadd_ps(u8x8_to_ps(hi), d, m);
        w[3] = _mm256_fmadd_ps(u8x8_to_ps(_mm_srli_si128(hi, 8)), d, m);
        break;
    }
    }
}

// All eight d·scale and dmin·min of a Q4_K / Q5_K block at once (see k_scale_min): bytes 0..3
// hold the low 6 bits of scales 0..3, bytes 4..7 those of mins 0..3, and bytes 8..11 the low
// nibbles (scales 4..7) and high nibbles (mins 4..7) whose top two bits are the top bits of bytes
// 0..3 (scales) and 4..7 (mins). Both products are exact in float.
AVX2_INLINE void k_scales_mins(float d, float dmin, const uint8_t *q, float ds[8], float dm[8]) {
    uint64_t lo;
    memcpy(&lo, q, 8);
    const uint32_t hi = load_u32(q + 8);
    const uint32_t sc_lo = (uint32_t)lo & 0x3f3f3f3fu, m_lo = (uint32_t)(lo >> 32) & 0x3f3f3f3fu;
    const uint32_t sc_hi = (hi & 0x0f0f0f0fu) | (((uint32_t)lo >> 2) & 0x30303030u);
    const uint32_t m_hi = ((hi >> 4) & 0x0f0f0f0fu) | ((uint32_t)(lo >> 34) & 0x30303030u);
    const __m128i sc = _mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo), m = _mm_set_epi32(0, 0, (int)m_hi, (int)m_lo);
    _mm256_storeu_ps(ds, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc))));
    _mm256_storeu_ps(dm, _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m))));
}

// K-quant blocks for AVX2: `emit(k, w)` receives the weights of elements 8k..8k+7 of the block,
// each exactly the float ggml computes (see dequant_k_generic).
#define K_BLOCK_AVX2(type, b, emit)                                                                     \
    do {                                                                                                \
        const __m256i low4_ = _mm256_set1_epi8(0x0f);                                                   \
        if ((type) == T_Q4_K || (type) == T_Q5_K) {                                                     \
            const int five_ = (type) == T_Q5_K;                                                         \
            const uint8_t *ql_ = (b) + 16 + 32 * five_;                                                 \
            const __m256i qh_ = five_ ? _mm256_loadu_si256((const __m256i *)((b) + 16)) : _mm256_setzero_si256(); \
            float ds_[8], dm_[8];                                                                       \
            k_scales_mins(_cvtsh_ss(load_u16(b)), _cvtsh_ss(load_u16((b) + 2)), (b) + 4, ds_, dm_);     \
            for (int j_ = 0; j_ < 4; j_++) {                                                            \
                const __m256i q_ = _mm256_loadu_si256((const __m256i *)(ql_ + 32 * j_));                \
                __m256i lo_ = _mm256_and_si256(q_, low4_);                                              \
                __m256i hi_ = _mm256_and_si256(_mm256_srli_epi16(q_, 4), low4_);                        \
                if (five_) {                                                                            \
                    const __m256i b1_ = _mm256_set1_epi8((char)(1 << (2 * j_)));                        \
                    const __m256i b2_ = _mm256_set1_epi8((char)(2 << (2 * j_)));                        \
                    const __m256i x10_ = _mm256_set1_epi8(0x10);                                        \
                    lo_ = _mm256_or_si256(lo_, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh_, b1_), b1_), x10_)); \
                    hi_ = _mm256_or_si256(hi_, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh_, b2_), b2_), x10_)); \
                }                                                                                       \
                const __m256 d1_ = _mm256_set1_ps(ds_[2 * j_]), m1_ = _mm256_set1_ps(-dm_[2 * j_]);     \
                const __m256 d2_ = _mm256_set1_ps(ds_[2 * j_ + 1]), m2_ = _mm256_set1_ps(-dm_[2 * j_ + 1]); \
                const __m128i l0_ = _mm256_castsi256_si128(lo_), l1_ = _mm256_extracti128_si256(lo_, 1); \
                const __m128i h0_ = _mm256_castsi256_si128(hi_), h1_ = _mm256_extracti128_si256(hi_, 1); \
                emit(8 * j_ + 0, _mm256_fmadd_ps(u8x8_to_ps(l0_), d1_, m1_));                           \
                emit(8 * j_ + 1, _mm256_fmadd_ps(u8x8_to_ps(_mm_srli_si128(l0_, 8)), d1_, m1_));        \
                emit(8 * j_ + 2, _mm256_fmadd_ps(u8x8_to_ps(l1_), d1_, m1_));                           \
                emit(8 * j_ + 3, _mm256_fmadd_ps(u8x8_to_ps(_mm_srli_si128(l1_, 8)), d1_, m1_));        \
                emit(8 * j_ + 4, _mm256_fmadd_ps(u8x8_to_ps(h0_), d2_, m2_));                           \
                emit(8 * j_ + 5, _mm256_fmadd_ps(u8x8_to_ps(_mm_srli_si128(h0_, 8)), d2_, m2_));        \
                emit(8 * j_ + 6, _mm256_fmadd_ps(u8x8_to_ps(h1_), d2_, m2_));                           \
                emit(8 * j_ + 7, _mm256_fmadd_ps(u8x8_to_ps(_mm_srli_si128(h1_, 8)), d2_, m2_));        \
            }                                                                                           \
        } else {                                                                                        \
            const float d_ = _cvtsh_ss(load_u16((b) + 208));                                            \
            const int8_t *sc_ = (const int8_t *)((b) + 192);                                            \
            for (int n_ = 0; n_ < 2; n_++) {                                                            \
                const __m256i qh_ = _mm256_loadu_si256((const __m256i *)((b) + 128 + 32 * n_));         \
                for (int k_ = 0; k_ < 4; k_++) {                                                        \
                    const __m256i l_ = _mm256_loadu_si256((const __m256i *)((b) + 64 * n_ + 32 * (k_ & 1))); \
                    const __m256i low_ = k_ < 2 ? _mm256_and_si256(l_, low4_) : _mm256_and_si256(_mm256_srli_epi16(l_, 4), low4_); \
                    const __m256i high_ = _mm256_and_si256(_mm256_srli_epi16(qh_, 2 * k_), _mm256_set1_epi8(3)); \
                    const __m256i q_ = _mm256_sub_epi8(_mm256_or_si256(low_, _mm256_slli_epi16(high_, 4)), _mm256_set1_epi8(32)); \
                    const int g_ = 8 * n_ + 2 * k_;                                                     \
                    const __m256 s0_ = _mm256_set1_ps(d_ * (float)sc_[g_]), s1_ = _mm256_set1_ps(d_ * (float)sc_[g_ + 1]); \
                    const __m128i q0_ = _mm256_castsi256_si128(q_), q1_ = _mm256_extracti128_si256(q_, 1); \
                    emit(16 * n_ + 4 * k_ + 0, _mm256_mul_ps(s0_, i8x8_to_ps(q0_)));                   \
                    emit(16 * n_ + 4 * k_ + 1, _mm256_mul_ps(s0_, i8x8_to_ps(_mm_srli_si128(q0_, 8))));\
                    emit(16 * n_ + 4 * k_ + 2, _mm256_mul_ps(s1_, i8x8_to_ps(q1_)));                   \
                    emit(16 * n_ + 4 * k_ + 3, _mm256_mul_ps(s1_, i8x8_to_ps(_mm_srli_si128(q1_, 8))));\
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    } while (0)

AVX2_INLINE float k_dot_avx2(const uint32_t type, const uint8_t *row, long nb, const float *x) {
    const long bb = block_bytes(type);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (long i = 0; i < nb; i++, row += bb, x += 256) {
#define K_DOT2_EMIT(k, w) acc[(k) & 3] = _mm256_fmadd_ps((w), _mm256_loadu_ps(x + 8 * (k)), acc[(k) & 3])
        K_BLOCK_AVX2(type, row, K_DOT2_EMIT);
#undef K_DOT2_EMIT
    }
    return pk_hsum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

AVX2_INLINE void k_dequant_avx2(const uint32_t type, const uint8_t *src, long nb, float *dst) {
    const long bb = block_bytes(type);
    for (long i = 0; i < nb; i++, src += bb, dst += 256) {
#define K_STORE2_EMIT(k, w) _mm256_storeu_ps(dst + 8 * (k), (w))
        K_BLOCK_AVX2(type, src, K_STORE2_EMIT);
#undef K_STORE2_EMIT
    }
}

// Eight halves to floats, bit for bit: F16C's conversion is exact except that it quiets signalling
// NaNs, so a group holding any NaN takes the scalar conversion instead.
AVX2_INLINE void halves_to_floats_avx2(const uint8_t *src, float *dst) {
    const __m128i h = _mm_loadu_si128((const __m128i *)src);
    const __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
    if (_mm_movemask_epi8(_mm_cmpgt_epi16(magnitude, _mm_set1_epi16(0x7c00))) == 0) {
        _mm256_storeu_ps(dst, _mm256_cvtph_ps(h));
    } else {
        for (int i = 0; i < 8; i++) dst[i] = pk_half_to_float(load_u16(src + 2 * i));
    }
}

// Eight bfloat16s to floats (the upper half of each float; exact, NaNs kept).
AVX2_INLINE __m256 bf16x8_to_ps_avx2(const uint8_t *src) {
    const __m128i h = _mm_loadu_si128((const __m128i *)src);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2 static void dequant_avx2(uint32_t type, const uint8_t *src, long count, float *dst) {
    switch (type) {
    case T_F16: {
        long i = 0;
        for (; i + 8 <= count; i += 8) halves_to_floats_avx2(src + 2 * i, dst + i);
        dequant_generic(type, src + 2 * i, count - i, dst + i);
        return;
    }
    case T_BF16: {
        long i = 0;
        for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, bf16x8_to_ps_avx2(src + 2 * i));
        dequant_generic(type, src + 2 * i, count - i, dst + i);
        return;
    }
    case T_F32:
        dequant_generic(type, src, count, dst);
        return;
    case T_Q4_K: k_dequant_avx2(T_Q4_K, src, count / 256, dst); return;
    case T_Q5_K: k_dequant_avx2(T_Q5_K, src, count / 256, dst); return;
    case T_Q6_K: k_dequant_avx2(T_Q6_K, src, count / 256, dst); return;
    case PK_T_Q2_K: case PK_T_Q3_K: case PK_T_IQ4_NL: case PK_T_IQ4_XS:
        pk_lowbit_dequant_avx2(type, src, count, dst);
        return;
    default: {
        const long bb = block_bytes(type);
        for (long i = 0; i < count / 32; i++, src += bb, dst += 32) {
            __m256 w[4];
            block_avx2(type, src, w);
            _mm256_storeu_ps(dst, w[0]);
            _mm256_storeu_ps(dst + 8, w[1]);
            _mm256_storeu_ps(dst + 16, w[2]);
            _mm256_storeu_ps(dst + 24, w[3]);
        }
    }
    }
}

AVX2 static float dot_f32_avx2(const float *a, const float *b, long n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float t = pk_hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}

AVX2 static float dot_f16_avx2(const uint8_t *row, const float *x, long n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i + 16)));
        s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), s1);
    }
    float t = pk_hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) t += pk_half_to_float(load_u16(row + 2 * i)) * x[i];
    return t;
}

AVX2 static float dot_bf16_avx2(const uint8_t *row, const float *x, long n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(bf16x8_to_ps_avx2(row + 2 * i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(bf16x8_to_ps_avx2(row + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
    }
    float t = pk_hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) t += bf16_to_float(load_u16(row + 2 * i)) * x[i];
    return t;
}

// Dot of one row of 32-element blocks with x; inlined once per type so the type switch in
// block_avx2 folds away.
AVX2_INLINE float blocks_dot_avx2(const uint32_t type, const uint8_t *row, long nb, const float *x) {
    // Four accumulators: one per vector of the block, so no FMA waits on the previous one.
    const long bb = block_bytes(type);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (long i = 0; i < nb; i++, row += bb, x += 32) {
        __m256 w[4];
        block_avx2(type, row, w);
        s0 = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(x), s0);
        s1 = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(x + 8), s1);
        s2 = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x + 16), s2);
        s3 = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x + 24), s3);
    }
    return pk_hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// One block's n · x in eight lanes: two products, two fused multiply-adds, one add.
AVX2_INLINE __m256 block_ints_dot_avx2(const __m256 n[4], const float *x) {
    const __m256 a = _mm256_fmadd_ps(n[2], _mm256_loadu_ps(x + 16), _mm256_mul_ps(n[0], _mm256_loadu_ps(x)));
    const __m256 b = _mm256_fmadd_ps(n[3], _mm256_loadu_ps(x + 24), _mm256_mul_ps(n[1], _mm256_loadu_ps(x + 8)));
    return _mm256_add_ps(a, b);
}

// Dot of a row of Q4_0, Q5_0 or Q8_0 blocks with x, the block's scale taken out of its sum:
// Σ_b d_b · (Σ_j n_bj · x_bj). The weights are the same numbers ggml's dequantization gives
// (d · n is exact in float for these types), only the rounding order differs from forming each
// d · n first; and it halves the float work per weight, which bounds AVX2 decode (at AVX-512 the
// products are bound by memory and form the weights as before). Blocks alternate between two
// accumulators so no fused multiply-add waits on the previous block's.
AVX2_INLINE float scaled_blocks_dot_avx2(const uint32_t type, const uint8_t *row, long nb, const float *x) {
    const long bb = block_bytes(type);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    long i = 0;
    for (; i + 2 <= nb; i += 2, row += 2 * bb, x += 64) {
        __m256 n[4], m[4];
        block_ints_avx2(type, row, n);
        block_ints_avx2(type, row + bb, m);
        s0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(row)), block_ints_dot_avx2(n, x), s0);
        s1 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(row + bb)), block_ints_dot_avx2(m, x + 32), s1);
    }
    if (i < nb) {
        __m256 n[4];
        block_ints_avx2(type, row, n);
        s0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(row)), block_ints_dot_avx2(n, x), s0);
    }
    return pk_hsum8(_mm256_add_ps(s0, s1));
}

#define GEMV_ROWS(expr) for (long r = r0; r < r1; r++) { const uint8_t *row = base + (size_t)r * rowBytes; out[r - r0] = (expr); }

AVX2 static void gemv_avx2(uint32_t type, const uint8_t *base, size_t rowBytes, long r0, long r1, long cols,
                           const float *x, float *out) {
    const long nb = cols / 32;
    switch (type) {
    case T_F32: GEMV_ROWS(dot_f32_avx2((const float *)(const void *)row, x, cols)); break;
    case T_F16: GEMV_ROWS(dot_f16_avx2(row, x, cols)); break;
    case T_BF16: GEMV_ROWS(dot_bf16_avx2(row, x, cols)); break;
    case T_Q4_0: GEMV_ROWS(scaled_blocks_dot_avx2(T_Q4_0, row, nb, x)); break;
    case T_Q4_1: GEMV_ROWS(blocks_dot_avx2(T_Q4_1, row, nb, x)); break;
    case T_Q5_0: GEMV_ROWS(scaled_blocks_dot_avx2(T_Q5_0, row, nb, x)); break;
    case T_Q5_1: GEMV_ROWS(blocks_dot_avx2(T_Q5_1, row, nb, x)); break;
    case T_Q8_0: GEMV_ROWS(scaled_blocks_dot_avx2(T_Q8_0, row, nb, x)); break;
    case T_Q4_K: GEMV_ROWS(k_dot_avx2(T_Q4_K, row, cols / 256, x)); break;
    case T_Q5_K: GEMV_ROWS(k_dot_avx2(T_Q5_K, row, cols / 256, x)); break;
    case T_Q6_K: GEMV_ROWS(k_dot_avx2(T_Q6_K, row, cols / 256, x)); break;
    case PK_T_Q2_K: case PK_T_Q3_K: case PK_T_IQ4_NL: case PK_T_IQ4_XS:
        GEMV_ROWS(pk_lowbit_dot_avx2(type, row, cols, x));
        break;
    }
}

static int detect_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 6) != 6) return 0;  // the OS saves XMM and YMM state
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;
}
// MARK: - AVX-512 kernels (F, BW, VL): 16 floats per vector, and the fifth bits of Q5 blocks
// applied with a byte mask register.

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

AVX512_INLINE __m512 u8x16_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
AVX512_INLINE __m512 i8x16_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

// The 32 weights of one block as two vectors of sixteen, each exactly as ggml computes it.
AVX512_INLINE void block_avx512(const uint32_t type, const uint8_t *b, __m512 w[2]) {
    switch (type) {
    case T_Q4_0: case T_Q4_1: {
        // The block's sixteen possible weights, fma(k, d, m) or (k - 8) · d as below, in one vector;
        // each byte widened to a 32-bit lane picks its low nibble's weight (vpermps reads the index's
        // low four bits) and, shifted, its high nibble's. Same bits as converting each nibble.
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(b)));
        const __m512 table = type == T_Q4_1
            ? _mm512_fmadd_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), d,
                              _mm512_set1_ps(_cvtsh_ss(load_u16(b + 2))))
            : _mm512_mul_ps(_mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7), d);
        const __m512i z = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + (type == T_Q4_1 ? 4 : 2))));
        w[0] = _mm512_permutexvar_ps(z, table);
        w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(z, 4), table);
        break;
    }
    case T_Q5_0: case T_Q5_1: {
        // As above over 32 weights in two vectors: vpermt2ps reads five index bits, the fifth
        // choosing the upper vector, and bit j of qh is element j's fifth bit.
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(b)));
        const __m512 k0 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        const __m512 k1 = _mm512_add_ps(k0, _mm512_set1_ps(16));
        __m512 lo, hi;
        if (type == T_Q5_1) {
            const __m512 m = _mm512_set1_ps(_cvtsh_ss(load_u16(b + 2)));
            lo = _mm512_fmadd_ps(k0, d, m);
            hi = _mm512_fmadd_ps(k1, d, m);
        } else {
            lo = _mm512_mul_ps(_mm512_sub_ps(k0, _mm512_set1_ps(16)), d);
            hi = _mm512_mul_ps(k0, d);
        }
        const int off = type == T_Q5_1 ? 4 : 2;
        const uint32_t qh = load_u32(b + off);
        const __m512i z = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + off + 4)));
        const __m512i fifth = _mm512_set1_epi32(16);
        const __m512i i0 = _mm512_and_si512(z, _mm512_set1_epi32(15)), i1 = _mm512_srli_epi32(z, 4);
        w[0] = _mm512_permutex2var_ps(lo, _mm512_mask_or_epi32(i0, (__mmask16)(qh & 0xffff), i0, fifth), hi);
        w[1] = _mm512_permutex2var_ps(lo, _mm512_mask_or_epi32(i1, (__mmask16)(qh >> 16), i1, fifth), hi);
        break;
    }
    case T_Q8_0: {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(b)));
        w[0] = _mm512_mul_ps(i8x16_to_ps(_mm_loadu_si128((const __m128i *)(b + 2))), d);
        w[1] = _mm512_mul_ps(i8x16_to_ps(_mm_loadu_si128((const __m128i *)(b + 18))), d);
        break;
    }
    }
}

// K-quant blocks (256 elements) for AVX-512: `emit(k, w)` receives the weights of elements
// 16k..16k+15 of the block, each exactly the float ggml computes (see dequant_k_generic).
#define K_BLOCK_AVX512(type, b, emit)                                                                   \
    do {                                                                                                \
        const __m256i low4_ = _mm256_set1_epi8(0x0f);                                                   \
        if ((type) == T_Q4_K || (type) == T_Q5_K) {                                                     \
            const int five_ = (type) == T_Q5_K;                                                         \
            const float d_ = _cvtsh_ss(load_u16(b)), dmin_ = _cvtsh_ss(load_u16((b) + 2));             \
            const uint8_t *ql_ = (b) + 16 + 32 * five_;                                                 \
            const __m256i qh_ = five_ ? _mm256_loadu_si256((const __m256i *)((b) + 16)) : _mm256_setzero_si256(); \
            float ds_[8], dm_[8];                                                                       \
            k_scales_mins(d_, dmin_, (b) + 4, ds_, dm_);                                                \
            for (int j_ = 0; j_ < 4; j_++) {                                                            \
                const __m256i q_ = _mm256_loadu_si256((const __m256i *)(ql_ + 32 * j_));                \
                __m256i lo_ = _mm256_and_si256(q_, low4_);                                              \
                __m256i hi_ = _mm256_and_si256(_mm256_srli_epi16(q_, 4), low4_);                        \
                if (five_) {                                                                            \
                    const __m256i sixteen_ = _mm256_set1_epi8(0x10);                                    \
                    lo_ = _mm256_mask_blend_epi8(_mm256_test_epi8_mask(qh_, _mm256_set1_epi8((char)(1 << (2 * j_)))), lo_, _mm256_or_si256(lo_, sixteen_)); \
                    hi_ = _mm256_mask_blend_epi8(_mm256_test_epi8_mask(qh_, _mm256_set1_epi8((char)(2 << (2 * j_)))), hi_, _mm256_or_si256(hi_, sixteen_)); \
                }                                                                                       \
                const __m512 d1_ = _mm512_set1_ps(ds_[2 * j_]), m1v_ = _mm512_set1_ps(-dm_[2 * j_]);    \
                const __m512 d2_ = _mm512_set1_ps(ds_[2 * j_ + 1]), m2v_ = _mm512_set1_ps(-dm_[2 * j_ + 1]); \
                emit(4 * j_ + 0, _mm512_fmadd_ps(u8x16_to_ps(_mm256_castsi256_si128(lo_)), d1_, m1v_)); \
                emit(4 * j_ + 1, _mm512_fmadd_ps(u8x16_to_ps(_mm256_extracti128_si256(lo_, 1)), d1_, m1v_)); \
                emit(4 * j_ + 2, _mm512_fmadd_ps(u8x16_to_ps(_mm256_castsi256_si128(hi_)), d2_, m2v_)); \
                emit(4 * j_ + 3, _mm512_fmadd_ps(u8x16_to_ps(_mm256_extracti128_si256(hi_, 1)), d2_, m2v_)); \
            }                                                                                           \
        } else {                                                                                        \
            const float d_ = _cvtsh_ss(load_u16((b) + 208));                                            \
            const int8_t *sc_ = (const int8_t *)((b) + 192);                                            \
            for (int n_ = 0; n_ < 2; n_++) {                                                            \
                const __m256i qh_ = _mm256_loadu_si256((const __m256i *)((b) + 128 + 32 * n_));         \
                for (int k_ = 0; k_ < 4; k_++) {                                                        \
                    const __m256i l_ = _mm256_loadu_si256((const __m256i *)((b) + 64 * n_ + 32 * (k_ & 1))); \
                    const __m256i low_ = k_ < 2 ? _mm256_and_si256(l_, low4_) : _mm256_and_si256(_mm256_srli_epi16(l_, 4), low4_); \
                    const __m256i high_ = _mm256_and_si256(_mm256_srli_epi16(qh_, 2 * k_), _mm256_set1_epi8(3)); \
                    const __m256i q_ = _mm256_sub_epi8(_mm256_or_si256(low_, _mm256_slli_epi16(high_, 4)), _mm256_set1_epi8(32)); \
                    const int g_ = 8 * n_ + 2 * k_;                                                     \
                    emit(g_, _mm512_mul_ps(_mm512_set1_ps(d_ * (float)sc_[g_]), i8x16_to_ps(_mm256_castsi256_si128(q_)))); \
                    emit(g_ + 1, _mm512_mul_ps(_mm512_set1_ps(d_ * (float)sc_[g_ + 1]), i8x16_to_ps(_mm256_extracti128_si256(q_, 1)))); \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    } while (0)

AVX512_INLINE float k_dot_avx512(const uint32_t type, const uint8_t *row, long nb, const float *x) {
    const long bb = block_bytes(type);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (long i = 0; i < nb; i++, row += bb, x += 256) {
#define K_DOT_EMIT(k, w) acc[(k) & 3] = _mm512_fmadd_ps((w), _mm512_loadu_ps(x + 16 * (k)), acc[(k) & 3])
        K_BLOCK_AVX512(type, row, K_DOT_EMIT);
#undef K_DOT_EMIT
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

AVX512_INLINE void k_dequant_avx512(const uint32_t type, const uint8_t *src, long nb, float *dst) {
    const long bb = block_bytes(type);
    for (long i = 0; i < nb; i++, src += bb, dst += 256) {
#define K_STORE_EMIT(k, w) _mm512_storeu_ps(dst + 16 * (k), (w))
        K_BLOCK_AVX512(type, src, K_STORE_EMIT);
#undef K_STORE_EMIT
    }
}

AVX512_INLINE float blocks_dot_avx512(const uint32_t type, const uint8_t *row, long nb, const float *x) {
    // Two blocks per step into four accumulators, so no FMA waits on the previous one.
    const long bb = block_bytes(type);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    long i = 0;
    for (; i + 2 <= nb; i += 2, row += 2 * bb, x += 64) {
        __m512 w[2], u[2];
        block_avx512(type, row, w);
        block_avx512(type, row + bb, u);
        s0 = _mm512_fmadd_ps(w[0], _mm512_loadu_ps(x), s0);
        s1 = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(x + 16), s1);
        s2 = _mm512_fmadd_ps(u[0], _mm512_loadu_ps(x + 32), s2);
        s3 = _mm512_fmadd_ps(u[1], _mm512_loadu_ps(x + 48), s3);
    }
    if (i < nb) {
        __m512 w[2];
        block_avx512(type, row, w);
        s0 = _mm512_fmadd_ps(w[0], _mm512_loadu_ps(x), s0);
        s1 = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(x + 16), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static void gemv_avx512(uint32_t type, const uint8_t *base, size_t rowBytes, long r0, long r1, long cols,
                               const float *x, float *out) {
    const long nb = cols / 32;
    switch (type) {
    case T_Q4_0: GEMV_ROWS(blocks_dot_avx512(T_Q4_0, row, nb, x)); break;
    case T_Q4_1: GEMV_ROWS(blocks_dot_avx512(T_Q4_1, row, nb, x)); break;
    case T_Q5_0: GEMV_ROWS(blocks_dot_avx512(T_Q5_0, row, nb, x)); break;
    case T_Q5_1: GEMV_ROWS(blocks_dot_avx512(T_Q5_1, row, nb, x)); break;
    case T_Q8_0: GEMV_ROWS(blocks_dot_avx512(T_Q8_0, row, nb, x)); break;
    case T_Q4_K: GEMV_ROWS(k_dot_avx512(T_Q4_K, row, cols / 256, x)); break;
    case T_Q5_K: GEMV_ROWS(k_dot_avx512(T_Q5_K, row, cols / 256, x)); break;
    case T_Q6_K: GEMV_ROWS(k_dot_avx512(T_Q6_K, row, cols / 256, x)); break;
    case PK_T_IQ4_NL: case PK_T_IQ4_XS: GEMV_ROWS(pk_lowbit_dot_avx512(type, row, cols, x)); break;
    default: gemv_avx2(type, base, rowBytes, r0, r1, cols, x, out); break;
    }
}

AVX512_INLINE void blocks_dequant_avx512(const uint32_t type, const uint8_t *src, long nb, float *dst) {
    const long bb = block_bytes(type);
    for (long i = 0; i < nb; i++, src += bb, dst += 32) {
        __m512 w[2];
        block_avx512(type, src, w);
        _mm512_storeu_ps(dst, w[0]);
        _mm512_storeu_ps(dst + 16, w[1]);
    }
}

AVX512 static void dequant_avx512(uint32_t type, const uint8_t *src, long count, float *dst) {
    const long nb = count / 32;
    switch (type) {
    case T_Q4_0: blocks_dequant_avx512(T_Q4_0, src, nb, dst); break;
    case T_Q4_1: blocks_dequant_avx512(T_Q4_1, src, nb, dst); break;
    case T_Q5_0: blocks_dequant_avx512(T_Q5_0, src, nb, dst); break;
    case T_Q5_1: blocks_dequant_avx512(T_Q5_1, src, nb, dst); break;
    case T_Q8_0: blocks_dequant_avx512(T_Q8_0, src, nb, dst); break;
    case T_Q4_K: k_dequant_avx512(T_Q4_K, src, count / 256, dst); break;
    case T_Q5_K: k_dequant_avx512(T_Q5_K, src, count / 256, dst); break;
    case T_Q6_K: k_dequant_avx512(T_Q6_K, src, count / 256, dst); break;
    case PK_T_IQ4_NL: case PK_T_IQ4_XS: pk_lowbit_dequant_avx512(type, src, count, dst); break;
    default: dequant_avx2(type, src, count, dst); break;
    }
}

// Batched products (prefill): a panel of 64 weight rows is dequantized once, stored transposed
// (panel[c * 64 + j] = W[r0 + j, c]), and swept by a 6 × 64 register tile: per column c, four
// vectors of weights and six broadcast inputs feed 24 FMAs into 24 accumulators.
enum { PANEL = 64, TILE_B = 6 };

AVX512_INLINE void panel_kernel_avx512(const int nb, const float *x, long ldx, const float *panel, long K,
                                       float *out, long ldo, const __mmask16 mask[4]) {
    __m512 acc[TILE_B][4];
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
    for (long c = 0; c < K; c++) {
        const float *p = panel + c * PANEL;
        const __m512 w0 = _mm512_load_ps(p), w1 = _mm512_load_ps(p + 16);
        const __m512 w2 = _mm512_load_ps(p + 32), w3 = _mm512_load_ps(p + 48);
        for (int i = 0; i < nb; i++) {
            const __m512 xv = _mm512_set1_ps(x[i * ldx + c]);
            acc[i][0] = _mm512_fmadd_ps(w0, xv, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(w1, xv, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(w2, xv, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(w3, xv, acc[i][3]);
        }
    }
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(out + i * ldo + 16 * j, mask[j], acc[i][j]);
}

// Columns c ..< c + 16 of 16 rows (row i at rows + i·ld) written transposed: column c + k to
// dst + k·PANEL, its 16 values in row order. Three rounds of interleaves in registers.
AVX512_INLINE void transpose16_avx512(const float *rows, long ld, long c, float *dst) {
    __m512 a[16], t[16], u[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_loadu_ps(rows + i * ld + c);
    // Pairs of rows: per 128-bit lane L, t[2i] = (r[4L], s[4L], r[4L+1], s[4L+1]), t[2i+1] the next two.
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    // Groups of four rows: u[4g + k] holds, in lane L, column 4L + k of rows 4g ..< 4g + 4.
    for (int g = 0; g < 4; g++) {
        const __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    // Lane L of the four groups side by side is column 4L + k.
    for (int k = 0; k < 4; k++) {
        const __m512 lo01 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44), hi01 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE);
        const __m512 lo23 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44), hi23 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
        _mm512_store_ps(dst + (0 + k) * PANEL, _mm512_shuffle_f32x4(lo01, lo23, 0x88));
        _mm512_store_ps(dst + (4 + k) * PANEL, _mm512_shuffle_f32x4(lo01, lo23, 0xDD));
        _mm512_store_ps(dst + (8 + k) * PANEL, _mm512_shuffle_f32x4(hi01, hi23, 0x88));
        _mm512_store_ps(dst + (12 + k) * PANEL, _mm512_shuffle_f32x4(hi01, hi23, 0xDD));
    }
}

AVX512 static void gemm_panel_avx512(uint32_t type, const uint8_t *base, size_t rowBytes, long r0, long r1,
                                     long cols, const float *x, long b0, long b1, float *out, long ldo) {
    const long n = r1 - r0;
    float *scratch = pk_thread_scratch((size_t)(PANEL + 16) * (size_t)cols);
    if (scratch == NULL) abort();
    float *panel = scratch, *rows = scratch + (size_t)PANEL * (size_t)cols;
    // The panel holds the rows transposed, 16 at a time: column c of row j at panel[c·PANEL + j].
    // Rows past r1 are zero so the kernel can run full width; their results are masked off.
    for (long j0 = 0; j0 < PANEL; j0 += 16) {
        for (long j = 0; j < 16; j++) {
            float *dst = rows + j * cols;
            if (j0 + j < n) dequant_avx512(type, base + (size_t)(r0 + j0 + j) * rowBytes, cols, dst);
            else memset(dst, 0, (size_t)cols * sizeof(float));
        }
        long c = 0;
        for (; c + 16 <= cols; c += 16) transpose16_avx512(rows, cols, c, panel + c * PANEL + j0);
        for (; c < cols; c++)
            for (long j = 0; j < 16; j++) panel[c * PANEL + j0 + j] = rows[j * cols + c];
    }
    __mmask16 mask[4];
    for (int j = 0; j < 4; j++) {
        const long valid = n - 16 * j;
        mask[j] = valid >= 16 ? 0xffff : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1);
    }
    long b = b0;
    for (; b + TILE_B <= b1; b += TILE_B)
        panel_kernel_avx512(TILE_B, x + b * cols, cols, panel, cols, out + b * ldo + r0, ldo, mask);
    switch (b1 - b) {
    case 5: panel_kernel_avx512(5, x + b * cols, cols, panel, cols, out + b * ldo + r0, ldo, mask); break;
    case 4: panel_kernel_avx512(4, x + b * cols, cols, panel, cols, out + b * ldo + r0, ldo, mask); break;
    case 3: panel_kernel_avx512(3, x + b * cols, cols, panel, cols, out + b * ldo + r0, ldo, mask); break;
    case 2: panel_kernel_avx512(2, x + b * cols, cols, panel, cols, out + b * ldo + r0, ldo, mask); break;
    case 1: panel_kernel_avx512(1, x + b * cols, cols, panel, cols, out + b * ldo + r0, ldo, mask); break;
    }
}

// Decode of several sequences (pk_gemv_multi): each block of a row is dequantized once in registers
// and multiplied into the accumulators of up to MULTI sequences, each sequence's accumulators
// updated in exactly the order blocks_dot_avx512 / k_dot_avx512 update them for one vector, so
// every result has the bits pk_gemv gives.
enum { MULTI = 4 };

AVX512_INLINE void blocks_dot_multi_avx512(const uint32_t type, const uint8_t *row, long nb, const float *x,
                                           long ldx, const int ns, float *res) {
    const long bb = block_bytes(type);
    __m512 s[MULTI][4];
    for (int k = 0; k < ns; k++)
        for (int j = 0; j < 4; j++) s[k][j] = _mm512_setzero_ps();
    long i = 0;
    for (; i + 2 <= nb; i += 2, row += 2 * bb, x += 64) {
        __m512 w[2], u[2];
        block_avx512(type, row, w);
        block_avx512(type, row + bb, u);
        for (int k = 0; k < ns; k++) {
            const float *xk = x + k * ldx;
            s[k][0] = _mm512_fmadd_ps(w[0], _mm512_loadu_ps(xk), s[k][0]);
            s[k][1] = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(xk + 16), s[k][1]);
            s[k][2] = _mm512_fmadd_ps(u[0], _mm512_loadu_ps(xk + 32), s[k][2]);
            s[k][3] = _mm512_fmadd_ps(u[1], _mm512_loadu_ps(xk + 48), s[k][3]);
        }
    }
    if (i < nb) {
        __m512 w[2];
        block_avx512(type, row, w);
        for (int k = 0; k < ns; k++) {
            const float *xk = x + k * ldx;
            s[k][0] = _mm512_fmadd_ps(w[0], _mm512_loadu_ps(xk), s[k][0]);
            s[k][1] = _mm512_fmadd_ps(w[1], _mm512_loadu_ps(xk + 16), s[k][1]);
        }
    }
    for (int k = 0; k < ns; k++)
        res[k] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[k][0], s[k][1]), _mm512_add_ps(s[k][2], s[k][3])));
}

AVX512_INLINE void k_dot_multi_avx512(const uint32_t type, const uint8_t *row, long nb, const float *x, long ldx,
                                      const int ns, float *res) {
    const long bb = block_bytes(type);
    __m512 acc[MULTI][4];
    for (int k = 0; k < ns; k++)
        for (int j = 0; j < 4; j++) acc[k][j] = _mm512_setzero_ps();
    for (long i = 0; i < nb; i++, row += bb, x += 256) {
#define K_MULTI_EMIT(k, w)                                                                              \
        do {                                                                                            \
            const __m512 w_ = (w);                                                                      \
            for (int s_ = 0; s_ < ns; s_++)                                                             \
                acc[s_][(k) & 3] = _mm512_fmadd_ps(w_, _mm512_loadu_ps(x + s_ * ldx + 16 * (k)), acc[s_][(k) & 3]); \
        } while (0)
        K_BLOCK_AVX512(type, row, K_MULTI_EMIT);
#undef K_MULTI_EMIT
    }
    for (int k = 0; k < ns; k++)
        res[k] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[k][0], acc[k][1]), _mm512_add_ps(acc[k][2], acc[k][3])));
}

// One row against `ns` (1 ... MULTI, a constant after inlining) vectors.
AVX512_INLINE void row_multi_avx512(const uint32_t type, const uint8_t *row, long cols, const float *x, long ldx,
                                    const int ns, float *res) {
    switch (type) {
    case T_Q4_K: case T_Q5_K: case T_Q6_K: k_dot_multi_avx512(type, row, cols / 256, x, ldx, ns, res); break;
    default: blocks_dot_multi_avx512(type, row, cols / 32, x, ldx, ns, res); break;
    }
}

#define MULTI_TYPE(T)                                                                                   \
    case T:                                                                                             \
        for (long t = r0; t < r1; t += MULTI_ROWS) {                                                    \
            const long te = t + MULTI_ROWS < r1 ? t + MULTI_ROWS : r1;                                  \
            for (long b = 0; b < batch; b += MULTI) {                                                   \
                const long ns = batch - b < MULTI ? batch - b : MULTI;                                  \
                for (long r = t; r < te; r++) {                                                         \
                    const uint8_t *row = base + (size_t)r * rowBytes;                                   \
                    float res[MULTI];                                                                   \
                    switch (ns) {                                                                       \
                    case 4: row_multi_avx512(T, row, cols, x + b * ldx, ldx, 4, res); break;            \
                    case 3: row_multi_avx512(T, row, cols, x + b * ldx, ldx, 3, res); break;            \
                    case 2: row_multi_avx512(T, row, cols, x + b * ldx, ldx, 2, res); break;            \
                    default: row_multi_avx512(T, row, cols, x + b * ldx, ldx, 1, res); break;           \
                    }                                                                                   \
                    for (long k = 0; k < ns; k++) out[(b + k) * ldo + r] = res[k];                      \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
        return 1;

// Returns 0 when `type` has no fused kernel here (the caller then runs pk_gemv per vector).
AVX512 static int gemv_multi_avx512(uint32_t type, const uint8_t *base, size_t rowBytes, long r0, long r1, long cols,
                                    const float *x, long ldx, long batch, float *out, long ldo) {
    switch (type) {
    MULTI_TYPE(T_Q4_0)
    MULTI_TYPE(T_Q4_1)
    MULTI_TYPE(T_Q5_0)
    MULTI_TYPE(T_Q5_1)
    MULTI_TYPE(T_Q8_0)
    MULTI_TYPE(T_Q4_K)
    MULTI_TYPE(T_Q5_K)
    MULTI_TYPE(T_Q6_K)
    default: return 0;
    }
}
#undef MULTI_TYPE

static int detect_avx512(void) {
    unsigned a, b, c, d;
    if (!detect_avx2() || __get_cpuid_max(0, 0) < 7) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 0xe6) != 0xe6) return 0;  // the OS saves opmask and ZMM state too
    __cpuid_count(7, 0, a, b, c, d);
    const int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return f && bw && vl;
}
#endif

// MARK: - dispatch

static int best_isa = -1;
static pthread_once_t best_once = PTHREAD_ONCE_INIT;
static void find_best(void) {
#ifdef PK_X86
    best_isa = detect_avx512() ? PK_ISA_AVX512 : detect_avx2() ? PK_ISA_AVX2 : PK_ISA_GENERIC;
#else
    best_isa = PK_ISA_GENERIC;
#endif
}

int pk_best_isa(void) {
    pthread_once(&best_once, find_best);
    return best_isa;
}

void pk_limit_isa(int level) {
    pthread_once(&best_once, find_best);
    if (level >= PK_ISA_GENERIC && level < best_isa) best_isa = level;
}

static inline int usable(int isa) { return isa <= pk_best_isa() ? isa : pk_best_isa(); }

int pk_dequantize(int isa, uint32_t type, const void *src, long count, float *dst) {
    if (!pk_supported(type)) return -1;
#ifdef PK_X86
    switch (usable(isa)) {
    case PK_ISA_AVX512: dequant_avx512(type, src, count, dst); return 0;
    case PK_ISA_AVX2: dequant_avx2(type, src, count, dst); return 0;
    }
#endif
    (void)isa;
    dequant_generic(type, src, count, dst);
    return 0;
}

float pk_dot_f32(int isa, const float *a, const float *b, long n) {
#ifdef PK_X86
    if (usable(isa) >= PK_ISA_AVX2) return dot_f32_avx2(a, b, n);
#endif
    (void)isa;
    return dot_generic(a, b, n);
}

void pk_gemv(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
             const float *x, float *out) {
    const uint8_t *base = w;
#ifdef PK_X86
    switch (usable(isa)) {
    case PK_ISA_AVX512: gemv_avx512(type, base, rowBytes, r0, r1, cols, x, out); return;
    case PK_ISA_AVX2: gemv_avx2(type, base, rowBytes, r0, r1, cols, x, out); return;
    }
#endif
    (void)isa;
    for (long r = r0; r < r1; r++) out[r - r0] = row_dot_generic(type, base + (size_t)r * rowBytes, cols, x);
}

void pk_gemv_batch(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1,
                   long cols, const float *x, long batch, float *out, long ldo) {
    const uint8_t *base = w;
    float *row = pk_thread_scratch((size_t)cols);
    if (row == NULL) abort();
    const int level = usable(isa);
    for (long r = r0; r < r1; r++) {
        pk_dequantize(level, type, base + (size_t)r * rowBytes, cols, row);
        for (long b = 0; b < batch; b++) {
#ifdef PK_X86
            if (level >= PK_ISA_AVX2) { out[b * ldo + r] = dot_f32_avx2(row, x + b * cols, cols); continue; }
#endif
            out[b * ldo + r] = dot_generic(row, x + b * cols, cols);
        }
    }
}

void pk_gemv_multi(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
                   const float *x, long ldx, long batch, float *out, long ldo) {
    const uint8_t *base = w;
    if (batch <= 0 || r1 <= r0) return;
#ifdef PK_X86
    if (usable(isa) == PK_ISA_AVX512 && gemv_multi_avx512(type, base, rowBytes, r0, r1, cols, x, ldx, batch, out, ldo))
        return;
#endif
    // Elsewhere: pk_gemv per vector over tiles of rows small enough to stay in cache across the
    // batch, so the weights still come from memory once.
    for (long t = r0; t < r1; t += MULTI_ROWS) {
        const long te = t + MULTI_ROWS < r1 ? t + MULTI_ROWS : r1;
        for (long b = 0; b < batch; b++) pk_gemv(isa, type, w, rowBytes, t, te, cols, x + b * ldx, out + b * ldo + t);
    }
}

// MARK: - per-thread scratch

typedef struct { float *data; size_t count; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *p) {
    scratch_t *s = p;
    free(s->data);
    free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

float *pk_thread_scratch(size_t count) {
    if (count == 0) count = 1;  // a valid pointer even for empty rows
    pthread_once(&scratch_once, scratch_init);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (s->count < count) {
        free(s->data);
        // 64-byte alignment for vector loads; rounded up so the size is a multiple of it.
        const size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
        s->data = aligned_alloc(64, bytes);
        s->count = s->data ? count : 0;
    }
    return s->data;
}

int pk_gemm_panel(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
                  const float *x, long b0, long b1, float *out, long ldo) {
#ifdef PK_X86
    if (usable(isa) == PK_ISA_AVX512 && pk_supported(type) && r1 - r0 <= 64) {
        gemm_panel_avx512(type, w, rowBytes, r0, r1, cols, x, b0, b1, out, ldo);
        return 0;
    }
#endif
    (void)isa; (void)type; (void)w; (void)rowBytes; (void)r0; (void)r1; (void)cols; (void)x; (void)b0; (void)b1;
    (void)out; (void)ldo;
    return -1;
}

// MARK: - screening

void pk_screen_q8_0(int isa, const void *w, size_t rowBytes, long r0, long r1, long cols, const float *x,
                    const float *xabs, float *approx, float *radius) {
    pk_gemv(isa, T_Q8_0, w, rowBytes, r0, r1, cols, x, approx);
    const uint8_t *base = w;
    const long nb = cols / 32;
    for (long r = r0; r < r1; r++) {
        const uint8_t *row = base + (size_t)r * rowBytes;
        float s = 0;
        for (long b = 0; b < nb; b++) s += pk_half_to_float(load_u16(row + 34 * b)) * xabs[b];
        radius[r - r0] = s;
    }
}
