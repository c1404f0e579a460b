// Code layouts, AVX-512 (compiled with -mavx512f ...): 16 codes per zmm. See quantize_serial.cpp
// for the definitions; the results are bit-identical to it.
//
// quantize_pack works one code at a time along its n <= 32 dimensions (one or two masked loads;
// a gather per dimension across 16 codes measured slower than the serial loop): the level is the
// truncating unsigned conversion (vcvttps2udq, exact for 0 < v < 2^32), masked to 0 for v <= 0 /
// NaN and to 2^q - 1 for v >= 2^q, shifted into place per lane (vpsllvd) and OR-reduced.
// code_distances runs across 16 codes per zmm with the SWAR popcount
// (base AVX-512 F/BW has no vpopcntd; VPOPCNTDQ is not part of the avx512 level this library
// checks for) or, for q > 1, max - min per field (unsigned, so q = 32 fields work too).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {

constexpr int64_t kMinParallel = 1 << 15;

inline __mmask16 first(int64_t m) { return m >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << m) - 1u); }

inline __m512i popcount_lanes(__m512i x) {
  x = _mm512_sub_epi32(x, _mm512_and_si512(_mm512_srli_epi32(x, 1), _mm512_set1_epi32(0x55555555)));
  const __m512i m2 = _mm512_set1_epi32(0x33333333);
  x = _mm512_add_epi32(_mm512_and_si512(x, m2), _mm512_and_si512(_mm512_srli_epi32(x, 2), m2));
  x = _mm512_and_si512(_mm512_add_epi32(x, _mm512_srli_epi32(x, 4)), _mm512_set1_epi32(0x0f0f0f0f));
  x = _mm512_add_epi32(x, _mm512_srli_epi32(x, 8));
  x = _mm512_add_epi32(x, _mm512_srli_epi32(x, 16));
  return _mm512_and_si512(x, _mm512_set1_epi32(0x3f));
}

// The levels of 16 values (masked-off lanes were loaded as 0 and give level 0).
inline __m512i levels(__m512 p, __m512 scale, __m512i top) {
  const __m512 v = _mm512_mul_ps(p, scale);
  const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
  const __mmask16 big = _mm512_cmp_ps_mask(v, scale, _CMP_GE_OQ);
  return _mm512_mask_mov_epi32(_mm512_maskz_cvttps_epu32(pos, v), big, top);
}

void quantize_range(int64_t x0, int64_t x1, int n, int q, const float* p, int32_t* codes) {
  const __m512 scale = _mm512_set1_ps(static_cast<float>(static_cast<double>(1ull << q)));
  const __m512i top = _mm512_set1_epi32(static_cast<int32_t>(q >= 32 ? 0xffffffffu : (1u << q) - 1u));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  // Dimension i goes to bit i q: shifts of 32 or more (lanes past n) give 0 in vpsllvd.
  const __m512i shift_lo = _mm512_mullo_epi32(lane, _mm512_set1_epi32(q));
  const __m512i shift_hi = _mm512_add_epi32(shift_lo, _mm512_set1_epi32(16 * q));
  const __mmask16 k_lo = first(n < 16 ? n : 16);
  const __mmask16 k_hi = first(n > 16 ? n - 16 : 0);
  for (int64_t x = x0; x < x1; ++x) {
    const float* row = p + x * n;
    __m512i code = _mm512_sllv_epi32(levels(_mm512_maskz_loadu_ps(k_lo, row), scale, top), shift_lo);
    if (n > 16)  // q = 1 (n q <= 32)
      code = _mm512_or_si512(code, _mm512_sllv_epi32(levels(_mm512_maskz_loadu_ps(k_hi, row + 16), scale, top), shift_hi));
    codes[x] = _mm512_reduce_or_epi32(code);
  }
}

void distances_range(int64_t k0, int64_t k1, int n, int q, bool hamming, const int32_t* a, const int32_t* b,
                     uint32_t* dist) {
  const __m512i mask = _mm512_set1_epi32(static_cast<int32_t>(n * q >= 32 ? 0xffffffffu : (1u << (n * q)) - 1u));
  const __m512i field = _mm512_set1_epi32(static_cast<int32_t>(q >= 32 ? 0xffffffffu : (1u << q) - 1u));
  for (int64_t k = k0; k < k1; k += 16) {
    const __mmask16 m = first(k1 - k);
    const __m512i x = _mm512_maskz_loadu_epi32(m, a + k);
    const __m512i y = _mm512_maskz_loadu_epi32(m, b + k);
    __m512i s;
    if (hamming || q == 1) {
      s = popcount_lanes(_mm512_and_si512(_mm512_xor_si512(x, y), mask));
    } else {
      s = _mm512_setzero_si512();
      for (int i = 0; i < n; ++i) {
        const __m128i c = _mm_cvtsi32_si128(i * q);
        const __m512i u = _mm512_and_si512(_mm512_srl_epi32(x, c), field);
        const __m512i v = _mm512_and_si512(_mm512_srl_epi32(y, c), field);
        s = _mm512_add_epi32(s, _mm512_sub_epi32(_mm512_max_epu32(u, v), _mm512_min_epu32(u, v)));
      }
    }
    _mm512_mask_storeu_epi32(dist + k, m, s);
  }
}

// Threads get whole blocks of 16 codes.
template <class Body>
void run_blocks(int64_t count, Body&& body) {
  if (count < kMinParallel) {
    body(int64_t{0}, count);
    return;
  }
  const int64_t blocks = (count + 15) / 16;
  parallel_for(blocks, [&](int64_t b0, int64_t b1, int) { body(b0 * 16, b1 * 16 < count ? b1 * 16 : count); });
}

}  // namespace

void quantize_pack(int64_t count, int n, int q, const float* p, int32_t* codes) {
  run_blocks(count, [&](int64_t x0, int64_t x1) { quantize_range(x0, x1, n, q, p, codes); });
}

void code_distances(int64_t count, int n, int q, bool hamming, const int32_t* a, const int32_t* b,
                    uint32_t* dist) {
  run_blocks(count, [&](int64_t k0, int64_t k1) { distances_range(k0, k1, n, q, hamming, a, b, dist); });
}

}  // namespace avx512
}  // namespace dcl
