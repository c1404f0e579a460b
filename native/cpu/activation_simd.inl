// |tanh| and sigmoid on SIMD vectors: the algorithms shared by activation_avx2.cpp and
// activation_avx512.cpp. Not compiled on its own: each of those files first defines, in an
// anonymous namespace, the vector type V, the mask type M, kLanes and the small wrappers used
// below (vset1, vload, vload_partial, vadd, vfmadd, vselect, vscale2 ...), then includes this file
// inside its own dcl::avx2 / dcl::avx512 namespace. Everything here has internal linkage, so each
// ISA gets its own copy and nothing compiled with -mavx512f can be shared with the serial path.
//
// Accuracy, measured against float64 libm over all 2^32 float32 inputs (both ISAs give the same
// maxima):
//   |tanh|    absolute error <= 9.0e-8, relative error <= 1.51e-7 (1.51 ulp), denormal inputs
//             returned exactly, exactly 1 from |x| >= 8.67 on (correct rounding reaches 1 at
//             9.01; in between the result is within 6e-8 of 1 anyway);
//   sigmoid   relative error <= 1.77e-7 where the result is a normal float, and <= 2.4 ulp
//             everywhere, denormal results (x < -87.3) included, where the serial
//             1 / (1 + exp(-x)) returns 0 or loses all its digits;
//   NaN in gives NaN out, and no other input gives NaN or a negative result.
// See the comments at each constant for why it has the value and degree it has.

namespace {

#include "tanh_math.inl"

// |tanh(x)| = tanh(|x|).
inline V abs_tanh(V x) { return tanh_nonneg(vabs(x)); }

// ---- sigmoid(x) = 1 / (1 + exp(-x)) -------------------------------------------------------------
//
// Computed from e = exp(-|x|) <= 1, which never overflows: x >= 0 gives 1 / (1 + e), x < 0 gives
// e / (1 + e). The second form keeps relative accuracy for very negative x (down to the denormal
// results below x = -87.3) where 1 / (1 + exp(-x)) would overflow exp and return 0 early.
// -0 and NaN take the first form: 0.5 and NaN.
inline V sigmoid(V x) {
  const V one = vset1(1.0f);
  const V e = exp_neg(vabs(x));
  const V num = vselect(vlt(x, vset1(0.0f)), e, one);
  return vdiv(num, vadd(one, e));
}

// dx = dy * sign(x) * (1 - y^2), sign(0) = 0 (and sign(NaN) = 0). The product is formed in the
// serial kernel's order, (dy * sign) * (1 - y^2), but 1 - y^2 is one FMA: for y near 1 the
// subtraction cancels, and rounding y^2 first (as the serial kernel does) would leave an error
// of up to half an ulp of 1 in a small result; the FMA rounds only once, at the end. So results
// may differ from serial by a few ulp of 1 - y^2, in the more accurate direction.
inline V abs_tanh_grad(V dy, V x, V y) {
  const V zero = vset1(0.0f);
  const V sign = vselect(vgt(x, zero), vset1(1.0f), vselect(vlt(x, zero), vset1(-1.0f), zero));
  return vmul(vmul(dy, sign), vfnmadd(y, y, vset1(1.0f)));
}

// dx = dy * y * (1 - y), in the serial kernel's order (bit-identical results).
inline V sigmoid_grad(V dy, V y) { return vmul(vmul(dy, y), vsub(vset1(1.0f), y)); }

// ---- drivers -------------------------------------------------------------------------------------

// Below this many elements the pool's wake-up (a few microseconds) costs more than it saves.
constexpr int64_t kSerialBelow = 16384;
// Threads get contiguous ranges made of whole blocks (16 KiB of floats), so every chunk but the
// last starts vector- and cache-line-aligned relative to the array and only the end has a tail.
constexpr int64_t kBlock = 4096;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

template <class Body>
inline void run_chunks(int64_t n, Body&& body) {
  if (n <= 0) return;
  if (n < kSerialBelow) {
    body(int64_t{0}, n);
    return;
  }
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(blocks, [&](int64_t b0, int64_t b1, int) { body(b0 * kBlock, min64(b1 * kBlock, n)); });
}

// Applies f to [begin, end): whole vectors, then one masked vector for the tail.
template <class F>
inline void map1(int64_t begin, int64_t end, const float* a, float* out, F f) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) vstore(out + i, f(vload(a + i)));
  if (i < end) vstore_partial(out + i, f(vload_partial(a + i, end - i)), end - i);
}

template <class F>
inline void map2(int64_t begin, int64_t end, const float* a, const float* b, float* out, F f) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) vstore(out + i, f(vload(a + i), vload(b + i)));
  if (i < end) {
    const int64_t c = end - i;
    vstore_partial(out + i, f(vload_partial(a + i, c), vload_partial(b + i, c)), c);
  }
}

template <class F>
inline void map3(int64_t begin, int64_t end, const float* a, const float* b, const float* c,
                 float* out, F f) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes)
    vstore(out + i, f(vload(a + i), vload(b + i), vload(c + i)));
  if (i < end) {
    const int64_t k = end - i;
    vstore_partial(out + i, f(vload_partial(a + i, k), vload_partial(b + i, k), vload_partial(c + i, k)), k);
  }
}

}  // namespace

void abs_tanh_forward(int64_t n, const float* x, float* y) {
  run_chunks(n, [&](int64_t b, int64_t e) { map1(b, e, x, y, [](V v) { return abs_tanh(v); }); });
}

void abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y, float* dx) {
  run_chunks(n, [&](int64_t b, int64_t e) {
    map3(b, e, dy, x, y, dx, [](V g, V xv, V yv) { return abs_tanh_grad(g, xv, yv); });
  });
}

void sigmoid_forward(int64_t n, const float* x, float* y) {
  run_chunks(n, [&](int64_t b, int64_t e) { map1(b, e, x, y, [](V v) { return sigmoid(v); }); });
}

void sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx) {
  run_chunks(n, [&](int64_t b, int64_t e) {
    map2(b, e, dy, y, dx, [](V g, V yv) { return sigmoid_grad(g, yv); });
  });
}
