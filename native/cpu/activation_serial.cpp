// |tanh| and sigmoid, serial reference (libm).
#include <cmath>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace serial {

void abs_tanh_forward(int64_t n, const float* x, float* y) {
  parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) y[i] = std::fabs(std::tanh(x[i]));
  });
}

void abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y, float* dx) {
  parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const float sign = x[i] > 0.0f ? 1.0f : (x[i] < 0.0f ? -1.0f : 0.0f);
      dx[i] = dy[i] * sign * (1.0f - y[i] * y[i]);
    }
  });
}

void sigmoid_forward(int64_t n, const float* x, float* y) {
  parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
  });
}

void sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx) {
  parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
  });
}

}  // namespace serial
}  // namespace dcl
