// Adam / AdamW parameter update, AVX2: 8 lanes. See adam_serial.cpp for the definition; the
// results are bit-identical to it (same float32 operations in the same order, correctly rounded
// sqrt and division). Floating-point contraction is switched off below so that the compiler does
// not fuse a multiply and an add into one FMA (one rounding instead of the reference's two).
// The tail goes through the same code with masked loads and stores (nothing read or written past n).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

constexpr int64_t kMinParallel = 1 << 15;
constexpr int64_t kLanes = 8;

struct Vec {
  __m256 r;
  static Vec set1(float f) { return {_mm256_set1_ps(f)}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec load(const float* p, __m256i k) { return {_mm256_maskload_ps(p, k)}; }
  void store(float* p) const { _mm256_storeu_ps(p, r); }
  void store(float* p, __m256i k) const { _mm256_maskstore_ps(p, k, r); }
};
inline Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.r, b.r)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.r, b.r)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.r, b.r)}; }
inline Vec operator/(Vec a, Vec b) { return {_mm256_div_ps(a.r, b.r)}; }
inline Vec vsqrt(Vec a) { return {_mm256_sqrt_ps(a.r)}; }

// Lanes [0, count) set, count in [0, 8].
inline __m256i lanes_below(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

struct Consts {
  Vec decay, b1, c1, b2, c2, step, bc2, eps;
};

// One vector of 8 elements at i (k: the lanes to touch, for the tail).
template <bool kTail>
inline void update8(const Consts& c, int64_t i, float* param, const float* grad, float* m, float* v, __m256i k) {
  const Vec g = kTail ? Vec::load(grad + i, k) : Vec::load(grad + i);
  const Vec p0 = kTail ? Vec::load(param + i, k) : Vec::load(param + i);
  const Vec m0 = kTail ? Vec::load(m + i, k) : Vec::load(m + i);
  const Vec v0 = kTail ? Vec::load(v + i, k) : Vec::load(v + i);
  const Vec p = p0 * c.decay;
  const Vec mi = c.b1 * m0 + c.c1 * g;
  const Vec vi = c.b2 * v0 + c.c2 * (g * g);
  const Vec denom = vsqrt(vi) / c.bc2 + c.eps;
  const Vec pn = p - c.step * (mi / denom);
  if (kTail) {
    mi.store(m + i, k);
    vi.store(v + i, k);
    pn.store(param + i, k);
  } else {
    mi.store(m + i);
    vi.store(v + i);
    pn.store(param + i);
  }
}

void update_range(const Consts& c, int64_t i0, int64_t i1, float* param, const float* grad, float* m, float* v) {
  int64_t i = i0;
  const __m256i all = _mm256_set1_epi32(-1);
  for (; i + kLanes <= i1; i += kLanes) update8<false>(c, i, param, grad, m, v, all);
  if (i < i1) update8<true>(c, i, param, grad, m, v, lanes_below(i1 - i));
}

}  // namespace

#include "adam_simd.inl"

}  // namespace avx2
}  // namespace dcl
