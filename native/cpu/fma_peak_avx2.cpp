// FMA peak for the avx2 path (8-lane vectors); the loop is in fma_peak_simd.inl.
#include <immintrin.h>

#include "fma_peak.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

struct Vec {
  using reg = __m256;
  static constexpr int W = 8;
  static inline reg set1(float x) { return _mm256_set1_ps(x); }
  static inline reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static inline void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
};

}  // namespace

#include "fma_peak_simd.inl"

}  // namespace avx2
}  // namespace dcl
