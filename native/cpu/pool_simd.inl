// max-pool 2d on SIMD vectors: the algorithm shared by pool_avx2.cpp and pool_avx512.cpp. Not
// compiled on its own: each of those files first defines, in an anonymous namespace, the vector
// types V (float) / VI (int32) / M (lane mask), kLanes and the wrappers used below, then includes
// this file inside its own dcl::avx2 / dcl::avx512 namespace, so everything here is private to
// that ISA (nothing compiled with AVX-512 flags can be shared with the serial path).
//
// Forward. Lanes are consecutive outputs of one output row (or of R consecutive rows when a row
// is narrower than a vector). Each lane runs the rule of kernels.h step by step: best = -inf,
// winner = the window's first element; for each window element, row by row, take it when
// strictly greater (_CMP_GT_OQ: NaN never takes over, ties keep the first). y is the winner's
// value, i.e. best, except when nothing was taken (every element NaN or -inf): then it is the
// first element. The same compares in the same order as the serial kernel, so y and argmax are
// bit-identical to it.
//
// - 2x2 windows with stride 2 (the DCL-S layers): a vector pair covers 2*kLanes floats of a top
//   row; de-interleaving it gives the windows' left and right columns, the same for the bottom
//   row, and three compare+blends give value and winner code (0, 1, W, W + 1). Rows of exactly
//   kLanes / 2 or kLanes / 4 outputs (16x16 and 8x8 planes with AVX-512, 8x8 and 4x4 with AVX2)
//   are packed R = 2 or 4 output rows per vector instead of leaving lanes idle.
// - any other window and stride: one load (stride 1) or gather (stride > 1) per window element.
//
// Backward. dx is zeroed with vector stores, then dy is scatter-added at argmax in the serial
// kernel's order (so overlapping windows sum in the same order and the results are identical),
// one (n, c) plane per task: planes never share dx, so no atomics are needed. The scatter stays
// scalar: it works on a plane that is still in L1 after the zeroing, and the kernel is bound by
// the memory traffic of writing dx, which a vector scatter would not reduce (on [64,32,64,64] it
// runs at the speed of the serial memset + scatter; only streaming stores, which bypass the cache
// the next layer reads from, could go faster).

namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Below this many input elements the pool's wake-up costs more than the work.
constexpr int64_t kSerialBelow = 16384;

// The 2x2 / stride-2 rule on four de-interleaved vectors: e0/o0 the even/odd columns of the top
// row, e1/o1 of the bottom row, all in the same lane order. Returns the value and the winner's
// offset inside its window (0, 1, W or W + 1).
inline void reduce_2x2(V e0, V o0, V e1, V o1, VI code_w, VI code_w1, V& y, VI& code) {
  const V ninf = vset1(-__builtin_inff());
  // Start: best = -inf, winner = offset 0; e0 is taken when e0 > -inf.
  V best = vselect(vgt(e0, ninf), e0, ninf);
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
  // Nothing taken (best still -inf): the winner is the first element, and so is y.
  y = vselect(veq(best, ninf), e0, best);
}

// Output row oy of a 2x2 / stride-2 pool over one plane: outputs [0, ow), then a masked tail.
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
    // count < kLanes outputs need 2 * count floats of each row: masked loads read only those.
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

