// Fully connected layer, serial reference. x: [batch, in], w: [out, in], y: [batch, out].
#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace serial {

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b,
                    float* y) {
  parallel_for(s.batch, [&](int64_t begin, int64_t end, int) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t o = 0; o < s.out_features; ++o) {
        float acc = b ? b[o] : 0.0f;
        for (int64_t i = 0; i < s.in_features; ++i)
          acc += x[n * s.in_features + i] * w[o * s.in_features + i];
        y[n * s.out_features + o] = acc;
      }
  });
}

void linear_backward_input(const LinearShape& s, const float* dy, const float* w, float* dx) {
  parallel_for(s.batch, [&](int64_t begin, int64_t end, int) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t i = 0; i < s.in_features; ++i) {
        float acc = 0.0f;
        for (int64_t o = 0; o < s.out_features; ++o)
          acc += dy[n * s.out_features + o] * w[o * s.in_features + i];
        dx[n * s.in_features + i] = acc;
      }
  });
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw,
                            float* db) {
  parallel_for(s.out_features, [&](int64_t begin, int64_t end, int) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t i = 0; i < s.in_features; ++i) {
        float acc = 0.0f;
        for (int64_t n = 0; n < s.batch; ++n)
          acc += dy[n * s.out_features + o] * x[n * s.in_features + i];
        dw[o * s.in_features + i] = acc;
      }
      if (db) {
        float acc = 0.0f;
        for (int64_t n = 0; n < s.batch; ++n) acc += dy[n * s.out_features + o];
        db[o] = acc;
      }
    }
  });
}

}  // namespace serial
}  // namespace dcl
