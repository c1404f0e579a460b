// Fully connected layer y = x w^T + b and its gradients on the shared tiled product (gemm.cuh).
// x: [batch, in], w: [out, in], y: [batch, out].
//   forward:          y[n, o]  = sum_i w[o, i] x[n, i]     M = out, N = batch, K = in
//   backward input:   dx[n, i] = sum_o w[o, i] dy[n, o]    M = in,  N = batch, K = out
//   backward weight:  dw[o, i] = sum_n dy[n, o] x[n, i]    M = out, N = in,    K = batch
// The layers are small (a few hundred outputs) next to the device, so the product usually splits
// K (gemm.cuh) to use every SM.
#include "gemm.cuh"

namespace dcl {
namespace cuda {
namespace {

// The plain matrix case: no per-index decoding.
struct PlainK {
  int64_t k;
  bool valid;
};
struct PlainIndex {
  int64_t i;
};

struct LinearForwardProblem {
  static constexpr bool kAContiguousK = true;  // w[o, i]
  static constexpr bool kBContiguousK = true;  // x[n, i]
  using KInfo = PlainK;
  using RowInfo = PlainIndex;
  using ColInfo = PlainIndex;
  int64_t in, out;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  __host__ __device__ KInfo k_info(int64_t k, bool valid) const { return {k, valid}; }
  __host__ __device__ RowInfo row_info(int64_t m) const { return {m}; }
  __host__ __device__ ColInfo col_info(int64_t n) const { return {n}; }
  __host__ __device__ float a(const RowInfo& r, const KInfo& k) const { return k.valid ? w[r.i * in + k.k] : 0.0f; }
  __host__ __device__ float b(const KInfo& k, const ColInfo& c) const { return k.valid ? x[c.i * in + k.k] : 0.0f; }
  __host__ __device__ void store(int64_t m, int64_t n, float v) const { y[n * out + m] = bias != nullptr ? v + bias[m] : v; }
};

struct LinearBackwardInputProblem {
  static constexpr bool kAContiguousK = false;  // w[o, i]: i (= m) contiguous
  static constexpr bool kBContiguousK = true;   // dy[n, o]
  using KInfo = PlainK;
  using RowInfo = PlainIndex;
  using ColInfo = PlainIndex;
  int64_t in, out;
  const float* dy;
  const float* w;
  float* dx;
  __host__ __device__ KInfo k_info(int64_t k, bool valid) const { return {k, valid}; }
  __host__ __device__ RowInfo row_info(int64_t m) const { return {m}; }
  __host__ __device__ ColInfo col_info(int64_t n) const { return {n}; }
  __host__ __device__ float a(const RowInfo& r, const KInfo& k) const { return k.valid ? w[k.k * in + r.i] : 0.0f; }
  __host__ __device__ float b(const KInfo& k, const ColInfo& c) const { return k.valid ? dy[c.i * out + k.k] : 0.0f; }
  __host__ __device__ void store(int64_t m, int64_t n, float v) const { dx[n * in + m] = v; }
};

struct LinearBackwardWeightProblem {
  static constexpr bool kAContiguousK = false;  // dy[n, o]: o (= m) contiguous
  static constexpr bool kBContiguousK = false;  // x[n, i]: i (= n) contiguous
  using KInfo = PlainK;
  using RowInfo = PlainIndex;
  using ColInfo = PlainIndex;
  int64_t in, out;
  const float* x;
  const float* dy;
  float* dw;
  __host__ __device__ KInfo k_info(int64_t k, bool valid) const { return {k, valid}; }
  __host__ __device__ RowInfo row_info(int64_t m) const { return {m}; }
  __host__ __device__ ColInfo col_info(int64_t n) const { return {n}; }
  __host__ __device__ float a(const RowInfo& r, const KInfo& k) const { return k.valid ? dy[k.k * out + r.i] : 0.0f; }
  __host__ __device__ float b(const KInfo& k, const ColInfo& c) const { return k.valid ? x[k.k * in + c.i] : 0.0f; }
  __host__ __device__ void store(int64_t m, int64_t n, float v) const { dw[m * in + n] = v; }
};

}  // namespace

CudaStatus linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  LinearForwardProblem p{s.in_features, s.out_features, x, w, b, y};
  return run_gemm(p, s.out_features, s.batch, s.in_features, "linear_forward");
}

CudaStatus linear_backward_input(const LinearShape& s, const float* dy, const float* w, float* dx) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  LinearBackwardInputProblem p{s.in_features, s.out_features, dy, w, dx};
  return run_gemm(p, s.in_features, s.batch, s.out_features, "linear_backward_input");
}

CudaStatus linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, float* db) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  LinearBackwardWeightProblem p{s.in_features, s.out_features, x, dy, dw};
  DCL_CUDA_RETURN_IF_ERROR(run_gemm(p, s.out_features, s.in_features, s.batch, "linear_backward_weight"));
  if (db != nullptr) DCL_CUDA_RETURN_IF_ERROR(channel_sum(dy, s.batch, s.out_features, 1, db, "linear_backward_weight (bias)"));
  return CudaStatus::success();
}

}  // namespace cuda
}  // namespace dcl
