// Attention over a tiled KV cache: the query heads that share one KV head are scored together
// against a tile of PK_ATTENTION_TILE cached positions, so each key and value is read once per
// group instead of once per query head. A tile's result is a record (unnormalised weighted sum,
// max score, sum of exponentials) and records merge exactly as softmax over the union would.
//
// Every instruction set level gives the same bits: each score is a fused multiply-add chain over
// the head's dimensions in order, each output a chain over positions in order, a tile's
// exponentials are activation.c's (the same bits at every level), merges' libm's expf, and the
// denominators are summed in double.
//
// A cache may hold IEEE halves instead of floats: each kernel then widens its loads to float in
// registers (F16C or AVX-512's conversion, exact), so a half cache gives the bits the float kernel
// gives on the widened values, at every level.
#include "CKernels.h"
#include "half.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define PK_X86 1
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512vl,avx2,fma,f16c")))
#endif

enum { TILE = PK_ATTENTION_TILE, GROUP = 3 };

// Element i of a cache array: floats, or halves when H (a constant in every specialised caller).
#define AT(p, i, H) ((H) ? pk_widen_half(((const uint16_t *)(p))[i]) : ((const float *)(p))[i])

// In place over the first `count` raw dots: s = scale · s, then s = e^(s - max) by the
// activations' vectorised exponential (activation.c: the same bits at every level); the record's
// max and sum follow o. The sum is kept in double in four interleaved parts, added in a fixed order.
static void exponentiate(float *s, long count, float scale, float *rec, long dim) {
    for (long t = 0; t < count; t++) s[t] *= scale;
    float m = s[0];
    for (long t = 1; t < count; t++) m = s[t] > m ? s[t] : m;
    for (long t = 0; t < count; t++) s[t] -= m;
    pk_exp_f32(pk_best_isa(), s, s, count);
    double part[4] = {0, 0, 0, 0};
    long t = 0;
    for (; t + 4 <= count; t += 4)
        for (int k = 0; k < 4; k++) part[k] += s[t + k];
    double sum = (part[0] + part[1]) + (part[2] + part[3]);
    for (; t < count; t++) sum += s[t];
    rec[dim] = m;
    rec[dim + 1] = (float)sum;
}

// A window that starts `from` positions into the tile: the scores of positions from ..< count move
// to the front and the values pointer past the skipped rows, so the rest runs as over a shorter tile.
static inline void skip_front(float s[][TILE], int G, long from, long *count, const void **values, long dim,
                              const int H) {
    if (from <= 0) return;
    for (int j = 0; j < G; j++) memmove(s[j], s[j] + from, (size_t)(*count - from) * sizeof(float));
    *count -= from;
    *values = (const char *)*values + from * dim * (H ? 2 : 4);
}

// MARK: - portable

static inline __attribute__((always_inline)) void
tile_generic(const float *q, long nq, long dim, float scale, const void *keys, const void *values, long from,
             long count, float *rec, const int H) {
    float s[1][TILE];
    for (long j = 0; j < nq; j++) {
        const float *qj = q + j * dim;
        float *r = rec + j * (dim + 2);
        long n = count;
        const void *v = values;
        for (long t = 0; t < TILE; t++) s[0][t] = 0;
        for (long d = 0; d < dim; d++)
            for (long t = 0; t < TILE; t++) s[0][t] = fmaf(qj[d], AT(keys, d * TILE + t, H), s[0][t]);
        skip_front(s, 1, from, &n, &v, dim, H);
        exponentiate(s[0], n, scale, r, dim);
        for (long i = 0; i < dim; i++) r[i] = 0;
        for (long t = 0; t < n; t++)
            for (long i = 0; i < dim; i++) r[i] = fmaf(s[0][t], AT(v, t * dim + i, H), r[i]);
    }
}

static void tile_generic_f32(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                             long from, long count, float *rec) {
    tile_generic(q, nq, dim, scale, keys, values, from, count, rec, 0);
}

static void tile_generic_f16(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                             long from, long count, float *rec) {
    tile_generic(q, nq, dim, scale, keys, values, from, count, rec, 1);
}

#ifdef PK_X86

