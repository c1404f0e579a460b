// PLACEHOLDER: forwards to the serial kernels until the avx2 conv2d kernel lands.
#include "ops.h"
namespace dcl {
namespace avx2 {
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) { serial::conv2d_forward(s, x, w, b, y); }
void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) { serial::conv2d_backward_input(s, dy, w, dx); }
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) { serial::conv2d_backward_weight(s, x, dy, dw, db); }
}  // namespace avx2
}  // namespace dcl
