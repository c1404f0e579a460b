// PLACEHOLDER: forwards to the serial kernels until the avx512 max-pool kernel lands.
#include "ops.h"
namespace dcl {
namespace avx512 {
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) { serial::max_pool2d_forward(s, x, y, argmax); }
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) { serial::max_pool2d_backward(s, dy, argmax, dx); }
}  // namespace avx512
}  // namespace dcl
