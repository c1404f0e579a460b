// Fused |tanh| + max-pool 2d on SIMD vectors: the algorithm shared by tanh_pool_avx2.cpp and
// tanh_pool_avx512.cpp. Not compiled on its own: each of those files defines, in an anonymous
// namespace, V / VI / M, kLanes and the wrappers used below, then includes this file inside its
// own dcl::avx2 / dcl::avx512 namespace (internal linkage: nothing is shared across ISAs).
//
// Forward: the max-pool of pool_simd.inl run on |x| with the rule of tanh_pool_serial.cpp
// (best = -1, winner = the window's first element; take an element when |x| > best, ordered
// compare, row by row), then the vector tanh of tanh_math.inl (shared with activation_simd.inl) on the pooled
// values only. argmax is bit-identical to the serial kernel; y is within the vector tanh's error
// (<= 9e-8 absolute) of the serial libm value.
// - 2x2 windows with stride 2 (the DCL-S layers): de-interleaved row pairs, as pool_simd.inl;
//   rows of exactly kLanes / 2 or kLanes / 4 outputs are packed 2 or 4 output rows per vector.
// - any other window and stride: one load (stride 1) or gather (stride > 1) per window element.
// Backward, one (n, c) plane per task (planes never share dx): for 2x2 / stride 2 on rows of at
// least kLanes outputs, each output writes its whole window at once (backward_2x2_plane);
// otherwise (or when an argmax index is not inside its own window) dx is zeroed with vector
// stores and dy * sign(x) * (1 - y^2) is scatter-added at argmax in output order.

namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Below this many input elements the pool's wake-up costs more than the work.
constexpr int64_t kSerialBelow = 16384;

// ---- tanh(a) for a >= 0 (or NaN) -----------------------------------------------------------
#include "tanh_math.inl"

// The 2x2 / stride-2 rule on four de-interleaved vectors of |x|: e0/o0 the even/odd columns of
// the top row, e1/o1 of the bottom row. Returns y = tanh(|winner|) and the winner's offset in
// its window (0, 1, W or W + 1).
inline void reduce_2x2(V e0, V o0, V e1, V o1, VI code_w, VI code_w1, V& y, VI& code) {
  const V start = vset1(-1.0f);
  e0 = vabs(e0);
  o0 = vabs(o0);
  e1 = vabs(e1);
  o1 = vabs(o1);
  V best = vselect(vgt(e0, start), e0, start);
  code = iset1(0);
  M m = vgt(o0, best);
  best = vselect(m, o0, best);
  code = iselect(m, iset1(1), code);
  m = vgt(e1, best);
  best = vselect(m, e1, best);
  code = iselect(m, code_w, code);
  m = vgt(o1, best);
  best = vselect(m, o1, best);
  code = iselect(m, code_w1, code);
  // Nothing taken (every element NaN): the winner is the first element, y = tanh(NaN) = NaN.
  y = tanh_nonneg(vselect(veq(best, start), e0, best));
}

inline void pool_2x2_row(const float* x, int64_t w, int64_t oy, int64_t ow, float* y, int32_t* am) {
  const float* top = x + 2 * oy * w;
  const float* bottom = top + w;
  const VI lane2 = iadd(lane_index(), lane_index());
  const VI code_w = iset1(static_cast<int32_t>(w)), code_w1 = iset1(static_cast<int32_t>(w + 1));
  const int32_t row_index = static_cast<int32_t>(2 * oy * w);
  int64_t ox = 0;
  for (; ox + kLanes <= ow; ox += kLanes) {
    V e0, o0, e1, o1, v;
    VI code;
    deinterleave(vload(top + 2 * ox), vload(top + 2 * ox + kLanes), e0, o0);
    deinterleave(vload(bottom + 2 * ox), vload(bottom + 2 * ox + kLanes), e1, o1);
    reduce_2x2(e0, o0, e1, o1, code_w, code_w1, v, code);
    vstore(y + ox, to_output_order(v));
    const VI base = iadd(lane2, iset1(row_index + static_cast<int32_t>(2 * ox)));
    istore(am + ox, iadd(to_output_order(code), base));
  }
  if (ox < ow) {
    const int64_t count = ow - ox, n = 2 * count;
    V e0, o0, e1, o1, v;
    VI code;
    deinterleave(vload_partial(top + 2 * ox, n), vload_partial(top + 2 * ox + kLanes, n - kLanes), e0, o0);
    deinterleave(vload_partial(bottom + 2 * ox, n), vload_partial(bottom + 2 * ox + kLanes, n - kLanes), e1, o1);
    reduce_2x2(e0, o0, e1, o1, code_w, code_w1, v, code);
    vstore_partial(y + ox, to_output_order(v), count);
    const VI base = iadd(lane2, iset1(row_index + static_cast<int32_t>(2 * ox)));
    istore_partial(am + ox, iadd(to_output_order(code), base), count);
  }
}

