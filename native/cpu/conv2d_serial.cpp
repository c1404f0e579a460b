// conv2d, serial reference: the direct definition, one output (or one gradient) at a time. The
// SIMD variants are checked against this and against the float64 TypeScript reference.
#include <string>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {

namespace {
constexpr float kPreparedTag = 20547.0f;  // "DP", an integer a float holds exactly

void prepared_header(const Conv2dShape& s, PreparedLayout layout, int lanes, float* h) {
  for (int64_t i = 0; i < kConv2dPreparedHeader; ++i) h[i] = 0.0f;
  h[0] = kPreparedTag;
  h[1] = static_cast<float>(static_cast<int>(layout));
  h[2] = static_cast<float>(lanes);
  const int64_t dims[8] = {s.in_channels, s.out_channels, s.kernel_h, s.kernel_w,
                           s.stride_h, s.stride_w, s.pad_h, s.pad_w};
  for (int i = 0; i < 8; ++i) h[3 + i] = static_cast<float>(dims[i]);
}

const char* layout_name(int layout) {
  switch (layout) {
    case 0: return "a copy of the weights (serial)";
    case 1: return "a packed panel (direct convolution)";
    case 2: return "a Winograd transform";
    default: return "an unknown layout";
  }
}
}  // namespace

void write_prepared_header(const Conv2dShape& s, PreparedLayout layout, int lanes, float* prepared) {
  prepared_header(s, layout, lanes, prepared);
}

void check_prepared_header(const Conv2dShape& s, PreparedLayout layout, int lanes, const float* prepared) {
  float want[kConv2dPreparedHeader];
  prepared_header(s, layout, lanes, want);
  for (int64_t i = 0; i < kConv2dPreparedHeader; ++i) {
    if (prepared[i] == want[i]) continue;
    if (prepared[0] != kPreparedTag)
      throw Error("E_ARG", "Expected prepared conv weights (from conv2dPrepare) for prepared but received other data");
    if (prepared[1] != want[1] || prepared[2] != want[2])
      throw Error("E_ARG", std::string("Expected prepared conv weights in the layout this ISA and conv algorithm use (") +
                               layout_name(static_cast<int>(want[1])) + ", " + std::to_string(lanes) +
                               " lanes) but received " + layout_name(static_cast<int>(prepared[1])) + ", " +
                               std::to_string(static_cast<int>(prepared[2])) +
                               " lanes: prepare them again after changing the ISA or the conv algorithm");
    throw Error("E_ARG", "Expected prepared conv weights for this layer's channels, kernel, stride and padding but received weights prepared for another layer");
  }
}

namespace serial {

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                    float* y) {
  const int64_t oh = s.out_h(), ow = s.out_w();
  parallel_for(s.batch * s.out_channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t nc = begin; nc < end; ++nc) {
      const int64_t n = nc / s.out_channels, co = nc % s.out_channels;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          float acc = b ? b[co] : 0.0f;
          for (int64_t ci = 0; ci < s.in_channels; ++ci)
            for (int64_t ky = 0; ky < s.kernel_h; ++ky) {
              const int64_t iy = oy * s.stride_h + ky - s.pad_h;
              if (iy < 0 || iy >= s.in_h) continue;
              for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
                const int64_t ix = ox * s.stride_w + kx - s.pad_w;
                if (ix < 0 || ix >= s.in_w) continue;
                acc += x[((n * s.in_channels + ci) * s.in_h + iy) * s.in_w + ix] *
                       w[((co * s.in_channels + ci) * s.kernel_h + ky) * s.kernel_w + kx];
              }
            }
          y[((n * s.out_channels + co) * oh + oy) * ow + ox] = acc;
        }
    }
  });
}

void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t oh = s.out_h(), ow = s.out_w();
  // Gather form: each input position sums the outputs whose window covers it, so threads never
  // write to the same element.
  parallel_for(s.batch * s.in_channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t nc = begin; nc < end; ++nc) {
      const int64_t n = nc / s.in_channels, ci = nc % s.in_channels;
      for (int64_t iy = 0; iy < s.in_h; ++iy)
        for (int64_t ix = 0; ix < s.in_w; ++ix) {
          float acc = 0.0f;
          for (int64_t ky = 0; ky < s.kernel_h; ++ky) {
            const int64_t ty = iy + s.pad_h - ky;
            if (ty < 0 || ty % s.stride_h != 0) continue;
            const int64_t oy = ty / s.stride_h;
            if (oy >= oh) continue;
            for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
              const int64_t tx = ix + s.pad_w - kx;
              if (tx < 0 || tx % s.stride_w != 0) continue;
              const int64_t ox = tx / s.stride_w;
              if (ox >= ow) continue;
              for (int64_t co = 0; co < s.out_channels; ++co)
                acc += dy[((n * s.out_channels + co) * oh + oy) * ow + ox] *
                       w[((co * s.in_channels + ci) * s.kernel_h + ky) * s.kernel_w + kx];
            }
          }
          dx[((n * s.in_channels + ci) * s.in_h + iy) * s.in_w + ix] = acc;
        }
    }
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* db) {
  const int64_t oh = s.out_h(), ow = s.out_w();
  parallel_for(s.out_channels, [&](int64_t begin, int64_t end, int) {
    for (int64_t co = begin; co < end; ++co) {
      for (int64_t ci = 0; ci < s.in_channels; ++ci)
        for (int64_t ky = 0; ky < s.kernel_h; ++ky)
          for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
            float acc = 0.0f;
            for (int64_t n = 0; n < s.batch; ++n)
              for (int64_t oy = 0; oy < oh; ++oy) {
                const int64_t iy = oy * s.stride_h + ky - s.pad_h;
                if (iy < 0 || iy >= s.in_h) continue;
                for (int64_t ox = 0; ox < ow; ++ox) {
                  const int64_t ix = ox * s.stride_w + kx - s.pad_w;
                  if (ix < 0 || ix >= s.in_w) continue;
                  acc += x[((n * s.in_channels + ci) * s.in_h + iy) * s.in_w + ix] *
                         dy[((n * s.out_channels + co) * oh + oy) * ow + ox];
                }
              }
            dw[((co * s.in_channels + ci) * s.kernel_h + ky) * s.kernel_w + kx] = acc;
          }
      if (db) {
        float acc = 0.0f;
        for (int64_t n = 0; n < s.batch; ++n)
          for (int64_t i = 0; i < oh * ow; ++i) acc += dy[(n * s.out_channels + co) * oh * ow + i];
        db[co] = acc;
      }
    }
  });
}

// Serial runs the direct definition on the weights as they are: the prepared form is a copy.
int64_t conv2d_prepared_floats(const Conv2dShape& s) {
  return kConv2dPreparedHeader + s.out_channels * s.in_channels * s.kernel_h * s.kernel_w;
}

void conv2d_prepare(const Conv2dShape& s, const float* w, float* prepared) {
  write_prepared_header(s, PreparedLayout::raw, 1, prepared);
  const int64_t n = s.out_channels * s.in_channels * s.kernel_h * s.kernel_w;
  for (int64_t i = 0; i < n; ++i) prepared[kConv2dPreparedHeader + i] = w[i];
}

void conv2d_forward_prepared(const Conv2dShape& s, const float* x, const float* prepared,
                             const float* b, float* y) {
  check_prepared_header(s, PreparedLayout::raw, 1, prepared);
  conv2d_forward(s, x, prepared + kConv2dPreparedHeader, b, y);
}

}  // namespace serial
}  // namespace dcl
