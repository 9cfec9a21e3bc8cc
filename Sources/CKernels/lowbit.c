// Q2_K, Q3_K, IQ4_NL and IQ4_XS: dequantization and dot products in portable C, with AVX2, and
// for the IQ4 types with AVX-512.
// Block layouts as ggml stores them (ggml-common.h; dequantize_row_* in ggml-quants.c):
//   Q2_K   (256 elements, 84 bytes):  u8 scales[16] (low nibble scale, high nibble min);
//          u8 qs[64] (2-bit codes); f16 d; f16 dmin.
//   Q3_K   (256 elements, 110 bytes): u8 hmask[32] (third bits); u8 qs[64] (low two bits);
//          u8 scales[12] (sixteen 6-bit scales, offset 32); f16 d.
//   IQ4_NL (32 elements, 18 bytes):   f16 d; u8 qs[16] (4-bit indices into a fixed table).
//   IQ4_XS (256 elements, 136 bytes): f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128].
// In Q2_K and Q3_K element 128·n + 32·j + l (n < 2, j < 4, l < 32) takes bits 2j, 2j+1 of
// qs[32·n + l]; its scale is number 8·n + 2·j + (l ≥ 16). In Q3_K its third bit is bit 4·n + j of
// hmask[l], and a clear bit subtracts 4. In IQ4 element j < 16 of a 32-group is the low nibble of
// qs[j], element j + 16 the high nibble.
// Every product here (small integers times a half) is exact in float and Q2_K's one subtraction
// rounds once however it is formed, so the portable, AVX2 and AVX-512 versions give the same bits,
// and the same as ggml's dequantization.
#include "lowbit.h"
#include "CKernels.h"
#include "hsum.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define PK_LOWBIT_X86 1
#include <immintrin.h>
#endif

/// The sixteen IQ4 values (ggml's kvalues_iq4nl), a non-linear grid chosen by its authors.
static const int8_t iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline uint16_t u16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

int pk_lowbit_type(uint32_t type) {
    return type == PK_T_Q2_K || type == PK_T_Q3_K || type == PK_T_IQ4_NL || type == PK_T_IQ4_XS;
}

/// Q3_K scale number s (0..15) with its offset removed: low four bits from a nibble of bytes
/// 0..7, high two bits from bytes 8..11.
static inline int q3_k_scale(const uint8_t *sc, int s) {
    const int low = s < 8 ? sc[s] & 0x0f : sc[s - 8] >> 4;
    const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    return (low | high << 4) - 32;
}

/// IQ4_XS scale of 32-group ib (0..7) with its offset removed.
static inline int iq4_xs_scale(const uint8_t *b, int ib) {
    const int low = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f;
    const int high = (u16_at(b + 2) >> (2 * ib)) & 3;
    return (low | high << 4) - 32;
}

static void q2_k_generic(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *qs = b + 16;
    const float d = pk_half_to_float(u16_at(b + 80)), dmin = pk_half_to_float(u16_at(b + 82));
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int h = 0; h < 2; h++) {
                const uint8_t s = scales[8 * n + 2 * j + h];
                const float dl = d * (float)(s & 0x0f), ml = dmin * (float)(s >> 4);
                for (int l = 0; l < 16; l++) {
                    const int q = (qs[32 * n + 16 * h + l] >> (2 * j)) & 3;
                    y[128 * n + 32 * j + 16 * h + l] = dl * (float)q - ml;
                }
            }
}

static void q3_k_generic(const uint8_t *b, float *y) {
    const uint8_t *hmask = b, *qs = b + 32, *scales = b + 96;
    const float d = pk_half_to_float(u16_at(b + 108));
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int h = 0; h < 2; h++) {
                const float dl = d * (float)q3_k_scale(scales, 8 * n + 2 * j + h);
                for (int l = 16 * h; l < 16 * h + 16; l++) {
                    const int low = (qs[32 * n + l] >> (2 * j)) & 3;
                    const int q = low - ((hmask[l] >> (4 * n + j)) & 1 ? 0 : 4);
                    y[128 * n + 32 * j + l] = dl * (float)q;
                }
            }
}

