// The opt-in 8-bit activation products (DESIGN.md, "Numerics"): an input vector is quantized to
// blocks of 32 signed bytes with one float scale each, as llama.cpp quantizes activations
// (quantize_row_q8_0: d = max|x| / 127, q = round(x / d), ties away from zero), and each weight
// block's integer dot product with it is exact; only the scales and the sums of blocks are float.
// The result is about 1e-2 (relative L2 of a model's logits) from the exact product the default
// kernels compute, and no caller uses it unless asked to.
//
// A quantized vector of n = cols / 32 blocks lives in one buffer (pk_q8_bytes), laid out so the
// kernels load it whole: qs[n · 32] int8; d[n] float scales; s[n] = d · Σ q (the min term of
// Q4_1, Q5_1 and Q4_K); c8[n · 8] and c128[n · 8] int32, −8 and −128 times the sums of each 4
// consecutive q; d8[n · 8], each scale 8 times (two blocks' scales load as one 16-lane vector).
// Those corrections turn the unsigned products the byte instructions take into the signed ones:
// Σ (n − 8) · q = Σ n · q − 8 · Σ q for Q4_0's nibbles (twice that for Q5_0's −16), and
// Σ w · q = Σ (w + 128) · q − 128 · Σ q for Q8_0's bytes, per group of 4 as the instructions sum them.
#include "CKernels.h"
#include "half.h"
#include "hsum.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define PK_Q8_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

enum { Q_Q4_0 = 2, Q_Q4_1 = 3, Q_Q5_0 = 6, Q_Q5_1 = 7, Q_Q8_0 = 8, Q_Q4_K = 12 };

int pk_q8_supported(uint32_t type) {
    return type == Q_Q4_0 || type == Q_Q4_1 || type == Q_Q5_0 || type == Q_Q5_1 || type == Q_Q8_0 || type == Q_Q4_K;
}

// Bytes per block of the 32-element types, and where their 16 bytes of nibbles start (the last 16
// bytes of the block); Q5_0/Q5_1 keep the fifth bits of elements 0..31 in a u32 just before them.
static inline long q8_block_bytes(uint32_t type) {
    switch (type) {
    case Q_Q4_0: return 18;
    case Q_Q4_1: return 20;
    case Q_Q5_0: return 22;
    case Q_Q5_1: return 24;
    default: return 34;
    }
}

// Q4_K's 256-element blocks {f16 d, dmin; 12 bytes of 6-bit scales and mins; 128 bytes of nibbles}
// are eight sub-blocks of 32 (chunk j of 32 bytes: sub-block 2j in the low nibbles, 2j + 1 in the
// high ones), each like a Q4_1 block with scale d · sc_t and min −dmin · m_t: so the same 32-element
// activation blocks serve it, one per sub-block.
static void k4_scales(const uint8_t *blk, float ds[8], float dm[8]) {
    const float d = pk_widen_half((uint16_t)(blk[0] | blk[1] << 8)), dmin = pk_widen_half((uint16_t)(blk[2] | blk[3] << 8));
    const uint8_t *q = blk + 4;
    for (int j = 0; j < 8; j++) {
        // ggml's get_scale_min_k4.
        const int sc = j < 4 ? q[j] & 63 : (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        const int m = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        ds[j] = d * (float)sc;
        dm[j] = dmin * (float)m;
    }
}

size_t pk_q8_bytes(long cols) {
    const size_t n = cols > 0 ? (size_t)cols / 32 : 0;
    return n * 32 + n * 4 * 2 + n * 8 * 4 * 3;
}

typedef struct {
    const int8_t *qs;
    const float *d, *s;
    const int32_t *c8, *c128;
    const float *d8;
} q8_view;

static q8_view view_of(const void *q8, long nb) {
    const uint8_t *p = q8;
    q8_view v;
    v.qs = (const int8_t *)p;
    v.d = (const float *)(p + nb * 32);
    v.s = v.d + nb;
    v.c8 = (const int32_t *)(v.s + nb);
    v.c128 = v.c8 + nb * 8;
    v.d8 = (const float *)(v.c128 + nb * 8);
    return v;
}

void pk_quantize_q8(const float *x, long cols, void *q8) {
    const long nb = cols / 32;
    uint8_t *p = q8;
    int8_t *qs = (int8_t *)p;
    float *d = (float *)(p + nb * 32), *s = d + nb;
    int32_t *c8 = (int32_t *)(s + nb), *c128 = c8 + nb * 8;
    float *d8 = (float *)(c128 + nb * 8);
    for (long b = 0; b < nb; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(xb[j]);
            amax = a > amax ? a : amax;
        }
        const float db = amax / 127.0f, id = db != 0 ? 1.0f / db : 0.0f;
        int sum = 0;
        for (int g = 0; g < 8; g++) {
            int gs = 0;
            for (int j = 4 * g; j < 4 * g + 4; j++) {
                // |t| ≤ 127 for finite x; an infinite x makes the scale infinite (and the products
                // NaN, as the float path's would be) and t NaN, which must not reach the int cast.
                const float t = xb[j] * id;
                const int q = t == t ? (int)roundf(t > 127.0f ? 127.0f : t < -127.0f ? -127.0f : t) : 0;
                qs[b * 32 + j] = (int8_t)q;
                gs += q;
            }
            c8[b * 8 + g] = -8 * gs;
            c128[b * 8 + g] = -128 * gs;
            sum += gs;
        }
        d[b] = db;
        s[b] = db * (float)sum;
        for (int j = 0; j < 8; j++) d8[b * 8 + j] = db;
    }
}

