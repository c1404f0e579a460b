// hamming_dp, AVX-512 (compiled with -mavx512f ...): 8 pairs per zmm of doubles; the loop is in
// hamming_dp_simd.inl. The p rows of the 8 pairs' images are transposed 8 dimensions at a time
// (one vgatherdps per dimension and image measured 1.5x slower in the forward pass on Zen 4).
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
  using M = __mmask8;
  static constexpr int kLanes = 8;
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  // 8 columns of 8 rows: masked row loads (nothing read past a row's end), an 8 x 8 transpose in
  // ymm registers (unpack, shuffle, permute2f128: 24 shuffles), then one widening per column.
  static constexpr int kColumns = 8;
  static void load_columns(const float* const* rows, int64_t i0, int cols, double* out) {
    const __mmask8 k = static_cast<__mmask8>((1u << cols) - 1u);
    __m256 r[8];
    for (int l = 0; l < 8; ++l) r[l] = _mm256_maskz_loadu_ps(k, rows[l] + i0);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    const __m256 c[8] = {_mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
                         _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
                         _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
                         _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31)};
    for (int t = 0; t < cols; ++t) _mm512_storeu_pd(out + t * 8, _mm512_cvtps_pd(c[t]));
  }
  static M gt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static V blend(M m, V t, V f) { return _mm512_mask_blend_pd(m, f, t); }
  static void store_first(double* p, V v, int m) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << m) - 1u), v);
  }
};

}  // namespace

#include "hamming_dp_simd.inl"

}  // namespace avx512
}  // namespace dcl