// Dimensions from..dim-1 of the weighted sums, past the last full vector, one chain per output.
static inline void weigh_rest(float s[][TILE], const void *values, long dim, long count, long from, float *rec, int G,
                              const int H) {
    for (long i = from; i < dim; i++)
        for (int j = 0; j < G; j++) {
            float a = 0;
            for (long t = 0; t < count; t++) a = fmaf(s[j][t], AT(values, t * dim + i, H), a);
            rec[j * (dim + 2) + i] = a;
        }
}

// MARK: - AVX2

// Eight cache elements from index i, as floats.
AVX2_INLINE __m256 load8(const void *p, long i, const int H) {
    return H ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)))
             : _mm256_loadu_ps((const float *)p + i);
}

// Scores of G queries for 32 positions starting at `t0`: twelve accumulators and four key loads.
AVX2_INLINE void scores32_avx2(const float *q, long dim, const void *keys, long t0, float s[][TILE], const int G,
                               const int H) {
    __m256 acc[GROUP][4];
    for (int j = 0; j < G; j++)
        for (int k = 0; k < 4; k++) acc[j][k] = _mm256_setzero_ps();
    for (long d = 0; d < dim; d++) {
        __m256 kv[4];
        for (int k = 0; k < 4; k++) kv[k] = load8(keys, d * TILE + t0 + 8 * k, H);
        for (int j = 0; j < G; j++) {
            const __m256 qd = _mm256_broadcast_ss(q + j * dim + d);
            for (int k = 0; k < 4; k++) acc[j][k] = _mm256_fmadd_ps(qd, kv[k], acc[j][k]);
        }
    }
    for (int j = 0; j < G; j++)
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(s[j] + t0 + 8 * k, acc[j][k]);
}

// rec_j[i] = Σ_t s_j[t] · values[t][i] for G queries, 32 (then 8, then 1) dimensions at a time.
AVX2_INLINE void weigh_avx2(float s[][TILE], const void *values, long dim, long count, float *rec, const int G,
                            const int H) {
    long i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 acc[GROUP][4];
        for (int j = 0; j < G; j++)
            for (int k = 0; k < 4; k++) acc[j][k] = _mm256_setzero_ps();
        for (long t = 0; t < count; t++) {
            __m256 vv[4];
            for (int k = 0; k < 4; k++) vv[k] = load8(values, t * dim + i + 8 * k, H);
            for (int j = 0; j < G; j++) {
                const __m256 w = _mm256_broadcast_ss(s[j] + t);
                for (int k = 0; k < 4; k++) acc[j][k] = _mm256_fmadd_ps(w, vv[k], acc[j][k]);
            }
        }
        for (int j = 0; j < G; j++)
            for (int k = 0; k < 4; k++) _mm256_storeu_ps(rec + j * (dim + 2) + i + 8 * k, acc[j][k]);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 acc[GROUP];
        for (int j = 0; j < G; j++) acc[j] = _mm256_setzero_ps();
        for (long t = 0; t < count; t++) {
            const __m256 vv = load8(values, t * dim + i, H);
            for (int j = 0; j < G; j++) acc[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(s[j] + t), vv, acc[j]);
        }
        for (int j = 0; j < G; j++) _mm256_storeu_ps(rec + j * (dim + 2) + i, acc[j]);
    }
    weigh_rest(s, values, dim, count, i, rec, G, H);
}

AVX2_INLINE void group_avx2(const float *q, long dim, float scale, const void *keys, const void *values,
                            long from, long count, float *rec, const int G, const int H) {
    float s[GROUP][TILE];
    scores32_avx2(q, dim, keys, 0, s, G, H);
    if (count > 32) scores32_avx2(q, dim, keys, 32, s, G, H);
    skip_front(s, G, from, &count, &values, dim, H);
    for (int j = 0; j < G; j++) exponentiate(s[j], count, scale, rec + j * (dim + 2), dim);
    weigh_avx2(s, values, dim, count, rec, G, H);
}

AVX2_INLINE void groups_avx2(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                             long from, long count, float *rec, const int H) {
    for (long j = 0; j < nq; j += GROUP) {
        const float *qj = q + j * dim;
        float *r = rec + j * (dim + 2);
        switch (nq - j) {
        case 1: group_avx2(qj, dim, scale, keys, values, from, count, r, 1, H); break;
        case 2: group_avx2(qj, dim, scale, keys, values, from, count, r, 2, H); break;
        default: group_avx2(qj, dim, scale, keys, values, from, count, r, 3, H); break;
        }
    }
}