// MARK: - portable

static float row_q8_k4_generic(const uint8_t *row, long nb, q8_view v) {
    float acc = 0, mins = 0;
    for (long i = 0; i < nb / 8; i++) {
        const uint8_t *blk = row + 144 * i;
        float ds[8], dm[8];
        k4_scales(blk, ds, dm);
        for (int t = 0; t < 8; t++) {
            const long b = 8 * i + t;
            const uint8_t *qs = blk + 16 + 32 * (t / 2);
            const int8_t *q = v.qs + b * 32;
            int sumi = 0;
            for (int l = 0; l < 32; l++) sumi += ((qs[l] >> (4 * (t & 1))) & 15) * q[l];
            acc += ds[t] * v.d[b] * (float)sumi;
            mins += dm[t] * v.s[b];
        }
    }
    return acc - mins;
}

static float row_q8_generic(uint32_t type, const uint8_t *row, long nb, q8_view v) {
    if (type == Q_Q4_K) return row_q8_k4_generic(row, nb, v);
    float acc = 0, mins = 0;
    for (long b = 0; b < nb; b++) {
        const int8_t *q = v.qs + b * 32;
        int sumi = 0;
        float dw;
        switch (type) {
        case Q_Q4_0: {
            const uint8_t *blk = row + 18 * b, *qs = blk + 2;
            dw = pk_widen_half((uint16_t)(blk[0] | blk[1] << 8));
            for (int j = 0; j < 16; j++) sumi += ((qs[j] & 15) - 8) * q[j] + ((qs[j] >> 4) - 8) * q[j + 16];
            break;
        }
        case Q_Q4_1: {
            const uint8_t *blk = row + 20 * b, *qs = blk + 4;
            dw = pk_widen_half((uint16_t)(blk[0] | blk[1] << 8));
            mins += pk_widen_half((uint16_t)(blk[2] | blk[3] << 8)) * v.s[b];
            for (int j = 0; j < 16; j++) sumi += (qs[j] & 15) * q[j] + (qs[j] >> 4) * q[j + 16];
            break;
        }
        case Q_Q5_0: case Q_Q5_1: {
            const long stride = q8_block_bytes(type);
            const uint8_t *blk = row + stride * b, *qs = blk + stride - 16;
            const uint32_t qh = (uint32_t)blk[stride - 20] | (uint32_t)blk[stride - 19] << 8 |
                                (uint32_t)blk[stride - 18] << 16 | (uint32_t)blk[stride - 17] << 24;
            const int bias = type == Q_Q5_0 ? 16 : 0;
            dw = pk_widen_half((uint16_t)(blk[0] | blk[1] << 8));
            if (type == Q_Q5_1) mins += pk_widen_half((uint16_t)(blk[2] | blk[3] << 8)) * v.s[b];
            for (int j = 0; j < 16; j++) {
                sumi += ((int)((qs[j] & 15) | ((qh >> j) & 1) << 4) - bias) * q[j];
                sumi += ((int)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - bias) * q[j + 16];
            }
            break;
        }
        default: {
            const uint8_t *blk = row + 34 * b;
            const int8_t *w = (const int8_t *)(blk + 2);
            dw = pk_widen_half((uint16_t)(blk[0] | blk[1] << 8));
            for (int j = 0; j < 32; j++) sumi += w[j] * q[j];
            break;
        }
        }
        acc += dw * v.d[b] * (float)sumi;
    }
    return acc + mins;
}

