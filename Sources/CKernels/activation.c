// The gated activations of the MLP (SiLU for Llama, GELU's tanh form for Gemma) and the
// exponential they share, vectorised with the same bits at every instruction set level.
//
// e^x: Cody–Waite reduction x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so n·ln2 loses
// nothing), e^r by its Taylor series through r^7 (the first term left out, r^8/8!, is at most
// 7.3e-9 of the result on that interval), and 2^n written into the exponent. Each step is one
// IEEE operation — a fused multiply-add rounds once — and the portable C performs the same steps
// in the same order as the AVX2 and AVX-512 lanes, so every level gives the same bits. Against
// float64 exp over every float of the range: within 1.059 ulp (checked once exhaustively; the
// tests take every 251st float and compare the levels bit for bit). Results below the
// smallest normal float (x < −87.34) are 0 and results from x > 88.37 (that is, ≥ 2^127.5) are
// +inf; NaN stays NaN.
//
// GELU's tanh form is 0.5·g·(1 + tanh(u)) with u = √(2/π)·(g + 0.044715·g³); since
// 0.5·(1 + tanh(u)) = 1 / (1 + e^(−2u)), it is computed as g·up / (1 + e^(−2u)), which also keeps
// the negative tail that 1 + tanh(u) rounds to 0. SiLU is g / (1 + e^(−g)) · up.
#include "CKernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define PK_X86 1
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512vl,avx2,fma")))
#endif

static const float EXP_HI = 88.37f;            // x·log2(e) < 127.5, so n ≤ 127
static const float EXP_LO = -87.33654475f;     // −126·ln2: n ≥ −126, a normal 2^n
static const float LOG2E = 1.44269504088896341f;
static const float SHIFT = 12582912.0f;        // 1.5·2^23: adding it rounds to an integer
static const float LN2_HI = 0.693145751953125f;     // ln2's leading 15 bits: n·LN2_HI is exact
static const float LN2_LO = 1.42860676533018688e-6f;  // ln2 − LN2_HI
// 1/k! for k = 2 … 7.
static const float C2 = 0.5f, C3 = 1.0f / 6, C4 = 1.0f / 24, C5 = 1.0f / 120, C6 = 1.0f / 720, C7 = 1.0f / 5040;
// GELU: 2u = g·(A + B·g²), A = 2·√(2/π), B = 2·√(2/π)·0.044715.
static const float GELU_A = 1.5957691216057308f, GELU_B = 0.07135481627159578f;

// MARK: - portable

static inline float exp_generic(float x) {
    if (x > EXP_HI) return INFINITY;
    if (x < EXP_LO) return 0.0f;
    const float z = fmaf(x, LOG2E, SHIFT);
    const float n = z - SHIFT;
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = fmaf(C7, r, C6);
    p = fmaf(p, r, C5);
    p = fmaf(p, r, C4);
    p = fmaf(p, r, C3);
    p = fmaf(p, r, C2);
    const float r2 = r * r;
    const float y = fmaf(p, r2, r) + 1.0f;
    int32_t zi, si;
    memcpy(&zi, &z, 4);
    memcpy(&si, &SHIFT, 4);
    // A NaN x reaches here with any n; y is NaN, and so is the product.
    const int32_t bits = (int32_t)((uint32_t)(zi - si + 127) << 23);
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

static inline float silu_generic(float g, float up) { return g / (1.0f + exp_generic(-g)) * up; }

static inline float gelu_generic(float g, float up) {
    const float t = g * fmaf(g * g, GELU_B, GELU_A);
    return g * up / (1.0f + exp_generic(-t));
}

// MARK: - AVX2

#ifdef PK_X86
AVX2_INLINE __m256 exp_avx2(__m256 x) {
    const __m256 hi = _mm256_set1_ps(EXP_HI), lo = _mm256_set1_ps(EXP_LO), shift = _mm256_set1_ps(SHIFT);
    const __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    // min and max return their second operand when either is NaN: a NaN x passes through.
    x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), shift);
    const __m256 n = _mm256_sub_ps(z, shift);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(C7), r, _mm256_set1_ps(C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C2));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    const __m256i k = _mm256_sub_epi32(_mm256_castps_si256(z), _mm256_castps_si256(shift));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
    __m256 e = _mm256_mul_ps(y, scale);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), over);
    return _mm256_blendv_ps(e, _mm256_setzero_ps(), under);
}

