// Fused |tanh| + max-pool 2d, AVX-512 (F/DQ/BW/VL): 16 lanes. The algorithm lives in tanh_pool_simd.inl; this
// file supplies the vector wrappers it is written against (the max-pool wrappers of
// pool_avx512.cpp plus the arithmetic ones of activation_avx512.cpp, copied: each ISA file keeps
// its own internal-linkage copy so nothing built with these flags is shared).
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {

using V = __m512;
using VI = __m512i;
using M = __mmask16;
constexpr int64_t kLanes = 16;

inline VI lane_index() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
// Lanes [0, count) set; count may be <= 0 or >= 16.
inline M lanes_below(int64_t count) {
  if (count <= 0) return 0;
  if (count >= kLanes) return 0xffff;
  return static_cast<M>((1u << count) - 1u);
}
inline V vset1(float f) { return _mm512_set1_ps(f); }
inline VI iset1(int32_t v) { return _mm512_set1_epi32(v); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline V vload_partial(const float* p, int64_t count) { return _mm512_maskz_loadu_ps(lanes_below(count), p); }
// Half a vector from each of two addresses.
inline V vload_halves(const float* lo, const float* hi) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(lo)), _mm256_loadu_ps(hi), 1);
}
inline VI iload(const int32_t* p) { return _mm512_loadu_si512(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline void vstore_partial(float* p, V v, int64_t count) { _mm512_mask_storeu_ps(p, lanes_below(count), v); }
inline void istore(int32_t* p, VI v) { _mm512_storeu_si512(p, v); }
inline void istore_partial(int32_t* p, VI v, int64_t count) { _mm512_mask_storeu_epi32(p, lanes_below(count), v); }
inline V vgather(const float* base, VI offsets) {
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xffff, offsets, base, 4);
}
inline V vgather_partial(const float* base, VI offsets, int64_t count) {
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes_below(count), offsets, base, 4);
}
inline VI iadd(VI a, VI b) { return _mm512_add_epi32(a, b); }
inline VI imul(VI a, VI b) { return _mm512_mullo_epi32(a, b); }
inline M vgt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline M veq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
inline V vselect(M m, V if_true, V if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
inline VI iselect(M m, VI if_true, VI if_false) { return _mm512_mask_blend_epi32(m, if_false, if_true); }
// De-interleaves the 32 floats a | b into even and odd positions, in output order: one
// two-source permute (vpermt2ps) each, so to_output_order has nothing left to do.
inline void deinterleave(V a, V b, V& even, V& odd) {
  const VI even_index = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const VI odd_index = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  even = _mm512_permutex2var_ps(a, even_index, b);
  odd = _mm512_permutex2var_ps(a, odd_index, b);
}
inline V to_output_order(V v) { return v; }
inline VI to_output_order(VI v) { return v; }

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
