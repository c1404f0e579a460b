// max-pool 2d, serial reference.
#include <cstring>
#include <string>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {

void throw_argmax_out_of_range(int64_t index, int64_t value, int64_t plane) {
  throw Error("E_ARG", "Expected argmax values in [0, " + std::to_string(plane) + ") for argmax but received " +
                           std::to_string(value) + " at index " + std::to_string(index));
}

namespace serial {

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.in_h * s.in_w;
  parallel_for(s.batch * s.channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      const float* xp = x + p * plane;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          // The rule every ISA follows exactly: start from -inf with the window's first
          // element as the winner, walk the window row by row, and take an element only when it
          // is strictly greater (an ordered compare, so NaN never takes over). Ties keep the
          // first maximum.
          float best = -__builtin_inff();
          int32_t best_index = static_cast<int32_t>((oy * s.stride_h) * s.in_w + ox * s.stride_w);
          for (int64_t ky = 0; ky < s.kernel_h; ++ky)
            for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
              const int64_t idx = (oy * s.stride_h + ky) * s.in_w + ox * s.stride_w + kx;
              if (xp[idx] > best) {
                best = xp[idx];
                best_index = static_cast<int32_t>(idx);
              }
            }
          y[p * oh * ow + oy * ow + ox] = xp[best_index];
          argmax[p * oh * ow + oy * ow + ox] = best_index;
        }
    }
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax,
                         float* dx) {
  const int64_t ohw = s.out_h() * s.out_w(), plane = s.in_h * s.in_w;
  parallel_for(s.batch * s.channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      float* dxp = dx + p * plane;
      std::memset(dxp, 0, sizeof(float) * plane);
      for (int64_t i = 0; i < ohw; ++i) {
        const int32_t a = argmax[p * ohw + i];
        if (a < 0 || a >= plane) throw_argmax_out_of_range(p * ohw + i, a, plane);
        dxp[a] += dy[p * ohw + i];
      }
    }
  });
}

}  // namespace serial
}  // namespace dcl
