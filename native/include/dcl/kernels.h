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
// Prepared weights for inference: the forward's weight operand computed once instead of on every
// call. conv2d_prepare(s, w, prepared) writes conv2d_prepared_floats(s) floats: a header of
// kConv2dPreparedHeader floats naming the layout, then the layout the forward of this ISA reads
// for this layer under the current conv algorithm (the Winograd U, the direct path's packed
// panel, or for serial a copy of w). The layout depends on the channels, kernel, stride and
// padding of s (and on the ISA and conv algorithm), never on the batch or the image size.
// conv2d_forward_prepared(s, x, prepared, b, y) gives bit for bit what conv2d_forward(s, x, w,
// b, y) gives; it throws E_ARG when the header does not match s, the ISA and the conv algorithm
// (weights prepared under another setting). The bias stays a separate argument.
constexpr int64_t kConv2dPreparedHeader = 16;
using Conv2dPreparedFloatsFn = int64_t (*)(const Conv2dShape&);
using Conv2dPrepareFn = void (*)(const Conv2dShape&, const float* w, float* prepared);
using Conv2dForwardPreparedFn = void (*)(const Conv2dShape&, const float* x, const float* prepared,
                                         const float* b, float* y);
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

// ---- compactness losses over pairs of images (Deep Compactness Learning, eq. 2-7) ----------------
//
// A batch of P pairs over N images with n values each: pairs[2k], pairs[2k+1] are the two images
// of pair k (0 <= index < N, validated by lib/), labels[k] is -1 (same person) or +1 (different
// person; lib/ accepts nothing else, kernels read l > 0 as +1), weights[k] >= 0 or nullptr (all
// 1). The loss of a pair at distance d is L = softplus(-l (alpha d - beta)). Every gradient is of
// scale * sum_k weights[k] * loss_k (scale lets lib/ ask for a mean, or chain an upstream
// gradient, without rounding the weights). Accumulation is in float64; every per-image gradient is
// summed over that image's pairs in pair order, so the results do not depend on the thread count.
struct PairLossShape {
  int64_t images = 0;  // N
  int64_t dims = 0;    // n (hamming_dp: 1..64)
  int64_t pairs = 0;   // P
};

struct PairLossArgs {
  PairLossShape shape;
  const int32_t* pairs = nullptr;  // [P, 2]
  const float* labels = nullptr;   // [P]
  const float* weights = nullptr;  // [P] or nullptr
  double alpha = 0, beta = 0, scale = 1;
  double* loss = nullptr;        // [P] out: loss_k, unweighted and unscaled
  double* grad_scalars = nullptr;  // [2] out (or nullptr with no gradient): d/dalpha, d/dbeta
};

// Technique 2 (binary codes): bit i of image x is 1 with probability p[x, i]; loss_k is the
// expected loss over the Hamming distance distribution of the pair (dynamic programming, eq. 6-7).
// grad_p: [N, n] or nullptr (forward only, grad_scalars untouched).
using HammingDpFn = void (*)(const PairLossArgs&, const float* p, float* grad_p);
// Technique 1 / plain L1: d_k = sum_i |f[a, i] - f[b, i]|; grad_f[a, i] gets
// dL/dd * sign(s[a, i] - s[b, i]) and grad_f[b, i] its negative (s: the unquantized values, so
// that ties of the rounded codes still get a direction; s may be f). grad_f: [N, n] or nullptr.
using PairL1LossFn = void (*)(const PairLossArgs&, const float* f, const float* s, float* grad_f);

// ---- code layouts n x q (n * q <= 32) --------------------------------------------------------
// codes[x] = sum_i level_i << (i q), level_i = clamp(floor(2^q p[x, i]), 0, 2^q - 1), NaN -> 0.
using QuantizePackFn = void (*)(int64_t count, int n, int q, const float* p, int32_t* codes);
// dist[k] = sum_i |level_i(a[k]) - level_i(b[k])| (q = 1: Hamming), or with `hamming` the
// popcount of the layout's n q bits of a[k] ^ b[k]. Unsigned: 1x32 distances reach 2^32 - 1.
using CodeDistancesFn = void (*)(int64_t count, int n, int q, bool hamming, const int32_t* a,
                                 const int32_t* b, uint32_t* dist);