// R = 2 or 4 output rows of ow = kLanes / R outputs in one vector (see pool_simd.inl).
template <int R>
inline void pool_2x2_rows(const float* x, int64_t w, int64_t oy0, VI lane_base, float* y, int32_t* am) {
  const float* top = x + 2 * oy0 * w;
  const float* bottom = top + w;
  const int64_t rs = 2 * w;
  const VI code_w = iset1(static_cast<int32_t>(w)), code_w1 = iset1(static_cast<int32_t>(w + 1));
  V e0, o0, e1, o1, v;
  VI code;
  if (R == 2) {
    deinterleave(vload(top), vload(top + rs), e0, o0);
    deinterleave(vload(bottom), vload(bottom + rs), e1, o1);
  } else {
    deinterleave(vload_halves(top, top + rs), vload_halves(top + 2 * rs, top + 3 * rs), e0, o0);
    deinterleave(vload_halves(bottom, bottom + rs), vload_halves(bottom + 2 * rs, bottom + 3 * rs), e1, o1);
  }
  reduce_2x2(e0, o0, e1, o1, code_w, code_w1, v, code);
  vstore(y, to_output_order(v));
  istore(am, iadd(to_output_order(code), iadd(lane_base, iset1(static_cast<int32_t>(2 * oy0 * w)))));
}

inline void pool_general_row(const Pool2dShape& s, const float* x, int64_t oy, int64_t ow, float* y,
                             int32_t* am) {
  const int64_t w = s.in_w, sw = s.stride_w;
  const V start = vset1(-1.0f);
  const VI lane_offset = imul(lane_index(), iset1(static_cast<int32_t>(sw)));
  for (int64_t ox = 0; ox < ow; ox += kLanes) {
    const int64_t count = min64(kLanes, ow - ox);
    const bool full = count == kLanes;
    const int64_t origin = oy * s.stride_h * w + ox * sw;
    auto element = [&](int64_t offset) {
      const float* p = x + origin + offset;
      if (sw == 1) return vabs(full ? vload(p) : vload_partial(p, count));
      return vabs(full ? vgather(p, lane_offset) : vgather_partial(p, lane_offset, count));
    };
    const V first = element(0);
    V best = vselect(vgt(first, start), first, start);
    VI winner = iset1(static_cast<int32_t>(origin));
    for (int64_t ky = 0; ky < s.kernel_h; ++ky)
      for (int64_t kx = ky == 0 ? 1 : 0; kx < s.kernel_w; ++kx) {
        const int64_t offset = ky * w + kx;
        const V v = element(offset);
        const M m = vgt(v, best);
        best = vselect(m, v, best);
        winner = iselect(m, iset1(static_cast<int32_t>(origin + offset)), winner);
      }
    const V value = tanh_nonneg(vselect(veq(best, start), first, best));
    const VI index = iadd(winner, lane_offset);
    if (full) {
      vstore(y + ox, value);
      istore(am + ox, index);
    } else {
      vstore_partial(y + ox, value, count);
      istore_partial(am + ox, index, count);
    }
  }
}