#ifdef PK_Q8_X86

// MARK: - AVX2

#define Q8_AVX2 static inline __attribute__((always_inline, target("avx2,fma,f16c")))

Q8_AVX2 uint16_t q8_u16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }

// 16 where bit e of the u32 at p is set, for bytes e = 0..31 (the fifth bits of Q5_0/Q5_1).
Q8_AVX2 __m256i fifth_bits_avx2(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i select = _mm256_set1_epi64x(0x8040201008040201);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select), _mm256_set1_epi8(16));
}

// Block b's 8 sums of 4 products (exact int32), its weight scale in *dw, and for Q4_1 its min
// term added to *mins.
Q8_AVX2 __m256i block_q8_avx2(const uint32_t type, const uint8_t *row, long b, q8_view v, float *dw,
                              float *mins) {
    const __m256i qx = _mm256_loadu_si256((const __m256i *)(v.qs + b * 32));
    const __m256i ones = _mm256_set1_epi16(1);
    switch (type) {
    case Q_Q4_0: case Q_Q4_1: case Q_Q5_0: case Q_Q5_1: {
        const long stride = q8_block_bytes(type);
        const uint8_t *blk = row + stride * b;
        const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + stride - 16));
        __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(15));
        if (type == Q_Q5_0 || type == Q_Q5_1) w = _mm256_or_si256(w, fifth_bits_avx2(blk + stride - 20));
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(w, qx), ones);
        *dw = _cvtsh_ss(q8_u16(blk));
        if (type == Q_Q4_0) {
            p = _mm256_add_epi32(p, _mm256_loadu_si256((const __m256i *)(v.c8 + b * 8)));
        } else if (type == Q_Q5_0) {
            // −16 · Σ q: twice Q4_0's correction.
            p = _mm256_add_epi32(p, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(v.c8 + b * 8)), 1));
        } else {
            *mins += _cvtsh_ss(q8_u16(blk + 2)) * v.s[b];
        }
        return p;
    }
    default: {
        const uint8_t *blk = row + 34 * b;
        const __m256i w = _mm256_loadu_si256((const __m256i *)(blk + 2));
        *dw = _cvtsh_ss(q8_u16(blk));
        // |w| · (q with w's sign): each product fits maddubs' int16 pairs (128 · 127 · 2 < 32768).
        return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(qx, w)), ones);
    }
    }
}

Q8_AVX2 float row_q8_avx2(const uint32_t type, const uint8_t *row, long nb, q8_view v) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float mins = 0, dw;
    long b = 0;
    for (; b + 2 <= nb; b += 2) {
        const __m256i p0 = block_q8_avx2(type, row, b, v, &dw, &mins);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * v.d[b]), _mm256_cvtepi32_ps(p0), acc0);
        const __m256i p1 = block_q8_avx2(type, row, b + 1, v, &dw, &mins);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dw * v.d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    if (b < nb) {
        const __m256i p0 = block_q8_avx2(type, row, b, v, &dw, &mins);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * v.d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return pk_hsum8(_mm256_add_ps(acc0, acc1)) + mins;
}

// Q4_K: nb counts 32-element blocks (8 per weight block).
Q8_AVX2 float row_q8_k4_avx2(const uint8_t *row, long nb, q8_view v) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(15);
    float mins = 0;
    for (long i = 0; i < nb / 8; i++) {
        const uint8_t *blk = row + 144 * i;
        float ds[8], dm[8];
        k4_scales(blk, ds, dm);
        for (int j = 0; j < 4; j++) {
            const long b = 8 * i + 2 * j;
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * j));
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(v.qs + b * 32))), ones);
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(v.qs + b * 32 + 32))), ones);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(ds[2 * j] * v.d[b]), _mm256_cvtepi32_ps(p0), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(ds[2 * j + 1] * v.d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
            mins += dm[2 * j] * v.s[b];
            mins += dm[2 * j + 1] * v.s[b + 1];
        }
    }
    return pk_hsum8(_mm256_add_ps(acc0, acc1)) - mins;
}

