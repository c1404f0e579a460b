// Declarations of every CPU kernel, one namespace per ISA. dispatch.cpp gathers them into the
// CpuKernels tables; each ISA's definitions live in their own translation units (serial: plain
// C++; avx2 / avx512: compiled with that ISA's flags only, see CMakeLists.txt).
#pragma once

#include "dcl/kernels.h"

#define DCL_DECLARE_CPU_KERNELS                                                                  \
  void conv2d_forward(const Conv2dShape&, const float* x, const float* w, const float* b,      \
                      float* y);                                                               \
  void conv2d_backward_input(const Conv2dShape&, const float* dy, const float* w, float* dx);  \
  void conv2d_backward_weight(const Conv2dShape&, const float* x, const float* dy, float* dw,  \
                              float* db);                                                      \
  void max_pool2d_forward(const Pool2dShape&, const float* x, float* y, int32_t* argmax);      \
  void max_pool2d_backward(const Pool2dShape&, const float* dy, const int32_t* argmax,         \
                           float* dx);                                                         \
  void abs_tanh_forward(int64_t n, const float* x, float* y);                                  \
  void abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y,           \
                         float* dx);                                                           \
  void sigmoid_forward(int64_t n, const float* x, float* y);                                   \
  void sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx);                \
  void linear_forward(const LinearShape&, const float* x, const float* w, const float* b,      \
                      float* y);                                                               \
  void linear_backward_input(const LinearShape&, const float* dy, const float* w, float* dx);  \
  void linear_backward_weight(const LinearShape&, const float* x, const float* dy, float* dw,  \
                              float* db);                                                      \
  double fma_peak(int threads, double seconds);

namespace dcl {

// Thrown (as dcl::Error E_ARG) by every max_pool2d_backward when an argmax index falls outside
// its plane. Defined in pool_serial.cpp, outside the ISA-flagged files, because it builds strings.
[[noreturn]] void throw_argmax_out_of_range(int64_t index, int64_t value, int64_t plane);

namespace serial {
DCL_DECLARE_CPU_KERNELS
}
namespace avx2 {
DCL_DECLARE_CPU_KERNELS
}
namespace avx512 {
DCL_DECLARE_CPU_KERNELS
}
}  // namespace dcl