// ---- exhaustive scans over a database of codes (k nearest, range) --------------------------
// database: [count] codes, queries: [queries] codes, all of layout n x q (bits above n q zero,
// checked by lib/). The distance is the code_distances one: Hamming over the n q bits for q = 1
// or with `hamming`, else L1 over the n q-bit fields (uint32: 1x32 distances reach 2^32 - 1).
// Exact, on every ISA, and independent of the thread count (the ISAs differ only in speed).
struct CodeScanShape {
  int64_t count = 0;    // N database codes (< 2^31)
  int64_t queries = 0;  // Q
  int n = 0, q = 0;
  bool hamming = false;
};
// k nearest (k >= 1): for query i, indices[i k + j] / distances[i k + j], j < k, are the k
// database codes with the smallest (distance, index) pairs in ascending order: by distance, ties
// broken by the smaller database index. With N < k the last k - N entries are index -1 and
// distance 0xffffffff.
using CodeKnnFn = void (*)(const CodeScanShape&, const int32_t* database, const int32_t* queries, int64_t k,
                           int32_t* indices, uint32_t* distances);
// Range search output. The kernel writes offsets[0 .. Q] (offsets[0] = 0, the hits of query i are
// entries offsets[i] .. offsets[i + 1] - 1), then calls allocate(context, total, &indices,
// &distances) once with the total number of hits (throws E_ARG when it exceeds 2^31 - 1) and
// fills the two arrays of `total` entries it gets back (allocate may throw).
struct CodeRangeOutput {
  int64_t* offsets = nullptr;  // [Q + 1]
  void (*allocate)(void* context, int64_t total, int32_t** indices, uint32_t** distances) = nullptr;
  void* context = nullptr;
};
// Range: every database code within distance `radius` (distance <= radius) of each query, in
// ascending index order per query, with its distance.
using CodeRangeFn = void (*)(const CodeScanShape&, const int32_t* database, const int32_t* queries,
                             uint32_t radius, const CodeRangeOutput& out);

// Fused |tanh| + max-pool (max over a window of |tanh(x)| = tanh(max over the window of |x|)).
// y: [N, C, OH, OW] = tanh(|x[winner]|); argmax: index (ih * W + iw) of the winner in its plane.
// The winner rule: start from -1 with the window's first element, walk the window row by row and
// take an element when |x| is strictly greater (ordered compare: NaN never takes over; ties keep
// the first). Serial uses libm tanh; the SIMD kernels match its argmax exactly and y within 2e-7.
using AbsTanhMaxPool2dForwardFn = void (*)(const Pool2dShape&, const float* x, float* y,
                                           int32_t* argmax);
// dx [N, C, H, W] = 0 except dx[argmax] += dy * sign(x[argmax]) * (1 - y^2), sign(0) = 0, with
// dy, argmax, y pooled (overlapping windows add up, in output order).
using AbsTanhMaxPool2dBackwardFn = void (*)(const Pool2dShape&, const float* dy,
                                            const int32_t* argmax, const float* x, const float* y,
                                            float* dx);

// ---- optimiser ------------------------------------------------------------------------------
// One Adam / AdamW update of n parameters in place (torch.optim.AdamW semantics, float32):
// p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / bias_correction1 * m / (sqrt(v) / bias_correction2_sqrt + eps), with
// bias_correction1 = 1 - b1^t and bias_correction2_sqrt = sqrt(1 - b2^t) at update t.
// See native/cpu/adam_serial.cpp for the exact float32 operation order.
// The scalars are float64 (the constants derived from them are rounded to float32 once each).
using AdamUpdateFn = void (*)(int64_t n, float* param, const float* grad, float* m, float* v,
                              double lr, double beta1, double beta2, double eps,
                              double weight_decay, double bias_correction1,
                              double bias_correction2_sqrt);

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
  HammingDpFn hamming_dp;
  PairL1LossFn pair_l1_loss;
  QuantizePackFn quantize_pack;
  CodeDistancesFn code_distances;
  AbsTanhMaxPool2dForwardFn abs_tanh_max_pool2d_forward;
  AbsTanhMaxPool2dBackwardFn abs_tanh_max_pool2d_backward;
  AdamUpdateFn adam_update;
  Conv2dPreparedFloatsFn conv2d_prepared_floats;
  Conv2dPrepareFn conv2d_prepare;
  Conv2dForwardPreparedFn conv2d_forward_prepared;
  CodeKnnFn code_knn;
  CodeRangeFn code_range;
};

}  // namespace dcl
