// hamming_dp, AVX2 + FMA: 4 pairs per ymm of doubles; the loop is in hamming_dp_simd.inl. The p
// rows of the 4 pairs' images are transposed 4 dimensions at a time.
#include <immintrin.h>

#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

struct Traits {
  using V = __m256d;
  using M = __m256d;  // all-ones / all-zeros lanes, as AVX compares return them
  static constexpr int kLanes = 4;
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  // 4 columns of 4 rows: masked row loads (nothing read past a row's end), a 4 x 4 transpose in
  // xmm registers, then one widening per column.
  static constexpr int kColumns = 4;
  static void load_columns(const float* const* rows, int64_t i0, int cols, double* out) {
    __m128 r0, r1, r2, r3;
    if (cols == 4) {  // plain loads: vmaskmovps is several times slower
      r0 = _mm_loadu_ps(rows[0] + i0), r1 = _mm_loadu_ps(rows[1] + i0);
      r2 = _mm_loadu_ps(rows[2] + i0), r3 = _mm_loadu_ps(rows[3] + i0);
    } else {
      const __m128i k = _mm_cmpgt_epi32(_mm_set1_epi32(cols), _mm_setr_epi32(0, 1, 2, 3));
      r0 = _mm_maskload_ps(rows[0] + i0, k), r1 = _mm_maskload_ps(rows[1] + i0, k);
      r2 = _mm_maskload_ps(rows[2] + i0, k), r3 = _mm_maskload_ps(rows[3] + i0, k);
    }
    const __m128 t0 = _mm_unpacklo_ps(r0, r1), t1 = _mm_unpackhi_ps(r0, r1);
    const __m128 t2 = _mm_unpacklo_ps(r2, r3), t3 = _mm_unpackhi_ps(r2, r3);
    const __m128 c[4] = {_mm_movelh_ps(t0, t2), _mm_movehl_ps(t2, t0), _mm_movelh_ps(t1, t3), _mm_movehl_ps(t3, t1)};
    for (int t = 0; t < cols; ++t) _mm256_storeu_pd(out + t * 4, _mm256_cvtps_pd(c[t]));
  }
  static M gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static V blend(M m, V t, V f) { return _mm256_blendv_pd(f, t, m); }
  static void store_first(double* p, V v, int m) {
    if (m == 4) {
      _mm256_storeu_pd(p, v);
      return;
    }
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), lanes), v);
  }
};

}  // namespace

#include "hamming_dp_simd.inl"

}  // namespace avx2
}  // namespace dcl
