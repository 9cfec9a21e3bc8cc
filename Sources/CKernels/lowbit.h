// Kernels for the low-bit ggml types (lowbit.c): Q2_K, Q3_K, IQ4_NL and IQ4_XS. Internal to
// CKernels; kernels.c dispatches to them.
#ifndef PROBITY_LOWBIT_H
#define PROBITY_LOWBIT_H

#include <stdint.h>

enum { PK_T_Q2_K = 10, PK_T_Q3_K = 11, PK_T_IQ4_NL = 20, PK_T_IQ4_XS = 23 };

/// Whether `type` is one of the four types here.
int pk_lowbit_type(uint32_t type);

/// Dequantizes `count` elements (whole blocks) in portable C: each weight the float ggml computes.
void pk_lowbit_dequant_generic(uint32_t type, const uint8_t *src, long count, float *dst);

#if defined(__x86_64__) || defined(_M_X64)
/// The same with AVX2, bit for bit.
void pk_lowbit_dequant_avx2(uint32_t type, const uint8_t *src, long count, float *dst);
/// Dot of one row of `cols` elements with x, on exactly dequantized weights, with AVX2 and FMA.
float pk_lowbit_dot_avx2(uint32_t type, const uint8_t *row, long cols, const float *x);
#endif

#endif