inline void zero_floats(float* p, int64_t n) {
  const V zero = vset1(0.0f);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(p + i, zero);
  if (i < n) vstore_partial(p + i, zero, n - i);
}

// dx[argmax[j]] += dy[j] * sign(x[argmax[j]]) * (1 - y[j]^2), j in order. Returns the first j
// whose index falls outside the plane, or -1.
inline int64_t scatter_grad(const float* dy, const int32_t* argmax, const float* x, const float* y,
                            int64_t n, int64_t plane, float* dx) {
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t a = static_cast<uint32_t>(argmax[j]);
    if (a >= static_cast<uint64_t>(plane)) return j;
    const float xv = x[a], yv = y[j];
    const float sign = xv > 0.0f ? 1.0f : (xv < 0.0f ? -1.0f : 0.0f);
    dx[a] += dy[j] * sign * (1.0f - yv * yv);
  }
  return -1;
}

// 2x2 / stride-2 backward of one plane without the zero-then-scatter: each output writes its
// whole window (the gradient at the winner, +0 elsewhere) with vector stores, and the windows tile
// the plane. dy * sign(x) * (1 - y^2) + 0 (so a -0 comes out +0, as 0 + t does in the serial
// kernel). Returns false, having possibly written part of the plane, when an argmax index lies
// outside its own window (a legal index elsewhere in the plane, or an illegal one): the caller
// then redoes the plane with the general scatter, which adds and range-checks.
inline bool backward_2x2_plane(const float* dy, const int32_t* am, const float* x, const float* y,
                               int64_t h, int64_t w, int64_t oh, int64_t ow, float* dx) {
  // An odd height or width leaves a row or column outside every window: zero those first.
  if ((h & 1) || (w & 1)) zero_floats(dx, h * w);
  const V zero = vset1(0.0f), one = vset1(1.0f), minus_one = vset1(-1.0f);
  const VI lane2 = iadd(lane_index(), lane_index());
  const VI c1 = iset1(1), cw = iset1(static_cast<int32_t>(w)), cw1 = iset1(static_cast<int32_t>(w + 1));
  const VI c0 = iset1(0);
  for (int64_t oy = 0; oy < oh; ++oy) {
    float* top = dx + 2 * oy * w;
    float* bottom = top + w;
    for (int64_t ox = 0; ox < ow; ox += kLanes) {
      const int64_t count = min64(kLanes, ow - ox);
      const bool full = count == kLanes;
      const int64_t o = oy * ow + ox;
      const VI a = full ? iload(am + o) : iload_partial(am + o, count);
      const VI code = isub(a, iadd(lane2, iset1(static_cast<int32_t>(2 * oy * w + 2 * ox))));
      const M m0 = ieq(code, c0), m1 = ieq(code, c1), mw = ieq(code, cw), mw1 = ieq(code, cw1);
      if (!mall(mor(mor(m0, m1), mor(mw, mw1)), count)) return false;
      const V d = full ? vload(dy + o) : vload_partial(dy + o, count);
      const V yv = full ? vload(y + o) : vload_partial(y + o, count);
      // x at the winner: the window's four columns (as the forward reads them), selected by code.
      const float* xt = x + 2 * oy * w + 2 * ox;
      const float* xb = xt + w;
      V e0, o0, e1, o1;
      if (full) {
        deinterleave(vload(xt), vload(xt + kLanes), e0, o0);
        deinterleave(vload(xb), vload(xb + kLanes), e1, o1);
      } else {
        deinterleave(vload_partial(xt, 2 * count), vload_partial(xt + kLanes, 2 * count - kLanes), e0, o0);
        deinterleave(vload_partial(xb, 2 * count), vload_partial(xb + kLanes, 2 * count - kLanes), e1, o1);
      }
      const V xv = vselect(m0, to_output_order(e0),
                           vselect(m1, to_output_order(o0), vselect(mw, to_output_order(e1), to_output_order(o1))));
      const V sign = vselect(vgt(xv, zero), one, vselect(vlt(xv, zero), minus_one, zero));
      const V g = vadd(vmul(vmul(d, sign), vsub(one, vmul(yv, yv))), zero);
      V lo, hi;
      interleave(vselect(m0, g, zero), vselect(m1, g, zero), lo, hi);
      if (full) {
        vstore(top + 2 * ox, lo);
        vstore(top + 2 * ox + kLanes, hi);
      } else {
        vstore_partial(top + 2 * ox, lo, 2 * count);
        vstore_partial(top + 2 * ox + kLanes, hi, 2 * count - kLanes);
      }
      interleave(vselect(mw, g, zero), vselect(mw1, g, zero), lo, hi);
      if (full) {
        vstore(bottom + 2 * ox, lo);
        vstore(bottom + 2 * ox + kLanes, hi);
      } else {
        vstore_partial(bottom + 2 * ox, lo, 2 * count);
        vstore_partial(bottom + 2 * ox + kLanes, hi, 2 * count - kLanes);
      }
    }
  }
  return true;
}

}  // namespace