AVX2 static void silu_mul_avx2(float *gate, const float *up, long n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp_avx2(_mm256_xor_ps(g, sign));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = silu_generic(gate[i], up[i]);
}

AVX2 static void gelu_tanh_mul_avx2(float *gate, const float *up, long n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_set1_ps(GELU_A), b = _mm256_set1_ps(GELU_B);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 t = _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(g, g), b, a));
        const __m256 e = exp_avx2(_mm256_xor_ps(t, sign));
        _mm256_storeu_ps(gate + i, _mm256_div_ps(_mm256_mul_ps(g, _mm256_loadu_ps(up + i)), _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) gate[i] = gelu_generic(gate[i], up[i]);
}

AVX2 static void exp_avx2_array(const float *x, float *out, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) out[i] = exp_generic(x[i]);
}

// MARK: - AVX-512

AVX512_INLINE __m512 exp_avx512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(EXP_HI), lo = _mm512_set1_ps(EXP_LO), shift = _mm512_set1_ps(SHIFT);
    const __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(lo, _mm512_min_ps(hi, x));
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), shift);
    const __m512 n = _mm512_sub_ps(z, shift);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(C7), r, _mm512_set1_ps(C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C2));
    const __m512 r2 = _mm512_mul_ps(r, r);
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    const __m512i k = _mm512_sub_epi32(_mm512_castps_si512(z), _mm512_castps_si512(shift));
    const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23));
    __m512 e = _mm512_mul_ps(y, scale);
    e = _mm512_mask_blend_ps(over, e, _mm512_set1_ps(INFINITY));
    return _mm512_mask_blend_ps(under, e, _mm512_setzero_ps());
}

AVX512_INLINE __m512 negate_avx512(__m512 x) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN)));
}

// The tails run masked: a lane's result does not depend on its neighbours, so they keep the bits.
AVX512 static void silu_mul_avx512(float *gate, const float *up, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        const __m512 e = exp_avx512(negate_avx512(g));
        _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

AVX512 static void gelu_tanh_mul_avx512(float *gate, const float *up, long n) {
    const __m512 one = _mm512_set1_ps(1.0f), a = _mm512_set1_ps(GELU_A), b = _mm512_set1_ps(GELU_B);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        const __m512 t = _mm512_mul_ps(g, _mm512_fmadd_ps(_mm512_mul_ps(g, g), b, a));
        const __m512 e = exp_avx512(negate_avx512(t));
        _mm512_mask_storeu_ps(gate + i, m, _mm512_div_ps(_mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, up + i)), _mm512_add_ps(one, e)));
    }
}

AVX512 static void exp_avx512_array(const float *x, float *out, long n) {
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, exp_avx512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
#endif

// MARK: - dispatch

#ifdef PK_X86
static int level(int isa) {
    const int best = pk_best_isa();
    return isa < best ? isa : best;
}
#endif

void pk_silu_mul(int isa, float *gate, const float *up, long n) {
#ifdef PK_X86
    switch (level(isa)) {
    case PK_ISA_AVX512: silu_mul_avx512(gate, up, n); return;
    case PK_ISA_AVX2: silu_mul_avx2(gate, up, n); return;
    default: break;
    }
#else
    (void)isa;
#endif
    for (long i = 0; i < n; i++) gate[i] = silu_generic(gate[i], up[i]);
}

void pk_gelu_tanh_mul(int isa, float *gate, const float *up, long n) {
#ifdef PK_X86
    switch (level(isa)) {
    case PK_ISA_AVX512: gelu_tanh_mul_avx512(gate, up, n); return;
    case PK_ISA_AVX2: gelu_tanh_mul_avx2(gate, up, n); return;
    default: break;
    }
#else
    (void)isa;
#endif
    for (long i = 0; i < n; i++) gate[i] = gelu_generic(gate[i], up[i]);
}

void pk_exp_f32(int isa, const float *x, float *out, long n) {
#ifdef PK_X86
    switch (level(isa)) {
    case PK_ISA_AVX512: exp_avx512_array(x, out, n); return;
    case PK_ISA_AVX2: exp_avx2_array(x, out, n); return;
    default: break;
    }
#else
    (void)isa;
#endif
    for (long i = 0; i < n; i++) out[i] = exp_generic(x[i]);
}
