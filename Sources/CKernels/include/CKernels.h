// Hot numeric kernels and the thread pool core for ProbityTensor, in C so that AVX2 and AVX-512 code
// can be chosen at run time (cpuid) while the package itself requires no CPU feature.
// Block layouts and dequantization formulas follow ggml (ggml-quants.c, gguf-py quants.py).
#ifndef PROBITY_CKERNELS_H
#define PROBITY_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction set levels a kernel can be run at. `PK_ISA_GENERIC` is portable C.
enum { PK_ISA_GENERIC = 0, PK_ISA_AVX2 = 1, PK_ISA_AVX512 = 2 };

/// The best level this CPU and OS support (AVX2 needs AVX2, FMA, F16C and OS-saved YMM state;
/// AVX512 needs AVX-512 F, BW and VL and OS-saved ZMM state besides).
int pk_best_isa(void);

/// Caps pk_best_isa at `level` for the rest of the process (a benchmark's stand-in for a CPU without
/// the higher levels). Call it before any kernel runs: levels already read stay as they were.
void pk_limit_isa(int level);

/// Whether `type` (a ggml type id) has dequantization and dot kernels.
int pk_supported(uint32_t type);

/// Dequantizes `count` elements (a whole number of blocks) of `type` at `src` into `dst`.
/// Returns 0, or -1 when the type is unsupported. Results are bit-identical at every ISA level.
int pk_dequantize(int isa, uint32_t type, const void *src, long count, float *dst);

/// out[r - r0] = dot(row r, x) for r in [r0, r1); row r starts at w + r * rowBytes and holds
/// `cols` elements of `type`. Accumulates in float on exactly dequantized weights.
void pk_gemv(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
             const float *x, float *out);

/// For rows [r0, r1) and `batch` vectors x (row stride `cols`): out[b * ldo + r] = dot(row r, x_b).
/// Each row is dequantized once into this thread's scratch and reused across the batch.
void pk_gemv_batch(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1,
                   long cols, const float *x, long batch, float *out, long ldo);

/// Decode of several sequences: for rows [r0, r1) and `batch` vectors x_b at x + b * ldx,
/// out[b * ldo + r] = dot(row r, x_b), each with the bits pk_gemv gives for row r and x_b alone
/// (the same accumulators updated in the same order). The weights are read from memory once for
/// the batch; with AVX-512 and a quantized type each block is also dequantized once per 4 vectors.
void pk_gemv_multi(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
                   const float *x, long ldx, long batch, float *out, long ldo);

/// Whether pk_gemm_panel has a kernel at this level (AVX-512 only; others use OpenBLAS).
static inline int pk_has_gemm_panel(int isa) { return isa >= PK_ISA_AVX512 && pk_best_isa() >= PK_ISA_AVX512; }

/// out[b * ldo + r] = dot(row r, x_b) for rows [r0, r1) with r1 - r0 ≤ 64 and batch rows [b0, b1)
/// of x (row stride `cols`). The rows are dequantized once into a transposed panel in this
/// thread's scratch. Returns 0, or -1 when there is no kernel at this level (see pk_has_gemm_panel).
int pk_gemm_panel(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
                  const float *x, long b0, long b1, float *out, long ldo);

/// For Q8_0 rows [r0, r1): approx[r - r0] = dot(row r, x) (as pk_gemv) and
/// radius[r - r0] = Σ_b d_b · xabs[b], where d_b is block b's scale and xabs[b] = Σ |x| over the
/// block's 32 inputs. When the row quantizes weights w with |w - q·d| ≤ d/2, the exact dot of w
/// with x lies within radius / 2 of the exact dot of the quantized row (rounding aside).
void pk_screen_q8_0(int isa, const void *w, size_t rowBytes, long r0, long r1, long cols, const float *x,
                    const float *xabs, float *approx, float *radius);

/// The opt-in 8-bit activation products (q8.c; DESIGN.md, "Numerics"). Whether `type` has them
/// (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K).
int pk_q8_supported(uint32_t type);
/// Bytes of a quantized vector of `cols` elements (a multiple of 32).
size_t pk_q8_bytes(long cols);
/// Quantizes x (`cols` elements) into `q8` (pk_q8_bytes(cols), 4-byte aligned) as llama.cpp quantizes
/// activations: per block of 32, d = max|x| / 127 and q = round(x / d), ties away from zero; the
/// scale stays a float. Portable C, so the same bytes on every CPU.
void pk_quantize_q8(const float *x, long cols, void *q8);
/// The level pk_gemv_q8 runs at when asked for `isa` (AVX-512 needs VNNI besides; else AVX2).
int pk_q8_level(int isa);
/// out[r - r0] = Σ_b d_w · d_x · (exact integer dot of block b) (+ Q4_1's min · d_x · Σ q) for rows
/// [r0, r1) of a Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q4_K matrix (Q4_K: per sub-block of 32, its scale and min) and a vector quantized by pk_quantize_q8. The float sums
/// run in each level's own order (results differ between levels by float rounding only).
void pk_gemv_q8(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols, const void *q8,
                float *out);
/// Decode of several sequences: out[b · ldo + r] for rows [r0, r1) and the `batch` quantized vectors
/// at q8 + b · q8Stride, each with the bits pk_gemv_q8 gives it alone; the weights are read once.
void pk_gemv_q8_multi(int isa, uint32_t type, const void *w, size_t rowBytes, long r0, long r1, long cols,
                      const void *q8, size_t q8Stride, long batch, float *out, long ldo);

