// Vector kernels of the forward pass (ProbityTensor's Vec): portable C and AVX2/FMA versions
// chosen at run time. Sums of squares are kept in double, as ggml keeps rms_norm's sum;
// the gated activations and their exponential are in activation.c.
#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__) || defined(_M_X64)
#define PK_X86 1
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#endif

// MARK: - portable

static void axpy_generic(float a, const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] += a * x[i];
}

static void add_generic(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] += y[i];
}

static void scale_generic(float *x, float a, long n) {
    for (long i = 0; i < n; i++) x[i] *= a;
}

static double sumsq_generic(const float *x, long n) {
    double s[4] = {0, 0, 0, 0};
    long i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += (double)x[i + k] * (double)x[i + k];
    double t = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < n; i++) t += (double)x[i] * (double)x[i];
    return t;
}

static void mul3_generic(const float *x, float a, const float *w, float *out, long n) {
    for (long i = 0; i < n; i++) out[i] = x[i] * a * w[i];
}

// MARK: - AVX2 / FMA

#ifdef PK_X86
AVX2 static void axpy_avx2(float a, const float *x, float *y, long n) {
    const __m256 av = _mm256_set1_ps(a);
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

AVX2 static void add_avx2(float *x, const float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) x[i] += y[i];
}

AVX2 static void scale_avx2(float *x, float a, long n) {
    const __m256 av = _mm256_set1_ps(a);
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), av));
    for (; i < n; i++) x[i] *= a;
}

AVX2 static double sumsq_avx2(const float *x, long n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double t = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) t += (double)x[i] * (double)x[i];
    return t;
}

AVX2 static void mul3_avx2(const float *x, float a, const float *w, float *out, long n) {
    const __m256 av = _mm256_set1_ps(a);
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), av), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = x[i] * a * w[i];
}
#endif

// MARK: - dispatch

#ifdef PK_X86
#define DISPATCH(avx2_call, generic_call) \
    do { if (isa >= PK_ISA_AVX2 && pk_best_isa() >= PK_ISA_AVX2) { avx2_call; } else { generic_call; } } while (0)
#else
#define DISPATCH(avx2_call, generic_call) do { (void)isa; generic_call; } while (0)
#endif

void pk_axpy(int isa, float a, const float *x, float *y, long n) { DISPATCH(axpy_avx2(a, x, y, n), axpy_generic(a, x, y, n)); }
void pk_add(int isa, float *x, const float *y, long n) { DISPATCH(add_avx2(x, y, n), add_generic(x, y, n)); }
void pk_scale(int isa, float *x, float a, long n) { DISPATCH(scale_avx2(x, a, n), scale_generic(x, a, n)); }

void pk_rms_norm(int isa, const float *x, const float *w, float eps, long n, float *out) {
    double sum;
    DISPATCH(sum = sumsq_avx2(x, n), sum = sumsq_generic(x, n));
    const float scale = (float)(1.0 / sqrt(sum / (double)(n > 0 ? n : 1) + (double)eps));
    DISPATCH(mul3_avx2(x, scale, w, out, n), mul3_generic(x, scale, w, out, n));
}