static void iq4_group_generic(float dl, const uint8_t *qs, float *y) {
    for (int j = 0; j < 16; j++) {
        y[j] = dl * (float)iq4_values[qs[j] & 0x0f];
        y[j + 16] = dl * (float)iq4_values[qs[j] >> 4];
    }
}

void pk_lowbit_dequant_generic(uint32_t type, const uint8_t *src, long count, float *dst) {
    switch (type) {
    case PK_T_Q2_K:
        for (long i = 0; i < count / 256; i++) q2_k_generic(src + 84 * i, dst + 256 * i);
        break;
    case PK_T_Q3_K:
        for (long i = 0; i < count / 256; i++) q3_k_generic(src + 110 * i, dst + 256 * i);
        break;
    case PK_T_IQ4_NL:
        for (long i = 0; i < count / 32; i++, src += 18, dst += 32) iq4_group_generic(pk_half_to_float(u16_at(src)), src + 2, dst);
        break;
    case PK_T_IQ4_XS:
        for (long i = 0; i < count / 256; i++, src += 136) {
            const float d = pk_half_to_float(u16_at(src));
            for (int ib = 0; ib < 8; ib++, dst += 32)
                iq4_group_generic(d * (float)iq4_xs_scale(src, ib), src + 8 + 16 * ib, dst);
        }
        break;
    }
}

#ifdef PK_LOWBIT_X86
#define LB_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LB_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

LB_INLINE __m256 lb_u8x8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
LB_INLINE __m256 lb_i8x8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/// Elements 32·j .. 32·j + 31 of half n of a Q2_K block as four vectors of eight.
LB_INLINE void q2_k_group_avx2(const uint8_t *b, int n, int j, float d, float dmin, __m256 w[4]) {
    const __m256i bytes = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * n));
    // A 16-bit shift by 2j ≤ 6 leaves bits 2j, 2j+1 of each byte in its own low two bits.
    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * j), _mm256_set1_epi8(3));
    const uint8_t s0 = b[8 * n + 2 * j], s1 = b[8 * n + 2 * j + 1];
    const __m256 d0 = _mm256_set1_ps(d * (float)(s0 & 0x0f)), m0 = _mm256_set1_ps(-(dmin * (float)(s0 >> 4)));
    const __m256 d1 = _mm256_set1_ps(d * (float)(s1 & 0x0f)), m1 = _mm256_set1_ps(-(dmin * (float)(s1 >> 4)));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    // dl·q is exact, so the fused multiply-add rounds once, as dl·q − ml does.
    w[0] = _mm256_fmadd_ps(lb_u8x8(lo), d0, m0);
    w[1] = _mm256_fmadd_ps(lb_u8x8(_mm_srli_si128(lo, 8)), d0, m0);
    w[2] = _mm256_fmadd_ps(lb_u8x8(hi), d1, m1);
    w[3] = _mm256_fmadd_ps(lb_u8x8(_mm_srli_si128(hi, 8)), d1, m1);
}

/// The same for Q3_K.
LB_INLINE void q3_k_group_avx2(const uint8_t *b, int n, int j, float d, __m256 w[4]) {
    const __m256i bytes = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * n));
    __m256i q = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * j), _mm256_set1_epi8(3));
    const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * n + j)));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)b), bit), bit);
    q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
    const __m256 d0 = _mm256_set1_ps(d * (float)q3_k_scale(b + 96, 8 * n + 2 * j));
    const __m256 d1 = _mm256_set1_ps(d * (float)q3_k_scale(b + 96, 8 * n + 2 * j + 1));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    w[0] = _mm256_mul_ps(lb_i8x8(lo), d0);
    w[1] = _mm256_mul_ps(lb_i8x8(_mm_srli_si128(lo, 8)), d0);
    w[2] = _mm256_mul_ps(lb_i8x8(hi), d1);
    w[3] = _mm256_mul_ps(lb_i8x8(_mm_srli_si128(hi, 8)), d1);
}

