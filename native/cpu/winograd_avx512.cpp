// Winograd F(2x2, 3x3) conv2d with AVX-512: 16-lane vectors, 32 registers. GEMM register tiles
// as in the direct kernel (6 rows x 4 vectors: 24 accumulators + 4 loaded vectors + 1 broadcast).
// The algorithm is in winograd_simd.inl.
// GCC 12 reports its own AVX-512 intrinsics (which start from an undefined vector) as "may be
// used uninitialized": a known false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"
#include "winograd.h"

namespace dcl {
namespace avx512 {
namespace {

struct Vec {
  using reg = __m512;
  static constexpr int W = 16;
  static inline reg zero() { return _mm512_setzero_ps(); }
  static inline reg load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static inline reg set1(float x) { return _mm512_set1_ps(x); }
  static inline reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static inline reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static inline reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  // 16x16 transpose in registers (as in conv2d_avx512.cpp).
  static inline void transpose(reg* r) {
    reg t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
      u[g + 0] = _mm512_shuffle_ps(t[g + 0], t[g + 2], 0x44);
      u[g + 1] = _mm512_shuffle_ps(t[g + 0], t[g + 2], 0xEE);
      u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
      u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
      const reg x_lo = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44);
      const reg x_hi = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
      const reg y_lo = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
      const reg y_hi = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
      r[j] = _mm512_shuffle_f32x4(x_lo, y_lo, 0x88);
      r[4 + j] = _mm512_shuffle_f32x4(x_lo, y_lo, 0xDD);
      r[8 + j] = _mm512_shuffle_f32x4(x_hi, y_hi, 0x88);
      r[12 + j] = _mm512_shuffle_f32x4(x_hi, y_hi, 0xDD);
    }
  }
};

constexpr int kMaxVectors = 4;
// Rows per tile for NV vectors: accumulators + loaded vectors + broadcast within 32 registers
// (the direct kernel's measured choice).
template <int NV>
constexpr int max_rows() {
  return NV == 4 ? 6 : NV == 3 ? 8 : NV == 2 ? 8 : 12;
}

}  // namespace

#include "winograd_simd.inl"

}  // namespace avx512
}  // namespace dcl
