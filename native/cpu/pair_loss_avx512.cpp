// pair_l1_loss, AVX-512 (compiled with -mavx512f ...): 8 dimensions per zmm of doubles, tails by
// mask registers; the loops are in pair_loss_simd.inl.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {

struct Traits {
  using V = __m512d;
  static constexpr int kLanes = 8;
  static __mmask8 first(int m) { return static_cast<__mmask8>((1u << m) - 1u); }
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V abs(V a) { return _mm512_abs_pd(a); }
  static double hsum(V v) { return _mm512_reduce_add_pd(v); }
  static V load_f32(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  static V load_f32_part(const float* p, int m) { return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(first(m), p)); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V load_part(const double* p, int m) { return _mm512_maskz_loadu_pd(first(m), p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static void store_part(double* p, V v, int m) { _mm512_mask_storeu_pd(p, first(m), v); }
  static V sign_step(V self, V other, V g, V ng) {
    const __mmask8 gt = _mm512_cmp_pd_mask(self, other, _CMP_GT_OQ);
    const __mmask8 lt = _mm512_cmp_pd_mask(self, other, _CMP_LT_OQ);
    return _mm512_mask_mov_pd(_mm512_maskz_mov_pd(gt, g), lt, ng);
  }
};

}  // namespace

#include "pair_loss_simd.inl"

}  // namespace avx512
}  // namespace dcl
