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

// ---- exp(-a) for a >= 0 (or NaN) ------------------------------------------------------------
//
// exp(-a) = 2^n * exp(r), n = round(-a / ln2), r = -a - n ln2 in [-ln2/2, ln2/2].
//
// Range reduction (Cody-Waite): ln2 is split into kLn2Hi, which has only 9 significant bits so
// that n * kLn2Hi is exact for |n| <= 2^15 and -a - n * kLn2Hi is exact (the two are close), and
// kLn2Lo = ln2 - kLn2Hi, whose product with n is the only rounded step (error <= 2^-26 in r, i.e.
// 1.5e-8 relative in the result).
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
// Beyond this exp(-a) < 2^-150, which rounds to 0 in float32 (half the smallest denormal is
// 2^-150). Clamping there keeps n within [-150, 0], which vscale2 handles (denormals included).
constexpr float kExpNegMax = 104.0f;
// exp(r) = 1 + r + r^2 Q(r), Q of degree 4 (exp of degree 6 in all), fitted to minimise the
// maximum relative error of exp on [-ln2/2, ln2/2] (weighted least squares iterated towards
// minimax). Its error is 3.1e-9 (0.05 ulp), so the float32 evaluation dominates. Degree 3 would
// leave 1.0e-7 (1.7 ulp) from the polynomial alone: too close to the sigmoid budget.
constexpr float kExpQ0 = 0.49999994f;
constexpr float kExpQ1 = 0.16666521f;
constexpr float kExpQ2 = 0.04166839f;
constexpr float kExpQ3 = 0.00836871f;
constexpr float kExpQ4 = 0.0013814613f;

inline V exp_neg(V a) {
  // vmin_keep_nan(c, a) returns a when a is NaN, so NaN flows through to the result.
  const V x = vneg(vmin_keep_nan(vset1(kExpNegMax), a));
  const V n = vround(vmul(x, vset1(kLog2e)));
  V r = vfmadd(n, vset1(-kLn2Hi), x);
  r = vfmadd(n, vset1(-kLn2Lo), r);
  V q = vfmadd(vset1(kExpQ4), r, vset1(kExpQ3));
  q = vfmadd(q, r, vset1(kExpQ2));
  q = vfmadd(q, r, vset1(kExpQ1));
  q = vfmadd(q, r, vset1(kExpQ0));
  const V p = vadd(vfmadd(vmul(r, r), q, r), vset1(1.0f));
  return vscale2(p, n);
}

// ---- |tanh(x)| --------------------------------------------------------------------------------
//
// With a = |x|:
// - a < kTanhSmall: tanh(a) = a + a z P(z), z = a^2. Keeps full relative accuracy down to the
//   denormals (where a z P underflows and the result is a, which is exact: tanh(a) = a to float
//   precision for a < 2^-12). P has degree 4, fitted like Q above for the relative error of tanh
//   on [0, 0.625]: 4.4e-9; degree 3 would give 1.2e-7 (2 ulp) before rounding.
// - otherwise: tanh(a) = (1 - E) / (1 + E), E = exp(-2a) <= exp(-1.25) = 0.29, so 1 - E does not
//   cancel and the error stays about 1.5 ulp of the result. E never overflows, and once E is
//   below 2^-25 (a > 8.67) both 1 - E and 1 + E round to 1, so the result is exactly 1.
// Both branches are computed for every lane and blended: on real activations the lanes mix both
// ranges, and a data-dependent branch would mispredict more than the few extra FMAs cost.
constexpr float kTanhSmall = 0.625f;
constexpr float kTanhP0 = -0.3333328f;
constexpr float kTanhP1 = 0.13331442f;
constexpr float kTanhP2 = -0.053739715f;
constexpr float kTanhP3 = 0.020639086f;
constexpr float kTanhP4 = -0.005704987f;

inline V abs_tanh(V x) {
  const V a = vabs(x);
  const V z = vmul(a, a);
  V p = vfmadd(vset1(kTanhP4), z, vset1(kTanhP3));
  p = vfmadd(p, z, vset1(kTanhP2));
  p = vfmadd(p, z, vset1(kTanhP1));
  p = vfmadd(p, z, vset1(kTanhP0));
  const V small = vfmadd(vmul(a, z), p, a);
  const V e = exp_neg(vadd(a, a));
  const V one = vset1(1.0f);
  const V large = vdiv(vsub(one, e), vadd(one, e));
  // Ordered compare: NaN takes the large branch, which carries the NaN through.
  return vselect(vlt(a, vset1(kTanhSmall)), small, large);
}

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
