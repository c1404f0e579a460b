// The AVX512 vector type and register-tile shape shared by the direct convolution
// (conv2d_simd.inl, via conv2d_avx512.cpp) and Winograd (winograd_simd.inl, via
// winograd_avx512.cpp). Included inside namespace dcl::avx512's anonymous namespace, after
// <immintrin.h>, so each translation unit gets its own internal copy (see parallel.h on why no
// inline code may be shared across ISA flags by linkage).

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
  // 16x16 transpose in registers: pairs are interleaved within 128-bit lanes (unpack), 4x4
  // blocks finished within lanes (shuffle_ps), then the lanes regrouped twice (shuffle_f32x4).
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
    // u[4g + j], 128-bit lane k, holds column 4k + j of rows 4g .. 4g + 3.
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
// Rows per tile for NV vectors: accumulators + weights + broadcast within 32 registers, and no
// more row pointers than the 16 general registers hold without spilling (8 rows measured faster
// than 12 for NV = 2).
template <int NV>
constexpr int max_rows() {
  return NV == 4 ? 6 : NV == 3 ? 8 : NV == 2 ? 8 : 12;
}
