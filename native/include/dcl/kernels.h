// The CPU kernel interface. Every backend (serial, AVX2, AVX-512, later CUDA) implements the same
// plain functions over raw pointers and shapes. Nothing here knows about JavaScript.
//
// Conventions shared by every kernel:
// - float32 tensors in NCHW order at the interface (kernels may use another layout inside);
// - outputs are overwritten, never accumulated into;
// - shapes have been validated by the caller (lib/), kernels trust them;
// - errors are reported by throwing dcl::Error (bindings turn it into a JS DclError); no kernel
//   calls exit() or abort().
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace dcl {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

struct Conv2dShape {
  int64_t batch = 0;
  int64_t in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
};

struct Pool2dShape {
  int64_t batch = 0, channels = 0, in_h = 0, in_w = 0;
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 1, stride_w = 1;
  int64_t out_h() const { return (in_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (in_w - kernel_w) / stride_w + 1; }
};

// Fully connected layer y = x w^T + b, x: [batch, in_features], w: [out_features, in_features].
struct LinearShape {
  int64_t batch = 0, in_features = 0, out_features = 0;
};

// x: [N, Cin, H, W], w: [Cout, Cin, KH, KW], b: [Cout] or nullptr, y: [N, Cout, OH, OW].
using Conv2dForwardFn = void (*)(const Conv2dShape&, const float* x, const float* w,
                                 const float* b, float* y);
// dy: [N, Cout, OH, OW], w as above, dx: [N, Cin, H, W].
using Conv2dBackwardInputFn = void (*)(const Conv2dShape&, const float* dy, const float* w,
                                       float* dx);
// dw: [Cout, Cin, KH, KW]; db: [Cout] or nullptr (then the bias gradient is not computed).
using Conv2dBackwardWeightFn = void (*)(const Conv2dShape&, const float* x, const float* dy,
                                        float* dw, float* db);
// y: [N, C, OH, OW]; argmax: index (ih * W + iw) of the winning input inside its plane. The
// winner is found by starting from -inf with the window's first element and taking, row by row,
// each element strictly greater than the best so far (ordered compare: NaN never takes over; ties
// keep the first maximum). y is the winner's value.
using MaxPool2dForwardFn = void (*)(const Pool2dShape&, const float* x, float* y,
                                    int32_t* argmax);
// dx = scatter-add of dy at argmax (overlapping windows add up).
using MaxPool2dBackwardFn = void (*)(const Pool2dShape&, const float* dy, const int32_t* argmax,
                                     float* dx);
// y = |tanh(x)| or y = 1 / (1 + exp(-x)), element-wise.
using UnaryFn = void (*)(int64_t n, const float* x, float* y);
// dx = dy * sign(x) * (1 - y^2) with y = |tanh(x)|; sign(0) = 0.
using AbsTanhBackwardFn = void (*)(int64_t n, const float* dy, const float* x, const float* y,
                                   float* dx);
// dx = dy * y * (1 - y) with y = sigmoid(x).
using SigmoidBackwardFn = void (*)(int64_t n, const float* dy, const float* y, float* dx);
using LinearForwardFn = void (*)(const LinearShape&, const float* x, const float* w,
                                 const float* b, float* y);
// dx = dy w.
using LinearBackwardInputFn = void (*)(const LinearShape&, const float* dy, const float* w,
                                       float* dx);
// dw = dy^T x, db = sum over the batch of dy (skipped when db is nullptr).
using LinearBackwardWeightFn = void (*)(const LinearShape&, const float* x, const float* dy,
                                        float* dw, float* db);
// Runs independent FMA chains on `threads` threads for about `seconds` and returns GFLOP/s: the
// machine limit that the benchmarks quote beside every kernel.
using FmaPeakFn = double (*)(int threads, double seconds);

struct CpuKernels {
  const char* isa;
  Conv2dForwardFn conv2d_forward;
  Conv2dBackwardInputFn conv2d_backward_input;
  Conv2dBackwardWeightFn conv2d_backward_weight;
  MaxPool2dForwardFn max_pool2d_forward;
  MaxPool2dBackwardFn max_pool2d_backward;
  UnaryFn abs_tanh_forward;
  AbsTanhBackwardFn abs_tanh_backward;
  UnaryFn sigmoid_forward;
  SigmoidBackwardFn sigmoid_backward;
  LinearForwardFn linear_forward;
  LinearBackwardInputFn linear_backward_input;
  LinearBackwardWeightFn linear_backward_weight;
  FmaPeakFn fma_peak;
};

}  // namespace dcl
