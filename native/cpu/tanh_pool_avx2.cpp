// Fused |tanh| + max-pool 2d, AVX2 + FMA: 8 lanes. The algorithm lives in tanh_pool_simd.inl; this
// file supplies the vector wrappers it is written against (the max-pool wrappers of
// pool_vec_avx2.inl, shared with pool_avx2.cpp, plus the arithmetic ones of activation_avx2.cpp, copied: each ISA file keeps
// its own internal-linkage copy so nothing built with these flags is shared).
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {
#include "pool_vec_avx2.inl"

// ---- for the 2x2 / stride-2 backward ----
inline VI iload_partial(const int32_t* p, int64_t count) {
  return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), lanes_below(count));
}
inline VI isub(VI a, VI b) { return _mm256_sub_epi32(a, b); }
inline M ieq(VI a, VI b) { return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)); }
inline M mor(M a, M b) { return _mm256_or_ps(a, b); }
// Whether lanes [0, count) of m are all set.
inline bool mall(M m, int64_t count) {
  const int want = count >= kLanes ? 0xff : (1 << count) - 1;
  return (_mm256_movemask_ps(m) & want) == want;
}
// a0 b0 a1 b1 ... : lanes 0..7 of the interleave in lo, 8..15 in hi.
inline void interleave(V a, V b, V& lo, V& hi) {
  const V l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b);
  lo = _mm256_permute2f128_ps(l, h, 0x20);
  hi = _mm256_permute2f128_ps(l, h, 0x31);
}

// ---- arithmetic (as activation_avx2.cpp) ----

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

#include "tanh_pool_simd.inl"

}  // namespace avx2
}  // namespace dcl
