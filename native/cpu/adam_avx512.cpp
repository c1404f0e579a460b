// Adam / AdamW parameter update, AVX-512: 16 lanes. See adam_serial.cpp for the definition; the
// results are bit-identical to it (same float32 operations in the same order, correctly rounded
// sqrt and division). Floating-point contraction is switched off below so that the compiler does
// not fuse a multiply and an add into one FMA (one rounding instead of the reference's two).
// The tail goes through the same code with masked loads and stores (nothing read or written past n).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
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
constexpr int64_t kLanes = 16;

struct Vec {
  __m512 r;
  static Vec set1(float f) { return {_mm512_set1_ps(f)}; }
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec load(const float* p, __mmask16 k) { return {_mm512_maskz_loadu_ps(k, p)}; }
  void store(float* p) const { _mm512_storeu_ps(p, r); }
  void store(float* p, __mmask16 k) const { _mm512_mask_storeu_ps(p, k, r); }
};
inline Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.r, b.r)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.r, b.r)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.r, b.r)}; }
inline Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.r, b.r)}; }
inline Vec vsqrt(Vec a) { return {_mm512_sqrt_ps(a.r)}; }

// Lanes [0, count) set, count in [0, 16].
inline __mmask16 lanes_below(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << count) - 1u);
}

struct Consts {
  Vec decay, b1, c1, b2, c2, step, bc2, eps;
};

// One vector of 16 elements at i (k: the lanes to touch, for the tail).
template <bool kTail>
inline void update16(const Consts& c, int64_t i, float* param, const float* grad, float* m, float* v, __mmask16 k) {
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
  for (; i + kLanes <= i1; i += kLanes) update16<false>(c, i, param, grad, m, v, 0xffff);
  if (i < i1) update16<true>(c, i, param, grad, m, v, lanes_below(i1 - i));
}

}  // namespace

#include "adam_simd.inl"

}  // namespace avx512
}  // namespace dcl