// Output rows oy0 .. oy0 + R - 1 of a 2x2 / stride-2 pool whose rows have ow = kLanes / R outputs,
// in one vector (R = 2 or 4). The R top rows' first 2 * ow floats are gathered into the pair of
// vectors with plain loads (each row part is a whole vector for R = 2, a half for R = 4), so the
// de-interleave and the rule are the same as for a wide row. lane_base holds each lane's window
// origin relative to row 2 * oy0: 2W * (lane / ow) + 2 * (lane % ow).
template <int R>
inline void pool_2x2_rows(const float* x, int64_t w, int64_t oy0, VI lane_base, float* y, int32_t* am) {
  const float* top = x + 2 * oy0 * w;
  const float* bottom = top + w;
  const int64_t rs = 2 * w;  // from one output row's top input row to the next one's
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

// Output row oy for any window and stride. Lanes are outputs ox .. ox + kLanes - 1; each window
// element is one vector: a load when stride_w is 1 (the lanes' elements are contiguous), a gather
// otherwise. The last partial vector masks its loads, gathers and stores.
inline void pool_general_row(const Pool2dShape& s, const float* x, int64_t oy, int64_t ow, float* y,
                             int32_t* am) {
  const int64_t w = s.in_w, sw = s.stride_w;
  const V ninf = vset1(-__builtin_inff());
  const VI lane_offset = imul(lane_index(), iset1(static_cast<int32_t>(sw)));  // lane * sw
  for (int64_t ox = 0; ox < ow; ox += kLanes) {
    const int64_t count = min64(kLanes, ow - ox);
    const bool full = count == kLanes;
    const int64_t origin = oy * s.stride_h * w + ox * sw;  // window origin of lane 0
    auto element = [&](int64_t offset) {                 // window element `offset` of each lane
      const float* p = x + origin + offset;
      if (sw == 1) return full ? vload(p) : vload_partial(p, count);
      return full ? vgather(p, lane_offset) : vgather_partial(p, lane_offset, count);
    };
    const V first = element(0);
    V best = vselect(vgt(first, ninf), first, ninf);
    VI winner = iset1(static_cast<int32_t>(origin));
    for (int64_t ky = 0; ky < s.kernel_h; ++ky)
      for (int64_t kx = ky == 0 ? 1 : 0; kx < s.kernel_w; ++kx) {
        const int64_t offset = ky * w + kx;
        const V v = element(offset);
        const M m = vgt(v, best);
        best = vselect(m, v, best);
        winner = iselect(m, iset1(static_cast<int32_t>(origin + offset)), winner);
      }
    const V value = vselect(veq(best, ninf), first, best);
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

// Zeroes n floats. A function of its own so that n is a local: the vector stores may alias
// anything, and inside the lambda the bound would be reloaded through its capture every store.
inline void zero_floats(float* p, int64_t n) {
  const V zero = vset1(0.0f);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(p + i, zero);
  if (i < n) vstore_partial(p + i, zero, n - i);
}

// dx[argmax[j]] += dy[j], j in order (the serial kernel's summation order). An index outside
// the plane would write outside dx: returns the first such j, or -1.
inline int64_t scatter_add(const float* dy, const int32_t* argmax, int64_t n, int64_t plane, float* dx) {
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t a = static_cast<uint32_t>(argmax[j]);
    if (a >= static_cast<uint64_t>(plane)) return j;
    dx[a] += dy[j];
  }
  return -1;
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.in_h * s.in_w, planes = s.batch * s.channels;
  if (planes <= 0 || oh <= 0 || ow <= 0) return;
  const bool k2s2 = s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2;
  // Rows packed per vector for narrow 2x2 / stride-2 rows; 1 otherwise.
  const int rows = !k2s2 ? 1 : (ow * 2 == kLanes ? 2 : (ow * 4 == kLanes ? 4 : 1));
  alignas(64) int32_t base[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) base[l] = static_cast<int32_t>(rows == 1 ? 0 : 2 * s.in_w * (l / ow) + 2 * (l % ow));
  const VI lane_base = iload(base);
  // Work units: groups of `rows` output rows of one plane (a last, shorter group goes row by row).
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

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t ohw = s.out_h() * s.out_w(), plane = s.in_h * s.in_w, planes = s.batch * s.channels;
  if (planes <= 0) return;
  auto body = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      // The plane (16 KiB for 64x64) stays in L1 between the zeroing and the scatter.
      zero_floats(dx + p * plane, plane);
      const int64_t bad = scatter_add(dy + p * ohw, argmax + p * ohw, ohw, plane, dx + p * plane);
      if (bad >= 0) throw_argmax_out_of_range(p * ohw + bad, argmax[p * ohw + bad], plane);
    }
  };
  if (planes * plane < kSerialBelow)
    body(0, planes, 0);
  else
    parallel_for(planes, body);
}
