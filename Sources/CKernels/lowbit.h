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
/// Whether `type` has AVX-512 kernels here (IQ4_NL and IQ4_XS; the others use the AVX2 ones).
int pk_lowbit_has_avx512(uint32_t type);
/// The same as the AVX2 functions with AVX-512 F/BW/VL, for types pk_lowbit_has_avx512 accepts.
void pk_lowbit_dequant_avx512(uint32_t type, const uint8_t *src, long count, float *dst);
float pk_lowbit_dot_avx512(uint32_t type, const uint8_t *row, long cols, const float *x);
#endif

#endif
