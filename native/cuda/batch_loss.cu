// The training loss of one batch on the device: lib/train.ts batchLoss (the CPU oracle) composed
// from the pair-loss kernels, so that a device training step (lib/cuda-train.ts) keeps p and
// dL/dp on the device and brings back three float64 values: the loss, d/dalpha and d/dbeta.
//
// For method rounding / std / float: s = 2^Q p (float32, exact: a power of two), f = s, or the
// rounded codes clamp(floor(s), 0, 2^Q - 1) for rounding and std; pair_l1_loss(f, directions s); dL/dp =
// 2^Q dL/df (exact). For dp: hamming_dp(p). Then, for std with omega > 0, the spread term of
// every output i over the batch: std_i = sqrt(var_i + 1e-12) with mean and variance in float64
// (one block per output, a fixed-order tree: within rounding of the CPU's sequential sums),
// loss -= omega std_i, dL/dp_bi -= omega (p_bi - mean_i) / (count std_i). The loss is
// sum_k w_k loss_k / weight_sum in float64 (one block, fixed order), minus the std terms in
// output order (as the CPU subtracts them).
#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

constexpr int kReduceThreads = 1024;
constexpr int kStdThreads = 256;

__global__ void scaled_values_kernel(int64_t total, float levels, bool rounding, const float* p, float* s, float* f) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = __fmul_rn(levels, p[e]);
    s[e] = v;
    if (rounding) f[e] = fminf(levels - 1.0f, fmaxf(0.0f, floorf(v)));
  }
}

__global__ void scale_kernel(int64_t total, float levels, float* g) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    g[e] = __fmul_rn(levels, g[e]);
}

// One block per output i: std_i, and the term's gradient added into grad_p.
__global__ void std_term_kernel(int64_t count, int64_t n, double omega, const float* p, float* grad_p, double* stds) {
  __shared__ double partial[32];
  __shared__ double shared_mean, shared_std;
  const int64_t i = blockIdx.x;
  double sum = 0;
  for (int64_t b = threadIdx.x; b < count; b += blockDim.x) sum += static_cast<double>(p[b * n + i]);
  sum = block_sum(sum, partial);
  if (threadIdx.x == 0) shared_mean = sum / static_cast<double>(count);
  __syncthreads();
  const double mean = shared_mean;
  double sq = 0;
  for (int64_t b = threadIdx.x; b < count; b += blockDim.x) {
    const double d = static_cast<double>(p[b * n + i]) - mean;
    sq += d * d;
  }
  sq = block_sum(sq, partial);
  if (threadIdx.x == 0) {
    shared_std = sqrt(sq / static_cast<double>(count) + 1e-12);
    stds[i] = shared_std;
  }
  __syncthreads();
  const double std = shared_std;
  for (int64_t b = threadIdx.x; b < count; b += blockDim.x) {
    const int64_t e = b * n + i;
    const double term = (omega * (static_cast<double>(p[e]) - mean)) / (static_cast<double>(count) * std);
    grad_p[e] = static_cast<float>(static_cast<double>(grad_p[e]) - term);
  }
}

// result[0] = sum_k w_k loss_k / weight_sum, then minus omega std_i for i in order (stds may be
// nullptr). One block.
__global__ void reduce_loss_kernel(int64_t pairs, const double* loss, const float* weights, double weight_sum, const double* stds,
                                   int64_t n, double omega, double* result) {
  __shared__ double partial[32];
  double s = 0;
  for (int64_t k = threadIdx.x; k < pairs; k += blockDim.x)
    s += (weights != nullptr ? static_cast<double>(weights[k]) : 1.0) * loss[k];
  s = block_sum(s, partial);
  if (threadIdx.x == 0) {
    double total = s / weight_sum;
    if (stds != nullptr)
      for (int64_t i = 0; i < n; ++i) total -= omega * stds[i];
    result[0] = total;
  }
}

}  // namespace

CudaStatus batch_loss(const BatchLossArgs& a, const float* p, float* grad_p, double* result) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (a.batch == nullptr) return invalid("batch_loss: no pair batch");
  const DevicePairBatch& b = *a.batch;
  const int64_t count = b.images, n = a.dims, total = count * n, P = b.pairs;
  if (count < 1 || n < 1 || P < 1) return invalid("batch_loss: expected at least one image, one output and one pair");
  if (a.levels < 2 || a.levels > (1 << 16)) return invalid("batch_loss: levels must be 2^Q with 1 <= Q <= 16");
  if (!(a.weight_sum > 0)) return invalid("batch_loss: the pair weights must have a positive sum");
  Scratch losses;
  DCL_CUDA_RETURN_IF_ERROR(losses.allocate(sizeof(double) * P));
  DevicePairLoss loss;
  loss.batch = a.batch;
  loss.dims = n;
  loss.alpha = a.alpha;
  loss.beta = a.beta;
  loss.scale = 1.0 / a.weight_sum;
  loss.loss = losses.as<double>();
  loss.grad_scalars = result + 1;
  const float levels = static_cast<float>(a.levels);
  switch (a.method) {
    case BatchLossMethod::dp:
      if (a.levels != 2) return invalid("batch_loss: method dp needs binary codes (Q = 1)");
      DCL_CUDA_RETURN_IF_ERROR(hamming_dp(loss, p, grad_p));
      break;
    case BatchLossMethod::rounding:
    case BatchLossMethod::std_term:
    case BatchLossMethod::unrounded: {
      const bool rounding = a.method == BatchLossMethod::rounding || a.method == BatchLossMethod::std_term;
      Scratch values;
      DCL_CUDA_RETURN_IF_ERROR(values.allocate(sizeof(float) * total * (rounding ? 2 : 1)));
      float* s = values.as<float>();
      float* f = rounding ? s + total : s;
      scaled_values_kernel<<<grid_for(total), kElementwiseThreads>>>(total, levels, rounding, p, s, f);
      DCL_CUDA_RETURN_IF_ERROR(check_launch("batch_loss (values)"));
      // d/df straight into grad_p, then times 2^Q in place.
      DCL_CUDA_RETURN_IF_ERROR(pair_l1_loss(loss, f, s, grad_p));
      scale_kernel<<<grid_for(total), kElementwiseThreads>>>(total, levels, grad_p);
      DCL_CUDA_RETURN_IF_ERROR(check_launch("batch_loss (scale)"));
      break;
    }
    default:
      return invalid("batch_loss: unknown method");
  }
  Scratch stds;
  const bool spread = a.method == BatchLossMethod::std_term && a.omega > 0;
  if (spread) {
    DCL_CUDA_RETURN_IF_ERROR(stds.allocate(sizeof(double) * n));
    if (n > 2147483647LL) return invalid("batch_loss: too many outputs");
    std_term_kernel<<<static_cast<unsigned>(n), kStdThreads>>>(count, n, a.omega, p, grad_p, stds.as<double>());
    DCL_CUDA_RETURN_IF_ERROR(check_launch("batch_loss (std term)"));
  }
  reduce_loss_kernel<<<1, kReduceThreads>>>(P, losses.as<double>(), b.weights, a.weight_sum, spread ? stds.as<double>() : nullptr, n,
                                            a.omega, result);
  return check_launch("batch_loss (sum)");
}

}  // namespace cuda
}  // namespace dcl