void abs_tanh_max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.in_h * s.in_w, planes = s.batch * s.channels;
  if (planes <= 0 || oh <= 0 || ow <= 0) return;
  const bool k2s2 = s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2;
  const int rows = !k2s2 ? 1 : (ow * 2 == kLanes ? 2 : (ow * 4 == kLanes ? 4 : 1));
  alignas(64) int32_t base[kLanes];
  for (int64_t l = 0; l < kLanes; ++l)
    base[l] = static_cast<int32_t>(rows == 1 ? 0 : 2 * s.in_w * (l / ow) + 2 * (l % ow));
  const VI lane_base = iload(base);
  const int64_t groups = (oh + rows - 1) / rows, units = planes * groups;
  auto body = [&](int64_t u0, int64_t u1, int) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t p = u / groups, oy0 = (u % groups) * rows;
      const float* xp = x + p * plane;
      float* yp = y + p * oh * ow;
      int32_t* ap = argmax + p * oh * ow;
      if (rows > 1 && oy0 + rows <= oh) {
        if (rows == 2)
          pool_2x2_rows<2>(xp, s.in_w, oy0, lane_base, yp + oy0 * ow, ap + oy0 * ow);
        else
          pool_2x2_rows<4>(xp, s.in_w, oy0, lane_base, yp + oy0 * ow, ap + oy0 * ow);
        continue;
      }
      for (int64_t oy = oy0; oy < min64(oy0 + rows, oh); ++oy) {
        if (k2s2)
          pool_2x2_row(xp, s.in_w, oy, ow, yp + oy * ow, ap + oy * ow);
        else
          pool_general_row(s, xp, oy, ow, yp + oy * ow, ap + oy * ow);
      }
    }
  };
  if (planes * plane < kSerialBelow)
    body(0, units, 0);
  else
    parallel_for(units, body);
}

void abs_tanh_max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax,
                                  const float* x, const float* y, float* dx) {
  const int64_t oh = s.out_h(), ow = s.out_w(), ohw = oh * ow, plane = s.in_h * s.in_w,
                planes = s.batch * s.channels;
  if (planes <= 0 || ohw <= 0) return;
  // The window-writing path needs rows of at least one whole vector: on narrower rows every store
  // would be a masked one (microcoded and slow on AMD for AVX2), and the zero + scatter is faster.
  const bool k2s2 = s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 && ow >= kLanes;
  auto body = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      if (k2s2 && backward_2x2_plane(dy + p * ohw, argmax + p * ohw, x + p * plane, y + p * ohw, s.in_h,
                                     s.in_w, oh, ow, dx + p * plane))
        continue;
      zero_floats(dx + p * plane, plane);
      const int64_t bad = scatter_grad(dy + p * ohw, argmax + p * ohw, x + p * plane, y + p * ohw, ohw,
                                       plane, dx + p * plane);
      if (bad >= 0) throw_argmax_out_of_range(p * ohw + bad, argmax[p * ohw + bad], plane);
    }
  };
  if (planes * plane < kSerialBelow)
    body(0, planes, 0);
  else
    parallel_for(planes, body);
}
