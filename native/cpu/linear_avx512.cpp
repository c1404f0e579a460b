// Fully connected layer, AVX-512 (compiled with -mavx512f ...): the blocked SGEMM of
// linear_simd.inl with 16-float zmm vectors.
//
// Micro-tile 6 rows x 4 zmm (6 x 64 floats): 24 accumulators + 4 B vectors + 1 broadcast = 29 of
// the 32 zmm registers. Per k step it issues 24 FMAs against 4 vector loads and 6 broadcasts, so
// on Zen 4 (one 512-bit FMA per cycle, FMA latency 4) the FMA unit, not the load ports, is the
// limit, and 24 independent chains cover the latency many times over.

// GCC 12 reports its own _mm512_undefined_ps() placeholders inside several AVX-512 intrinsics as
// uninitialized (a false positive of the header); silence that for the header's lines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {

struct VT {
  using V = __m512;
  static constexpr int W = 16;
  static constexpr int MR = 6;
  static constexpr int MAX_NV = 4;
  // Dot-product path tile: 4 x 4 accumulators + 4 w vectors + 1 x vector = 21 registers.
  static constexpr int DOT_RI = 4;
  static constexpr int DOT_RJ = 4;
  // Forward with at most this many rows takes the dot-product path: measured faster than either
  // GEMM orientation up to 12 rows (the swapped GEMM has a mostly empty 16-wide panel there).
  static constexpr int DOT_MAX_ROWS = 12;

  static V zero() { return _mm512_setzero_ps(); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  // Masked lanes are neither read nor written (no fault past the end of an array).
  static V load_part(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_part(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
};

#include "linear_simd.inl"

}  // namespace

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b,
                    float* y) {
  linear_forward_impl<VT>(s, x, w, b, y);
}

void linear_backward_input(const LinearShape& s, const float* dy, const float* w, float* dx) {
  linear_backward_input_impl<VT>(s, dy, w, dx);
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw,
                            float* db) {
  linear_backward_weight_impl<VT>(s, x, dy, dw, db);
}

}  // namespace avx512
}  // namespace dcl
