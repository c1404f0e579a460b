// FMA peak for the avx512 path (16-lane vectors); the loop is in fma_peak_simd.inl.
#include <immintrin.h>

#include "fma_peak.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {

struct Vec {
  using reg = __m512;
  static constexpr int W = 16;
  static inline reg set1(float x) { return _mm512_set1_ps(x); }
  static inline reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static inline void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
};

}  // namespace

#include "fma_peak_simd.inl"

}  // namespace avx512
}  // namespace dcl