AVX2 static void tile_avx2_f32(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                               long from, long count, float *rec) {
    groups_avx2(q, nq, dim, scale, keys, values, from, count, rec, 0);
}

AVX2 static void tile_avx2_f16(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                               long from, long count, float *rec) {
    groups_avx2(q, nq, dim, scale, keys, values, from, count, rec, 1);
}

// MARK: - AVX-512

// Sixteen cache elements from index i, as floats.
AVX512_INLINE __m512 load16(const void *p, long i, const int H) {
    return H ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)))
             : _mm512_loadu_ps((const float *)p + i);
}

AVX512_INLINE void scores_avx512(const float *q, long dim, const void *keys, float s[][TILE], const int G, const int H) {
    __m512 acc[GROUP][4];
    for (int j = 0; j < G; j++)
        for (int k = 0; k < 4; k++) acc[j][k] = _mm512_setzero_ps();
    for (long d = 0; d < dim; d++) {
        __m512 kv[4];
        for (int k = 0; k < 4; k++) kv[k] = load16(keys, d * TILE + 16 * k, H);
        for (int j = 0; j < G; j++) {
            const __m512 qd = _mm512_set1_ps(q[j * dim + d]);
            for (int k = 0; k < 4; k++) acc[j][k] = _mm512_fmadd_ps(qd, kv[k], acc[j][k]);
        }
    }
    for (int j = 0; j < G; j++)
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(s[j] + 16 * k, acc[j][k]);
}

AVX512_INLINE void weigh_avx512(float s[][TILE], const void *values, long dim, long count, float *rec, const int G,
                                const int H) {
    long i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 acc[GROUP][4];
        for (int j = 0; j < G; j++)
            for (int k = 0; k < 4; k++) acc[j][k] = _mm512_setzero_ps();
        for (long t = 0; t < count; t++) {
            __m512 vv[4];
            for (int k = 0; k < 4; k++) vv[k] = load16(values, t * dim + i + 16 * k, H);
            for (int j = 0; j < G; j++) {
                const __m512 w = _mm512_set1_ps(s[j][t]);
                for (int k = 0; k < 4; k++) acc[j][k] = _mm512_fmadd_ps(w, vv[k], acc[j][k]);
            }
        }
        for (int j = 0; j < G; j++)
            for (int k = 0; k < 4; k++) _mm512_storeu_ps(rec + j * (dim + 2) + i + 16 * k, acc[j][k]);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 acc[GROUP];
        for (int j = 0; j < G; j++) acc[j] = _mm512_setzero_ps();
        for (long t = 0; t < count; t++) {
            const __m512 vv = load16(values, t * dim + i, H);
            for (int j = 0; j < G; j++) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(s[j][t]), vv, acc[j]);
        }
        for (int j = 0; j < G; j++) _mm512_storeu_ps(rec + j * (dim + 2) + i, acc[j]);
    }
    weigh_rest(s, values, dim, count, i, rec, G, H);
}

AVX512_INLINE void group_avx512(const float *q, long dim, float scale, const void *keys, const void *values,
                                long from, long count, float *rec, const int G, const int H) {
    float s[GROUP][TILE];
    scores_avx512(q, dim, keys, s, G, H);
    skip_front(s, G, from, &count, &values, dim, H);
    for (int j = 0; j < G; j++) exponentiate(s[j], count, scale, rec + j * (dim + 2), dim);
    weigh_avx512(s, values, dim, count, rec, G, H);
}

AVX512_INLINE void groups_avx512(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                                 long from, long count, float *rec, const int H) {
    for (long j = 0; j < nq; j += GROUP) {
        const float *qj = q + j * dim;
        float *r = rec + j * (dim + 2);
        switch (nq - j) {
        case 1: group_avx512(qj, dim, scale, keys, values, from, count, r, 1, H); break;
        case 2: group_avx512(qj, dim, scale, keys, values, from, count, r, 2, H); break;
        default: group_avx512(qj, dim, scale, keys, values, from, count, r, 3, H); break;
        }
    }
}

AVX512 static void tile_avx512_f32(const float *q, long nq, long dim, float scale, const void *keys,
                                   const void *values, long from, long count, float *rec) {
    groups_avx512(q, nq, dim, scale, keys, values, from, count, rec, 0);
}

