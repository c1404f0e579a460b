// Fully connected layer, AVX2 + FMA (compiled with -mavx2 -mfma): the blocked SGEMM of
// linear_simd.inl with 8-float ymm vectors.
//
// Micro-tile 6 rows x 2 ymm (6 x 16 floats): 12 accumulators + 2 B vectors + 1 broadcast = 15 of
// the 16 ymm registers. Per k step: 12 FMAs against 2 loads and 6 broadcasts; Zen 4 runs two
// 256-bit FMAs per cycle with latency 4, so 8 independent chains are needed and 12 are there.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

struct VT {
  using V = __m256;
  static constexpr int W = 8;
  static constexpr int MR = 6;
  static constexpr int MAX_NV = 2;
  // Dot-product path tile: 3 x 3 accumulators + 3 w vectors + 1 x vector = 13 registers.
  static constexpr int DOT_RI = 3;
  static constexpr int DOT_RJ = 3;
  // Forward with at most this many rows takes the dot-product path: measured faster than either
  // GEMM orientation up to 6 rows (at 8 the swapped GEMM fills its 8-wide panel exactly).
  static constexpr int DOT_MAX_ROWS = 6;

  static V zero() { return _mm256_setzero_ps(); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // Masked lanes are neither read nor written (no fault past the end of an array).
  static V load_part(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_part(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
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

}  // namespace avx2
}  // namespace dcl
