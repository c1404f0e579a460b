// pair_l1_loss, AVX2 + FMA: 4 dimensions per ymm of doubles, tails by maskload / maskstore; the
// loops are in pair_loss_simd.inl.
#include <immintrin.h>

#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

struct Traits {
  using V = __m256d;
  static constexpr int kLanes = 4;
  static __m128i first32(int m) { return _mm_cmpgt_epi32(_mm_set1_epi32(m), _mm_setr_epi32(0, 1, 2, 3)); }
  static __m256i first64(int m) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), _mm256_setr_epi64x(0, 1, 2, 3)); }
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static double hsum(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static V load_f32(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  static V load_f32_part(const float* p, int m) { return _mm256_cvtps_pd(_mm_maskload_ps(p, first32(m))); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V load_part(const double* p, int m) { return _mm256_maskload_pd(p, first64(m)); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static void store_part(double* p, V v, int m) { _mm256_maskstore_pd(p, first64(m), v); }
  static V sign_step(V self, V other, V g, V ng) {
    const V gt = _mm256_cmp_pd(self, other, _CMP_GT_OQ);
    const V lt = _mm256_cmp_pd(self, other, _CMP_LT_OQ);
    return _mm256_or_pd(_mm256_and_pd(gt, g), _mm256_and_pd(lt, ng));
  }
};

}  // namespace

#include "pair_loss_simd.inl"

}  // namespace avx2
}  // namespace dcl