__attribute__((target("avx2,fma,f16c")))
static void gemv_q8_avx2(uint32_t type, const uint8_t *w, size_t rowBytes, long r0, long r1, long nb, q8_view v,
                         float *out) {
    switch (type) {
    case Q_Q4_0: for (long r = r0; r < r1; r++) out[r - r0] = row_q8_avx2(Q_Q4_0, w + (size_t)r * rowBytes, nb, v); break;
    case Q_Q4_1: for (long r = r0; r < r1; r++) out[r - r0] = row_q8_avx2(Q_Q4_1, w + (size_t)r * rowBytes, nb, v); break;
    case Q_Q5_0: for (long r = r0; r < r1; r++) out[r - r0] = row_q8_avx2(Q_Q5_0, w + (size_t)r * rowBytes, nb, v); break;
    case Q_Q5_1: for (long r = r0; r < r1; r++) out[r - r0] = row_q8_avx2(Q_Q5_1, w + (size_t)r * rowBytes, nb, v); break;
    case Q_Q4_K: for (long r = r0; r < r1; r++) out[r - r0] = row_q8_k4_avx2(w + (size_t)r * rowBytes, nb, v); break;
    default: for (long r = r0; r < r1; r++) out[r - r0] = row_q8_avx2(Q_Q8_0, w + (size_t)r * rowBytes, nb, v); break;
    }
}

// MARK: - AVX-512 with VNNI

#define Q8_VNNI static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

// [a × 8, b × 8] (AVX-512 F alone has no 8-float insert, so through doubles).
Q8_VNNI __m512 two_scales(float a, float b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)),
                                               _mm256_castps_pd(_mm256_set1_ps(b)), 1));
}

// Blocks b and b + 1 of a row, unpacked for any number of input vectors: 64 unsigned bytes (block b's
// 32 elements in order, then b + 1's), the weight scales [d_b × 8, d_b+1 × 8] and Q4_1's mins.
typedef struct { __m512i w; __m512 d; float m0, m1; } q8_pair;

Q8_VNNI q8_pair pair_weights(const uint32_t type, const uint8_t *row, long b) {
    q8_pair p;
    p.m0 = p.m1 = 0;
    switch (type) {
    case Q_Q4_0: case Q_Q4_1: case Q_Q5_0: case Q_Q5_1: {
        const long stride = q8_block_bytes(type);
        const uint8_t *b0 = row + stride * b, *b1 = b0 + stride;
        const __m256i raw = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(b1 + stride - 16)),
                                             _mm_loadu_si128((const __m128i *)(b0 + stride - 16)));
        // [b0 lo, b1 lo, b0 hi, b1 hi] → [b0 lo, b0 hi, b1 lo, b1 hi]: elements 0..31 of each block.
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1);
        p.w = _mm512_and_si512(_mm512_shuffle_i64x2(w, w, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(15));
        if (type == Q_Q5_0 || type == Q_Q5_1) {
            // Bit e of each block's u32 is element e's fifth bit: one mask of 64 bytes for the pair.
            uint32_t h0, h1;
            memcpy(&h0, b0 + stride - 20, 4);
            memcpy(&h1, b1 + stride - 20, 4);
            p.w = _mm512_or_si512(p.w, _mm512_maskz_mov_epi8((__mmask64)h0 | (__mmask64)h1 << 32, _mm512_set1_epi8(16)));
        }
        p.d = two_scales(_cvtsh_ss(q8_u16(b0)), _cvtsh_ss(q8_u16(b1)));
        if (type == Q_Q4_1 || type == Q_Q5_1) {
            p.m0 = _cvtsh_ss(q8_u16(b0 + 2));
            p.m1 = _cvtsh_ss(q8_u16(b1 + 2));
        }
        return p;
    }
    default: {
        const uint8_t *b0 = row + 34 * b, *b1 = b0 + 34;
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2))),
                                             _mm256_loadu_si256((const __m256i *)(b1 + 2)), 1);
        p.w = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));  // w + 128 as unsigned bytes
        p.d = two_scales(_cvtsh_ss(q8_u16(b0)), _cvtsh_ss(q8_u16(b1)));
        return p;
    }
    }
}

// The pair's 16 sums of 4 products with vector v (block b's in the low 8 lanes), exact, as floats
// times both scales; Q4_1's min terms added to *mins (block b's first).
Q8_VNNI __m512 pair_dot(const uint32_t type, q8_pair p, q8_view v, long b, float *mins) {
    const __m512i qx = _mm512_loadu_si512(v.qs + b * 32);
    __m512i sums;
    switch (type) {
    case Q_Q4_0: sums = _mm512_dpbusd_epi32(_mm512_loadu_si512(v.c8 + b * 8), p.w, qx); break;
    case Q_Q5_0: sums = _mm512_dpbusd_epi32(_mm512_slli_epi32(_mm512_loadu_si512(v.c8 + b * 8), 1), p.w, qx); break;
    case Q_Q4_1: case Q_Q5_1:
        sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), p.w, qx);
        *mins += p.m0 * v.s[b];
        *mins += p.m1 * v.s[b + 1];
        break;
    default: sums = _mm512_dpbusd_epi32(_mm512_loadu_si512(v.c128 + b * 8), p.w, qx); break;
    }
    return _mm512_cvtepi32_ps(sums);
}

