// Fused |tanh| + max-pool 2d, serial reference.
//
// max over a window of |tanh(x)| = tanh(max over the window of |x|) (tanh is increasing on
// x >= 0), so the pool runs on |x| and tanh is evaluated once per output. The winner rule (every
// ISA follows it exactly): best = -1 with the window's first element as the winner; walk the
// window row by row and take an element when |x| > best (an ordered compare: NaN never takes
// over; ties keep the first). y = tanh(|x[winner]|) (NaN when every element is NaN).
// Backward: dx = 0 except dx[argmax] += dy * sign(x[argmax]) * (1 - y^2), sign(0) = 0, in output
// order (overlapping windows add up).
#include <cmath>
#include <cstring>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace serial {

void abs_tanh_max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.in_h * s.in_w;
  if (oh <= 0 || ow <= 0) return;
  parallel_for(s.batch * s.channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      const float* xp = x + p * plane;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          float best = -1.0f;
          int32_t best_index = static_cast<int32_t>((oy * s.stride_h) * s.in_w + ox * s.stride_w);
          for (int64_t ky = 0; ky < s.kernel_h; ++ky)
            for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
              const int64_t idx = (oy * s.stride_h + ky) * s.in_w + ox * s.stride_w + kx;
              const float a = std::fabs(xp[idx]);
              if (a > best) {
                best = a;
                best_index = static_cast<int32_t>(idx);
              }
            }
          y[p * oh * ow + oy * ow + ox] = std::tanh(std::fabs(xp[best_index]));
          argmax[p * oh * ow + oy * ow + ox] = best_index;
        }
    }
  });
}

void abs_tanh_max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax,
                                  const float* x, const float* y, float* dx) {
  const int64_t ohw = s.out_h() * s.out_w(), plane = s.in_h * s.in_w;
  parallel_for(s.batch * s.channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      float* dxp = dx + p * plane;
      const float* xp = x + p * plane;
      std::memset(dxp, 0, sizeof(float) * plane);
      for (int64_t i = 0; i < ohw; ++i) {
        const int32_t a = argmax[p * ohw + i];
        if (a < 0 || a >= plane) throw_argmax_out_of_range(p * ohw + i, a, plane);
        const float xv = xp[a], yv = y[p * ohw + i];
        const float sign = xv > 0.0f ? 1.0f : (xv < 0.0f ? -1.0f : 0.0f);
        dxp[a] += dy[p * ohw + i] * sign * (1.0f - yv * yv);
      }
    }
  });
}

}  // namespace serial
}  // namespace dcl
