// |tanh| and sigmoid, AVX2 + FMA: 8 lanes. The algorithms live in activation_simd.inl; this file
// supplies the 8-lane vector wrappers they are written against. Tails use maskload/maskstore, so
// the last partial vector goes through the same code as the others (no scalar fallback whose
// rounding could differ).
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

using V = __m256;
using M = __m256;  // an all-ones / all-zeros lane mask, as AVX2 compares return it
constexpr int64_t kLanes = 8;

inline V vset1(float f) { return _mm256_set1_ps(f); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
// Lanes [0, count) set; count may be <= 0 or >= 8.
inline __m256i lanes_below(int64_t count) {
  const int c = count < 0 ? 0 : (count > kLanes ? static_cast<int>(kLanes) : static_cast<int>(count));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// Masked-off lanes are neither read nor written (no fault past the end of the array).
inline V vload_partial(const float* p, int64_t count) { return _mm256_maskload_ps(p, lanes_below(count)); }
inline void vstore_partial(float* p, V v, int64_t count) { _mm256_maskstore_ps(p, lanes_below(count), v); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
inline V vfmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a * b + c
inline V vfnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a * b
inline V vabs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
inline V vneg(V a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
// minps returns its second operand when either is NaN: with the variable second, NaN survives.
inline V vmin_keep_nan(V c, V a) { return _mm256_min_ps(c, a); }
inline V vround(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline M vlt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline M vgt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline V vselect(M m, V if_true, V if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
// p * 2^n for integral n in [-252, 254]. 2^n is built from exponent bits in two halves, each a
// normal float, so results that land in the denormal range are rounded once, correctly, by the
// second multiply (one factor 2^n would need n >= -126).
inline V vscale2(V p, V n) {
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

}  // namespace

#include "activation_simd.inl"

}  // namespace avx2
}  // namespace dcl