// Row · v_s for the `ns` ≤ 4 vectors v[0..ns): each block pair is unpacked once for all of them,
// and each vector's sums run in one fixed order whatever ns is, so every result has the bits of
// the single-vector call (ns = 1).
Q8_VNNI void row_q8_vnni(const uint32_t type, const uint8_t *row, long nb, const q8_view *v, const int ns,
                         float *res) {
    __m512 acc0[4], acc1[4];
    float mins[4];
    for (int s = 0; s < ns; s++) { acc0[s] = acc1[s] = _mm512_setzero_ps(); mins[s] = 0; }
    long b = 0;
    for (; b + 4 <= nb; b += 4) {
        const q8_pair p0 = pair_weights(type, row, b), p1 = pair_weights(type, row, b + 2);
        for (int s = 0; s < ns; s++) {
            const __m512 f0 = pair_dot(type, p0, v[s], b, &mins[s]);
            acc0[s] = _mm512_fmadd_ps(_mm512_mul_ps(p0.d, _mm512_loadu_ps(v[s].d8 + b * 8)), f0, acc0[s]);
            const __m512 f1 = pair_dot(type, p1, v[s], b + 2, &mins[s]);
            acc1[s] = _mm512_fmadd_ps(_mm512_mul_ps(p1.d, _mm512_loadu_ps(v[s].d8 + (b + 2) * 8)), f1, acc1[s]);
        }
    }
    if (b + 2 <= nb) {
        const q8_pair p0 = pair_weights(type, row, b);
        for (int s = 0; s < ns; s++) {
            const __m512 f0 = pair_dot(type, p0, v[s], b, &mins[s]);
            acc0[s] = _mm512_fmadd_ps(_mm512_mul_ps(p0.d, _mm512_loadu_ps(v[s].d8 + b * 8)), f0, acc0[s]);
        }
        b += 2;
    }
    for (int s = 0; s < ns; s++) {
        float total = _mm512_reduce_add_ps(_mm512_add_ps(acc0[s], acc1[s]));
        if (b < nb) {
            float dw;
            const __m256i p = block_q8_avx2(type, row, b, v[s], &dw, &mins[s]);
            total += pk_hsum8(_mm256_mul_ps(_mm256_set1_ps(dw * v[s].d[b]), _mm256_cvtepi32_ps(p)));
        }
        res[s] = total + mins[s];
    }
}

#define Q8_VNNI_ROWS(T)                                                                                  \
    for (long r = r0; r < r1; r++) {                                                                     \
        const uint8_t *row = w + (size_t)r * rowBytes;                                                   \
        for (long g = 0; g < batch; g += 4) {                                                            \
            float res[4];                                                                                \
            switch (batch - g < 4 ? batch - g : 4) {                                                     \
            case 4: row_q8_vnni(T, row, nb, v + g, 4, res); break;                                       \
            case 3: row_q8_vnni(T, row, nb, v + g, 3, res); break;                                       \
            case 2: row_q8_vnni(T, row, nb, v + g, 2, res); break;                                       \
            default: row_q8_vnni(T, row, nb, v + g, 1, res); break;                                      \
            }                                                                                            \
            for (long s = g; s < batch && s < g + 4; s++) out[s * ldo + (r - r0)] = res[s - g];          \
        }                                                                                                \
    }

// Q4_K: each 32-byte chunk is a pair of sub-blocks (low nibbles, then high), one VNNI product.
Q8_VNNI float row_q8_k4_vnni(const uint8_t *row, long nb, q8_view v) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const __m256i low = _mm256_set1_epi8(15);
    float mins = 0;
    for (long i = 0; i < nb / 8; i++) {
        const uint8_t *blk = row + 144 * i;
        float ds[8], dm[8];
        k4_scales(blk, ds, dm);
        for (int j = 0; j < 4; j++) {
            const long b = 8 * i + 2 * j;
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * j));
            const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, low)),
                                                 _mm256_and_si256(_mm256_srli_epi16(q, 4), low), 1);
            const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(v.qs + b * 32));
            const __m512 dd = _mm512_mul_ps(two_scales(ds[2 * j], ds[2 * j + 1]), _mm512_loadu_ps(v.d8 + b * 8));
            if (j & 1) acc1 = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(sums), acc1);
            else acc0 = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(sums), acc0);
            mins += dm[2 * j] * v.s[b];
            mins += dm[2 * j + 1] * v.s[b + 1];
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - mins;
}

