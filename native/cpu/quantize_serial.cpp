// Code layouts n x q (n q <= 32): quantize + pack, and distances between packed codes. Serial
// reference.
//
// Quantization: level_i = clamp(floor(2^q p_i), 0, 2^q - 1), NaN -> 0. 2^q p is exact in float32
// (a power of two), so a level is exactly the floor of the float product: p < 0 (and -0, NaN)
// gives 0, p >= 1 (and +inf) gives 2^q - 1, and p = 1 - 2^-24 (the largest float below 1) gives
// 2^q - 1 for every q <= 24 (for q > 24 the float grid below 1 is coarser than the levels).
// Packing: dimension i occupies bits [i q, (i + 1) q), dimension 0 lowest; unused high bits are 0.
//
// Distance: q = 1, or the `hamming` option: popcount of (a ^ b) over the layout's n q bits;
// otherwise L1 over the n fields, sum_i |level_i(a) - level_i(b)| (at most n (2^q - 1) <= 2^32 - 1,
// so the sum is exact in uint32).
#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace {

// Below this many codes the call stays on the calling thread.
constexpr int64_t kMinParallel = 1 << 15;

uint32_t layout_mask(int n, int q) { return n * q >= 32 ? 0xffffffffu : (1u << (n * q)) - 1u; }

uint32_t popcount32(uint32_t x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0fu;
  return (x * 0x01010101u) >> 24;
}

}  // namespace

namespace serial {

void quantize_pack(int64_t count, int n, int q, const float* p, int32_t* codes) {
  const float scale = static_cast<float>(static_cast<double>(1ull << q));  // 2^q, exact
  const uint32_t top = q >= 32 ? 0xffffffffu : (1u << q) - 1u;
  auto body = [&](int64_t x0, int64_t x1, int) {
    for (int64_t x = x0; x < x1; ++x) {
      uint32_t code = 0;
      for (int i = 0; i < n; ++i) {
        const float v = p[x * n + i] * scale;
        uint32_t level;
        if (!(v > 0.0f))
          level = 0;  // negative, zero, NaN
        else if (v >= scale)
          level = top;  // p >= 1, +inf
        else
          level = static_cast<uint32_t>(static_cast<int64_t>(v));  // truncation = floor for v > 0
        code |= level << (i * q);
      }
      codes[x] = static_cast<int32_t>(code);
    }
  };
  if (count >= kMinParallel)
    parallel_for(count, body);
  else
    body(0, count, 0);
}

void code_distances(int64_t count, int n, int q, bool hamming, const int32_t* a, const int32_t* b,
                    uint32_t* dist) {
  const uint32_t mask = layout_mask(n, q);
  const uint32_t field = q >= 32 ? 0xffffffffu : (1u << q) - 1u;
  auto body = [&](int64_t k0, int64_t k1, int) {
    for (int64_t k = k0; k < k1; ++k) {
      const uint32_t x = static_cast<uint32_t>(a[k]), y = static_cast<uint32_t>(b[k]);
      if (hamming || q == 1) {
        dist[k] = popcount32((x ^ y) & mask);
        continue;
      }
      uint32_t s = 0;
      for (int i = 0; i < n; ++i) {
        const uint32_t u = (x >> (i * q)) & field, v = (y >> (i * q)) & field;
        s += u > v ? u - v : v - u;
      }
      dist[k] = s;
    }
  };
  if (count >= kMinParallel)
    parallel_for(count, body);
  else
    body(0, count, 0);
}

}  // namespace serial
}  // namespace dcl