/// A 32-group of IQ4 indices at qs with scale dl: the table lookup is one byte shuffle per half.
LB_INLINE void iq4_group_avx2(const uint8_t *qs, float dl, __m256 w[4]) {
    const __m128i table = _mm_loadu_si128((const __m128i *)iq4_values);
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), low4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(q, low4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), low4));
    const __m256 d = _mm256_set1_ps(dl);
    w[0] = _mm256_mul_ps(lb_i8x8(lo), d);
    w[1] = _mm256_mul_ps(lb_i8x8(_mm_srli_si128(lo, 8)), d);
    w[2] = _mm256_mul_ps(lb_i8x8(hi), d);
    w[3] = _mm256_mul_ps(lb_i8x8(_mm_srli_si128(hi, 8)), d);
}

/// Calls body(w) for every 32-group of the row (or `count` elements) in order, w as four vectors.
#define LOWBIT_GROUPS_AVX2(type, src, count, body)                                                      \
    do {                                                                                                \
        __m256 w_[4];                                                                                   \
        switch (type) {                                                                                 \
        case PK_T_Q2_K:                                                                                 \
            for (long i_ = 0; i_ < (count) / 256; i_++) {                                               \
                const uint8_t *b_ = (src) + 84 * i_;                                                    \
                const float d_ = _cvtsh_ss(u16_at(b_ + 80)), m_ = _cvtsh_ss(u16_at(b_ + 82));           \
                for (int g_ = 0; g_ < 8; g_++) { q2_k_group_avx2(b_, g_ / 4, g_ % 4, d_, m_, w_); body; } \
            }                                                                                           \
            break;                                                                                      \
        case PK_T_Q3_K:                                                                                 \
            for (long i_ = 0; i_ < (count) / 256; i_++) {                                               \
                const uint8_t *b_ = (src) + 110 * i_;                                                   \
                const float d_ = _cvtsh_ss(u16_at(b_ + 108));                                           \
                for (int g_ = 0; g_ < 8; g_++) { q3_k_group_avx2(b_, g_ / 4, g_ % 4, d_, w_); body; }   \
            }                                                                                           \
            break;                                                                                      \
        case PK_T_IQ4_NL:                                                                               \
            for (long i_ = 0; i_ < (count) / 32; i_++) {                                                \
                const uint8_t *b_ = (src) + 18 * i_;                                                    \
                iq4_group_avx2(b_ + 2, _cvtsh_ss(u16_at(b_)), w_);                                      \
                body;                                                                                   \
            }                                                                                           \
            break;                                                                                      \
        case PK_T_IQ4_XS:                                                                               \
            for (long i_ = 0; i_ < (count) / 256; i_++) {                                               \
                const uint8_t *b_ = (src) + 136 * i_;                                                   \
                const float d_ = _cvtsh_ss(u16_at(b_));                                                 \
                for (int g_ = 0; g_ < 8; g_++) {                                                        \
                    iq4_group_avx2(b_ + 8 + 16 * g_, d_ * (float)iq4_xs_scale(b_, g_), w_);             \
                    body;                                                                               \
                }                                                                                       \
            }                                                                                           \
            break;                                                                                      \
        }                                                                                               \
    } while (0)

LB_AVX2 void pk_lowbit_dequant_avx2(uint32_t type, const uint8_t *src, long count, float *dst) {
    float *y = dst;
    LOWBIT_GROUPS_AVX2(type, src, count, {
        _mm256_storeu_ps(y, w_[0]);
        _mm256_storeu_ps(y + 8, w_[1]);
        _mm256_storeu_ps(y + 16, w_[2]);
        _mm256_storeu_ps(y + 24, w_[3]);
        y += 32;
    });
}

