// PLACEHOLDER: forwards to the serial kernels until the avx512 linear kernels land.
#include "ops.h"
namespace dcl {
namespace avx512 {
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) { serial::linear_forward(s, x, w, b, y); }
void linear_backward_input(const LinearShape& s, const float* dy, const float* w, float* dx) { serial::linear_backward_input(s, dy, w, dx); }
void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, float* db) { serial::linear_backward_weight(s, x, dy, dw, db); }
}  // namespace avx512
}  // namespace dcl
