// PLACEHOLDER: forwards to the serial kernels until the avx2 activation kernels land.
#include "ops.h"
namespace dcl {
namespace avx2 {
void abs_tanh_forward(int64_t n, const float* x, float* y) { serial::abs_tanh_forward(n, x, y); }
void abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y, float* dx) { serial::abs_tanh_backward(n, dy, x, y, dx); }
void sigmoid_forward(int64_t n, const float* x, float* y) { serial::sigmoid_forward(n, x, y); }
void sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx) { serial::sigmoid_backward(n, dy, y, dx); }
}  // namespace avx2
}  // namespace dcl
