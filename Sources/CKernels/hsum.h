// The horizontal sum of eight floats shared by the AVX2 kernels (kernels.c, lowbit.c, q8.c): one
// fixed order, so every kernel that ends in it sums its lanes the same way.
#ifndef PROBITY_CKERNELS_HSUM_H
#define PROBITY_CKERNELS_HSUM_H

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

/// (lanes 0-3 + lanes 4-7), then pairs, then the last two: the sum of v's eight lanes.
static inline __attribute__((always_inline, target("avx"))) float pk_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

#endif
