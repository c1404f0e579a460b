// The AVX2 vector type and register-tile shape shared by the direct convolution
// (conv2d_simd.inl, via conv2d_avx2.cpp) and Winograd (winograd_simd.inl, via
// winograd_avx2.cpp). Included inside namespace dcl::avx2's anonymous namespace, after
// <immintrin.h>, so each translation unit gets its own internal copy (see parallel.h on why no
// inline code may be shared across ISA flags by linkage).

struct Vec {
  using reg = __m256;
  static constexpr int W = 8;
  static inline reg zero() { return _mm256_setzero_ps(); }
  static inline reg load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static inline reg set1(float x) { return _mm256_set1_ps(x); }
  static inline reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static inline reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static inline reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  // 8x8 transpose in registers: 4x4 blocks within 128-bit lanes (unpack + shuffle_ps), then the
  // two lanes regrouped (permute2f128).
  static inline void transpose(reg* r) {
    reg t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 8; g += 4) {
      u[g + 0] = _mm256_shuffle_ps(t[g + 0], t[g + 2], 0x44);
      u[g + 1] = _mm256_shuffle_ps(t[g + 0], t[g + 2], 0xEE);
      u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
      u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
      r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
      r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
  }
};

constexpr int kMaxVectors = 2;
template <int NV>
constexpr int max_rows() {
  return NV == 2 ? 6 : 12;
}
