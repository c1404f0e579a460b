// Fused |tanh| + max-pool 2d, AVX-512 (F/DQ/BW/VL): 16 lanes. The algorithm lives in tanh_pool_simd.inl; this
// file supplies the vector wrappers it is written against (the max-pool wrappers of
// pool_vec_avx512.inl, shared with pool_avx512.cpp, plus the arithmetic ones of activation_avx512.cpp, copied: each ISA file keeps
// its own internal-linkage copy so nothing built with these flags is shared).
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {
#include "pool_vec_avx512.inl"

// ---- for the 2x2 / stride-2 backward ----
inline VI iload_partial(const int32_t* p, int64_t count) { return _mm512_maskz_loadu_epi32(lanes_below(count), p); }
inline VI isub(VI a, VI b) { return _mm512_sub_epi32(a, b); }
inline M ieq(VI a, VI b) { return _mm512_cmpeq_epi32_mask(a, b); }
inline M mor(M a, M b) { return static_cast<M>(a | b); }
// Whether lanes [0, count) of m are all set.
inline bool mall(M m, int64_t count) {
  const M want = lanes_below(count);
  return static_cast<M>(m & want) == want;
}
// a0 b0 a1 b1 ... : lanes 0..15 of the interleave in lo, 16..31 in hi.
inline void interleave(V a, V b, V& lo, V& hi) {
  const VI lo_index = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const VI hi_index = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  lo = _mm512_permutex2var_ps(a, lo_index, b);
  hi = _mm512_permutex2var_ps(a, hi_index, b);
}

// ---- arithmetic (as activation_avx512.cpp) ----

inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
inline V vfmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a * b + c
inline V vfnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a * b
inline V vabs(V a) { return _mm512_abs_ps(a); }
inline V vneg(V a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
// The all-lanes maskz_ forms below are the plain instructions; they avoid GCC 12's spurious
// -Wmaybe-uninitialized on the _mm512_undefined_ps() inside the unmasked intrinsics.
constexpr M kAll = 0xffff;
// vminps returns its second operand when either is NaN: with the variable second, NaN survives.
inline V vmin_keep_nan(V c, V a) { return _mm512_maskz_min_ps(kAll, c, a); }
inline V vround(V a) { return _mm512_maskz_roundscale_ps(kAll, a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline M vlt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
// p * 2^n for integral n: vscalefps rounds once and handles the denormal range itself.
inline V vscale2(V p, V n) { return _mm512_maskz_scalef_ps(kAll, p, n); }

}  // namespace

#include "tanh_pool_simd.inl"

}  // namespace avx512
}  // namespace dcl