// out[s · ldo + r − r0] = row r · v[s] for rows [r0, r1) and s < batch.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
static void gemv_q8_vnni(uint32_t type, const uint8_t *w, size_t rowBytes, long r0, long r1, long nb,
                         const q8_view *v, long batch, float *out, long ldo) {
    switch (type) {
    case Q_Q4_0: Q8_VNNI_ROWS(Q_Q4_0); break;
    case Q_Q4_1: Q8_VNNI_ROWS(Q_Q4_1); break;
    case Q_Q5_0: Q8_VNNI_ROWS(Q_Q5_0); break;
    case Q_Q5_1: Q8_VNNI_ROWS(Q_Q5_1); break;
    case Q_Q4_K:
        for (long s = 0; s < batch; s++) {
            for (long r = r0; r < r1; r++) out[s * ldo + (r - r0)] = row_q8_k4_vnni(w + (size_t)r * rowBytes, nb, v[s]);
        }
        break;
    default: Q8_VNNI_ROWS(Q_Q8_0); break;
    }
}
#undef Q8_VNNI_ROWS

static int vnni = 0;
static pthread_once_t vnni_once = PTHREAD_ONCE_INIT;
static void find_vnni(void) {
    unsigned a, b, c, d;
    if (pk_best_isa() < PK_ISA_AVX512 || __get_cpuid_max(0, 0) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    vnni = (c >> 11) & 1;  // AVX512_VNNI
}
// Asked once: cpuid is slow, and traps to the hypervisor in a virtual machine.
static int has_vnni(void) {
    pthread_once(&vnni_once, find_vnni);
    return vnni;
}
#endif

int pk_q8_level(int isa) {
    const int level = isa < pk_best_isa() ? isa : pk_best_isa();
#ifdef PK_Q8_X86
    if (level >= PK_ISA_AVX512 && has_vnni()) return PK_ISA_AVX512;
    if (level >= PK_ISA_AVX2) return PK_ISA_AVX2;
#endif
    return PK_ISA_GENERIC;
}

void pk_gemv_q8_multi(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
                      const void *q8, size_t q8Stride, long batch, float *out, long ldo) {
    const uint8_t *q = q8;
    if (batch <= 0 || r1 <= r0) return;
#ifdef PK_Q8_X86
    if (pk_q8_level(isa) == PK_ISA_AVX512) {
        // Each block pair is unpacked once per 4 vectors (row_q8_vnni), in groups of vectors.
        const long nb = cols / 32;
        q8_view views[64];
        for (long g = 0; g < batch; g += 64) {
            const long n = batch - g < 64 ? batch - g : 64;
            for (long s = 0; s < n; s++) views[s] = view_of(q + (g + s) * q8Stride, nb);
            gemv_q8_vnni(type, w, rowBytes, r0, r1, nb, views, n, out + g * ldo + r0, ldo);
        }
        return;
    }
#endif
    // Elsewhere: tiles of rows small enough to stay in cache while every vector passes, so the
    // weights come from memory once; each row's sum is the one pk_gemv_q8 computes, whatever the tiling.
    for (long t = r0; t < r1; t += 8) {
        const long te = t + 8 < r1 ? t + 8 : r1;
        for (long b = 0; b < batch; b++) pk_gemv_q8(isa, type, w, rowBytes, t, te, cols, q + b * q8Stride, out + b * ldo + t);
    }
}

void pk_gemv_q8(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols, const void *q8,
                float *out) {
    const long nb = cols / 32;
    const q8_view v = view_of(q8, nb);
    const uint8_t *base = w;
#ifdef PK_Q8_X86
    switch (pk_q8_level(isa)) {
    case PK_ISA_AVX512: gemv_q8_vnni(type, base, rowBytes, r0, r1, nb, &v, 1, out, 0); return;
    case PK_ISA_AVX2: gemv_q8_avx2(type, base, rowBytes, r0, r1, nb, v, out); return;
    }
#endif
    for (long r = r0; r < r1; r++) out[r - r0] = row_q8_generic(type, base + (size_t)r * rowBytes, nb, v);
}
