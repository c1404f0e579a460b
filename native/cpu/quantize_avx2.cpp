// Code layouts, AVX2. See quantize_serial.cpp for the definitions and quantize_avx512.cpp for the
// method (quantize along a code's dimensions, 8 per ymm; distances across 8 codes per ymm); the
// results are bit-identical to the serial ones. AVX2 has no unsigned float conversion, so a level
// v in [2^31, 2^32) (q = 32 only) is converted as (v - 2^31) with the top bit put back.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

constexpr int64_t kMinParallel = 1 << 15;

inline __m256i first(int64_t m) {
  const int c = m >= 8 ? 8 : static_cast<int>(m);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline __m256i popcount_lanes(__m256i x) {
  x = _mm256_sub_epi32(x, _mm256_and_si256(_mm256_srli_epi32(x, 1), _mm256_set1_epi32(0x55555555)));
  const __m256i m2 = _mm256_set1_epi32(0x33333333);
  x = _mm256_add_epi32(_mm256_and_si256(x, m2), _mm256_and_si256(_mm256_srli_epi32(x, 2), m2));
  x = _mm256_and_si256(_mm256_add_epi32(x, _mm256_srli_epi32(x, 4)), _mm256_set1_epi32(0x0f0f0f0f));
  x = _mm256_add_epi32(x, _mm256_srli_epi32(x, 8));
  x = _mm256_add_epi32(x, _mm256_srli_epi32(x, 16));
  return _mm256_and_si256(x, _mm256_set1_epi32(0x3f));
}

void quantize_range(int64_t x0, int64_t x1, int n, int q, const float* p, int32_t* codes) {
  const __m256 scale = _mm256_set1_ps(static_cast<float>(static_cast<double>(1ull << q)));
  const __m256i top = _mm256_set1_epi32(static_cast<int32_t>(q >= 32 ? 0xffffffffu : (1u << q) - 1u));
  const __m256 two31 = _mm256_set1_ps(2147483648.0f);
  const __m256i sign = _mm256_set1_epi32(static_cast<int32_t>(0x80000000u));
  const __m256i lane_shift = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(q));
  const int groups = (n + 7) / 8;
  for (int64_t x = x0; x < x1; ++x) {
    const float* row = p + x * n;
    __m256i code = _mm256_setzero_si256();
    for (int g = 0; g < groups; ++g) {
      // Whole groups by plain loads (vmaskmovps measured 3x slower here), the tail masked.
      const __m256 in = n - 8 * g >= 8 ? _mm256_loadu_ps(row + 8 * g) : _mm256_maskload_ps(row + 8 * g, first(n - 8 * g));
      const __m256 v = _mm256_mul_ps(in, scale);
      const __m256i pos = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
      const __m256 big = _mm256_cmp_ps(v, scale, _CMP_GE_OQ);
      const __m256 hi = _mm256_cmp_ps(v, two31, _CMP_GE_OQ);
      const __m256i t = _mm256_cvttps_epi32(_mm256_sub_ps(v, _mm256_and_ps(hi, two31)));
      __m256i level = _mm256_xor_si256(t, _mm256_and_si256(_mm256_castps_si256(hi), sign));
      level = _mm256_and_si256(level, pos);
      level = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(level), _mm256_castsi256_ps(top), big));
      // Dimension i goes to bit i q: shifts of 32 or more (lanes past n) give 0 in vpsllvd.
      const __m256i shift = _mm256_add_epi32(lane_shift, _mm256_set1_epi32(8 * g * q));
      code = _mm256_or_si256(code, _mm256_sllv_epi32(level, shift));
    }
    __m128i r = _mm_or_si128(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
    r = _mm_or_si128(r, _mm_shuffle_epi32(r, 0x4e));
    r = _mm_or_si128(r, _mm_shuffle_epi32(r, 0xb1));
    codes[x] = _mm_cvtsi128_si32(r);
  }
}

void distances_range(int64_t k0, int64_t k1, int n, int q, bool hamming, const int32_t* a, const int32_t* b,
                     uint32_t* dist) {
  const __m256i mask = _mm256_set1_epi32(static_cast<int32_t>(n * q >= 32 ? 0xffffffffu : (1u << (n * q)) - 1u));
  const __m256i field = _mm256_set1_epi32(static_cast<int32_t>(q >= 32 ? 0xffffffffu : (1u << q) - 1u));
  for (int64_t k = k0; k < k1; k += 8) {
    // Whole blocks by plain loads and stores (vpmaskmov is several times slower), the tail masked.
    const bool whole = k1 - k >= 8;
    const __m256i m = first(k1 - k);
    const __m256i x = whole ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k)) : _mm256_maskload_epi32(a + k, m);
    const __m256i y = whole ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k)) : _mm256_maskload_epi32(b + k, m);
    __m256i s;
    if (hamming || q == 1) {
      s = popcount_lanes(_mm256_and_si256(_mm256_xor_si256(x, y), mask));
    } else {
      s = _mm256_setzero_si256();
      for (int i = 0; i < n; ++i) {
        const __m128i c = _mm_cvtsi32_si128(i * q);
        const __m256i u = _mm256_and_si256(_mm256_srl_epi32(x, c), field);
        const __m256i v = _mm256_and_si256(_mm256_srl_epi32(y, c), field);
        s = _mm256_add_epi32(s, _mm256_sub_epi32(_mm256_max_epu32(u, v), _mm256_min_epu32(u, v)));
      }
    }
    if (whole)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dist + k), s);
    else
      _mm256_maskstore_epi32(reinterpret_cast<int32_t*>(dist + k), m, s);
  }
}

template <class Body>
void run_blocks(int64_t count, Body&& body) {
  if (count < kMinParallel) {
    body(int64_t{0}, count);
    return;
  }
  const int64_t blocks = (count + 7) / 8;
  parallel_for(blocks, [&](int64_t b0, int64_t b1, int) { body(b0 * 8, b1 * 8 < count ? b1 * 8 : count); });
}

}  // namespace

void quantize_pack(int64_t count, int n, int q, const float* p, int32_t* codes) {
  run_blocks(count, [&](int64_t x0, int64_t x1) { quantize_range(x0, x1, n, q, p, codes); });
}

void code_distances(int64_t count, int n, int q, bool hamming, const int32_t* a, const int32_t* b,
                    uint32_t* dist) {
  run_blocks(count, [&](int64_t k0, int64_t k1) { distances_range(k0, k1, n, q, hamming, a, b, dist); });
}

}  // namespace avx2
}  // namespace dcl