AVX512 static void tile_avx512_f16(const float *q, long nq, long dim, float scale, const void *keys,
                                   const void *values, long from, long count, float *rec) {
    groups_avx512(q, nq, dim, scale, keys, values, from, count, rec, 1);
}

// Eight floats at a time to halves, round to nearest even (rounding control 0, as ggml).
AVX2 static void narrow_f16c(const float *src, long n, uint16_t *dst, long stride) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16_t h[8];
        _mm_storeu_si128((__m128i *)h, _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
        for (int k = 0; k < 8; k++) dst[(i + k) * stride] = h[k];
    }
    for (; i < n; i++) dst[i * stride] = (uint16_t)_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

#endif

// MARK: - entry points

typedef void (*tile_kernel)(const float *q, long nq, long dim, float scale, const void *keys, const void *values,
                            long from, long count, float *rec);

static void run_tile(int isa, int half, const float *q, long nq, long dim, float scale, const void *keys,
                     const void *values, long from, long count, float *records) {
    if (count > TILE) count = TILE;
    if (from < 0) from = 0;
    if (nq <= 0 || count <= from) return;
    tile_kernel kernel = half ? tile_generic_f16 : tile_generic_f32;
#ifdef PK_X86
    const int best = pk_best_isa();
    if (isa >= PK_ISA_AVX512 && best >= PK_ISA_AVX512) kernel = half ? tile_avx512_f16 : tile_avx512_f32;
    else if (isa >= PK_ISA_AVX2 && best >= PK_ISA_AVX2) kernel = half ? tile_avx2_f16 : tile_avx2_f32;
#endif
    (void)isa;
    kernel(q, nq, dim, scale, keys, values, from, count, records);
}

void pk_attention_tile_from(int isa, const float *q, long nq, long dim, float scale, const float *keys,
                            const float *values, long from, long count, float *records) {
    run_tile(isa, 0, q, nq, dim, scale, keys, values, from, count, records);
}

void pk_attention_tile_f16_from(int isa, const float *q, long nq, long dim, float scale, const uint16_t *keys,
                                const uint16_t *values, long from, long count, float *records) {
    run_tile(isa, 1, q, nq, dim, scale, keys, values, from, count, records);
}

void pk_float_to_half(int isa, const float *src, long n, uint16_t *dst, long stride) {
#ifdef PK_X86
    if (isa >= PK_ISA_AVX2 && pk_best_isa() >= PK_ISA_AVX2) {
        narrow_f16c(src, n, dst, stride);
        return;
    }
#endif
    (void)isa;
    for (long i = 0; i < n; i++) dst[i * stride] = pk_narrow_half(src[i]);
}

void pk_attention_tile(int isa, const float *q, long nq, long dim, float scale, const float *keys,
                       const float *values, long count, float *records) {
    pk_attention_tile_from(isa, q, nq, dim, scale, keys, values, 0, count, records);
}

#ifdef PK_X86
// out += w · r, the same fused multiply-add per element as fmaf.
AVX2 static void fma_row_avx2(float w, const float *r, float *out, long dim) {
    const __m256 wv = _mm256_set1_ps(w);
    long i = 0;
    for (; i + 8 <= dim; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(r + i), _mm256_loadu_ps(out + i)));
    for (; i < dim; i++) out[i] = fmaf(w, r[i], out[i]);
}
#endif

void pk_attention_merge(int isa, const float *records, long tiles, long stride, long dim, float *out) {
    if (tiles <= 0) return;
    float m = records[dim];
    for (long c = 1; c < tiles; c++) {
        const float mc = records[c * stride + dim];
        m = mc > m ? mc : m;
    }
    for (long i = 0; i < dim; i++) out[i] = 0;
    double sum = 0;
#ifdef PK_X86
    const int vector = isa >= PK_ISA_AVX2 && pk_best_isa() >= PK_ISA_AVX2;
#else
    const int vector = 0;
    (void)isa;
#endif
    for (long c = 0; c < tiles; c++) {
        const float *r = records + c * stride;
        const float w = expf(r[dim] - m);
        sum += (double)w * (double)r[dim + 1];
#ifdef PK_X86
        if (vector) { fma_row_avx2(w, r, out, dim); continue; }
#endif
        for (long i = 0; i < dim; i++) out[i] = fmaf(w, r[i], out[i]);
    }
    const float inverse = (float)(1.0 / sum);
    for (long i = 0; i < dim; i++) out[i] *= inverse;
}
