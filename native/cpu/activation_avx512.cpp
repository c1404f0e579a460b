// |tanh| and sigmoid, AVX-512 (F/DQ/BW/VL): 16 lanes with opmask registers. The algorithms live
// in activation_simd.inl; this file supplies the 16-lane vector wrappers they are written
// against. Tails are masked loads/stores, so the last partial vector goes through the same code.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {

using V = __m512;
using M = __mmask16;
constexpr int64_t kLanes = 16;

inline V vset1(float f) { return _mm512_set1_ps(f); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
// Lanes [0, count) set; count may be <= 0 or >= 16.
inline M lanes_below(int64_t count) {
  if (count <= 0) return 0;
  if (count >= kLanes) return 0xffff;
  return static_cast<M>((1u << count) - 1u);
}
// Masked-off lanes are neither read nor written (no fault past the end of the array).
inline V vload_partial(const float* p, int64_t count) { return _mm512_maskz_loadu_ps(lanes_below(count), p); }
inline void vstore_partial(float* p, V v, int64_t count) { _mm512_mask_storeu_ps(p, lanes_below(count), v); }
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
inline M vgt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline V vselect(M m, V if_true, V if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
// p * 2^n for integral n: vscalefps rounds once and handles the denormal range itself.
inline V vscale2(V p, V n) { return _mm512_maskz_scalef_ps(kAll, p, n); }

}  // namespace

#include "activation_simd.inl"

}  // namespace avx512
}  // namespace dcl