LB_AVX2 float pk_lowbit_dot_avx2(uint32_t type, const uint8_t *row, long cols, const float *x) {
    // One accumulator per vector of a group, so no FMA waits on the previous one.
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const float *xp = x;
    LOWBIT_GROUPS_AVX2(type, row, cols, {
        s0 = _mm256_fmadd_ps(w_[0], _mm256_loadu_ps(xp), s0);
        s1 = _mm256_fmadd_ps(w_[1], _mm256_loadu_ps(xp + 8), s1);
        s2 = _mm256_fmadd_ps(w_[2], _mm256_loadu_ps(xp + 16), s2);
        s3 = _mm256_fmadd_ps(w_[3], _mm256_loadu_ps(xp + 24), s3);
        xp += 32;
    });
    return pk_hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// AVX-512: an IQ4 group's sixteen possible weights, dl·table[k], in one vector (exact products,
// so the same bits), and each weight picked by vpermps, which reads the low four bits of each
// 32-bit index: the 16 code bytes widened to 32-bit lanes index the low nibbles directly and,
// shifted right by four, the high ones (as Q4_0 does in kernels.c).
#define LB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define LB_INLINE512 static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

int pk_lowbit_has_avx512(uint32_t type) { return type == PK_T_IQ4_NL || type == PK_T_IQ4_XS; }

LB_INLINE512 void iq4_group_avx512(const uint8_t *qs, float dl, __m512 w[2]) {
    const __m512 values = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)iq4_values)));
    const __m512 table = _mm512_mul_ps(values, _mm512_set1_ps(dl));
    const __m512i z = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
    w[0] = _mm512_permutexvar_ps(z, table);
    w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(z, 4), table);
}

/// Calls body(w) for every 32-group of an IQ4_NL or IQ4_XS row in order, w as two vectors.
#define IQ4_GROUPS_AVX512(type, src, count, body)                                                       \
    do {                                                                                                \
        __m512 w_[2];                                                                                   \
        if ((type) == PK_T_IQ4_NL) {                                                                    \
            for (long i_ = 0; i_ < (count) / 32; i_++) {                                                \
                const uint8_t *b_ = (src) + 18 * i_;                                                    \
                iq4_group_avx512(b_ + 2, _cvtsh_ss(u16_at(b_)), w_);                                    \
                body;                                                                                   \
            }                                                                                           \
        } else {                                                                                        \
            for (long i_ = 0; i_ < (count) / 256; i_++) {                                               \
                const uint8_t *b_ = (src) + 136 * i_;                                                   \
                const float d_ = _cvtsh_ss(u16_at(b_));                                                 \
                for (int g_ = 0; g_ < 8; g_++) {                                                        \
                    iq4_group_avx512(b_ + 8 + 16 * g_, d_ * (float)iq4_xs_scale(b_, g_), w_);           \
                    body;                                                                               \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    } while (0)

LB_AVX512 void pk_lowbit_dequant_avx512(uint32_t type, const uint8_t *src, long count, float *dst) {
    float *y = dst;
    IQ4_GROUPS_AVX512(type, src, count, {
        _mm512_storeu_ps(y, w_[0]);
        _mm512_storeu_ps(y + 16, w_[1]);
        y += 32;
    });
}

LB_AVX512 float pk_lowbit_dot_avx512(uint32_t type, const uint8_t *row, long cols, const float *x) {
    // Four accumulators, alternating between groups, so no FMA waits on the previous one.
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const float *xp = x;
    long g = 0;
    IQ4_GROUPS_AVX512(type, row, cols, {
        if (g++ & 1) {
            s2 = _mm512_fmadd_ps(w_[0], _mm512_loadu_ps(xp), s2);
            s3 = _mm512_fmadd_ps(w_[1], _mm512_loadu_ps(xp + 16), s3);
        } else {
            s0 = _mm512_fmadd_ps(w_[0], _mm512_loadu_ps(xp), s0);
            s1 = _mm512_fmadd_ps(w_[1], _mm512_loadu_ps(xp + 16), s1);
        }
        xp += 32;
    });
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#endif
