// exp(-a) and tanh(a) for a >= 0 on SIMD vectors, shared by activation_simd.inl (|tanh|, sigmoid)
// and tanh_pool_simd.inl (the fused |tanh| + max-pool). Included inside an ISA file's anonymous
// namespace after its vector wrappers (V, vset1, vadd, vsub, vmul, vdiv, vfmadd, vneg, vround,
// vmin_keep_nan, vscale2, vlt, vselect), so each ISA compiles its own internal copy.

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

// a >= 0 (or NaN): tanh(a). |tanh(x)| is tanh_nonneg(|x|).
inline V tanh_nonneg(V a) {
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
