// Winograd F(2x2, 3x3) convolution for the SIMD paths: 3x3, stride 1, padding 1 layers (all of
// DCL-S's conv2..conv4) in 2.25x fewer multiplications than the direct convolution. The shared
// source is winograd_simd.inl, compiled once per ISA (winograd_avx2.cpp, winograd_avx512.cpp); the
// direct kernels of conv2d_simd.inl call these entry points when winograd_applies() says so. The
// serial ISA never takes this path: it stays the obviously-correct direct twin the tests compare
// against.
#pragma once

#include <cstdint>

#include "dcl/kernels.h"

namespace dcl {

// Whether a SIMD conv2d call for shape s takes the Winograd path: the geometry is 3x3, stride 1,
// padding 1, and the process-wide conv algorithm (dcl/cpu.h) allows it ('auto': also at least 8
// input and 8 output channels; 'winograd': always; 'direct': never). Defined in dispatch.cpp.
bool winograd_applies(const Conv2dShape& s);

// L2 cache size of one core in bytes (sysconf, 512 KB when the OS does not say), read once.
// Defined in dispatch.cpp, outside the ISA-flagged files.
int64_t l2_cache_bytes();

// Prepared weights: U [16][Cin][Cout padded to W] (winograd_prepared_floats floats), the
// transform winograd_conv2d_forward does on every call; forward_prepared takes U instead of w and
// gives bit for bit the same y.
#define DCL_DECLARE_WINOGRAD_KERNELS                                                          \
  void winograd_conv2d_forward(const Conv2dShape&, const float* x, const float* w,           \
                               const float* b, float* y);                                    \
  int64_t winograd_prepared_floats(const Conv2dShape&);                                      \
  void winograd_prepare(const Conv2dShape&, const float* w, float* u);                       \
  void winograd_conv2d_forward_prepared(const Conv2dShape&, const float* x, const float* u,  \
                                        const float* b, float* y);                           \
  void winograd_conv2d_backward_input(const Conv2dShape&, const float* dy, const float* w,   \
                                      float* dx);                                            \
  void winograd_conv2d_backward_weight(const Conv2dShape&, const float* x, const float* dy,  \
                                       float* dw, float* db);

namespace avx2 {
DCL_DECLARE_WINOGRAD_KERNELS
}
namespace avx512 {
DCL_DECLARE_WINOGRAD_KERNELS
}

}  // namespace dcl