/// A float buffer of at least `count` elements owned by the calling thread; it grows (the only
/// allocation) when a larger one is asked for and is freed when the thread exits. NULL if out of memory.
float *pk_thread_scratch(size_t count);

/// IEEE binary16 -> binary32, exact for every value; NaN payloads are kept bit for bit.
float pk_half_to_float(uint16_t h);

/// Dot product of two float vectors at up to level `isa`.
float pk_dot_f32(int isa, const float *a, const float *b, long n);

/// Vector kernels (vec.c) at up to level `isa`. y += a·x; x += y; x *= a.
void pk_axpy(int isa, float a, const float *x, float *y, long n);
void pk_add(int isa, float *x, const float *y, long n);
void pk_scale(int isa, float *x, float a, long n);
/// out = x / sqrt(mean(x²) + eps) · w, the sum of squares in double. `out` may be `x`.
void pk_rms_norm(int isa, const float *x, const float *w, float eps, long n, float *out);
/// Gated activations (activation.c) at up to level `isa`, the same bits at every level.
/// gate = gate / (1 + exp(-gate)) · up.
void pk_silu_mul(int isa, float *gate, const float *up, long n);
/// gate = gelu(gate) · up with GELU's tanh form, 0.5·g·(1 + tanh(sqrt(2/π)·(g + 0.044715·g³))),
/// computed as g·up / (1 + exp(−2·sqrt(2/π)·(g + 0.044715·g³))).
void pk_gelu_tanh_mul(int isa, float *gate, const float *up, long n);
/// out = e^x, the exponential of the activations and attention's tiles: within 1.06 ulp for normal
/// results; 0 below x = −87.34, +inf above x = 88.37.
void pk_exp_f32(int isa, const float *x, float *out, long n);

/// Positions per tile of the attention KV cache (attention.c).
enum { PK_ATTENTION_TILE = 64 };

/// One tile of attention for `nq` query heads (row stride `dim`) that share one KV head.
/// `keys` is the tile's keys transposed, keys[d · PK_ATTENTION_TILE + t]; `values` its values,
/// values[t · dim + i]; only positions t < count are attended. For each query j, writes the record
/// records[j · (dim + 2) ...] = (o[0 ..< dim], m, l): s_t = scale · q_j·k_t, m = max s_t,
/// e_t = expf(s_t − m), l = Σ e_t (summed in double), o = Σ e_t · v_t. Same bits at every level.
void pk_attention_tile(int isa, const float *q, long nq, long dim, float scale, const float *keys,
                       const float *values, long count, float *records);
/// `pk_attention_tile` over positions from ..< count of the tile only (a sliding window's first
/// tile): the same record as attending to those positions alone. from = 0 is pk_attention_tile.
void pk_attention_tile_from(int isa, const float *q, long nq, long dim, float scale, const float *keys,
                            const float *values, long from, long count, float *records);
/// `pk_attention_tile_from` over a tile of IEEE halves (same layout): each key and value is widened
/// to float exactly, so the record has the bits the float kernel gives on the widened tile.
void pk_attention_tile_f16_from(int isa, const float *q, long nq, long dim, float scale, const uint16_t *keys,
                                const uint16_t *values, long from, long count, float *records);
/// dst[i · stride] = the IEEE half nearest src[i] for i < n, ties to even (F16C at AVX2 and up,
/// portable C below; the same bits at every level, NaN quiet with the top of its payload).
void pk_float_to_half(int isa, const float *src, long n, uint16_t *dst, long stride);
/// out = softmax-weighted sum over `tiles` records (record c at records + c · stride): with
/// M = max m_c and w_c = expf(m_c − M), out = Σ w_c · o_c / Σ w_c · l_c (denominator in double).
void pk_attention_merge(int isa, const float *records, long tiles, long stride, long dim, float *out);

/// A new number on each call, process-wide and thread-safe (1, 2, 3, ...): identifies a forward
/// step's activations at a hook point.
unsigned long long pk_next_serial(void);

/// Processors online.
int pk_cpu_count(void);

/// SHA-256 compression of `blocks` whole 64-byte blocks at `data` into `state` (H0..H7, FIPS 180-4),
/// with the CPU's SHA extensions when it has them, else portable C; the same state either way.
void pk_sha256_compress(uint32_t state[8], const uint8_t *data, size_t blocks);
/// The portable C path alone (tests compare the two).
void pk_sha256_compress_portable(uint32_t state[8], const uint8_t *data, size_t blocks);
/// 1 when pk_sha256_compress uses the SHA extensions.
int pk_sha256_accelerated(void);

/// A persistent pool of worker threads.
typedef struct pk_pool pk_pool;
typedef void (*pk_task)(void *ctx, long index);

/// Creates a pool with `threads` threads in all (the caller of pk_pool_run counts as one).
/// Returns NULL if threads cannot be created.
pk_pool *pk_pool_create(int threads);
void pk_pool_destroy(pk_pool *pool);
/// Calls task(ctx, i) once for each i in [0, count) across the pool, the caller included, and
/// returns when all calls are done. A call made while the pool is busy (nested or from another
/// thread) runs serially on the calling thread.
void pk_pool_run(pk_pool *pool, long count, pk_task task, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
