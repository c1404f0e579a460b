// Expected pair loss over binary codes by dynamic programming (technique 2, eq. 6-7), forward and
// backward; the recursion and its reverse mode are those of native/cpu/hamming_dp_serial.cpp
// (read its comment for the formulas).
//
// One warp per pair. The rows D[0..n] of the distance distribution (n (n+1) / 2 + n + 1 values),
// the reverse-mode row G and the per-bit q, 1 - q live in the warp's slice of shared memory; row i
// is computed by the 32 lanes together (lane j takes entries j, j + 32, j + 64), each entry with
// the CPU's operations in the CPU's order (no contraction), so D and the loss are the serial
// kernel's to the last bit. dE/dq_i is a sum over j that the warp reduces with shuffles (within
// rounding of the CPU's sequential sum). Each pair writes a record of 2n + 2 float64 values
// (dE/dp_a, dE/dp_b, dE/dalpha, dE/dbeta, times c_k), and one thread per (image, bit) then adds
// its records in pair order through the occurrence lists, as the CPU does.
#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

constexpr int kMaxWarpsPerBlock = 8;
constexpr size_t kSharedBudget = 48 * 1024;

__host__ __device__ inline int64_t tri(int64_t r) { return r * (r + 1) / 2; }

// Doubles of one warp's shared slice: D rows 0..n, G (n + 1), q (n), 1 - q (n).
__host__ __device__ inline int64_t warp_doubles(int64_t n) { return tri(n + 1) + (n + 1) + 2 * n; }

// table: for l = -1 (rows 0..2) then l = +1 (rows 3..5), over j = 0..n: L_j, A_j = L'_j j, B_j = -L'_j.
__global__ void dp_table_kernel(int64_t n, double alpha, double beta, double* table) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= 2 * (n + 1)) return;
  const int64_t side = t / (n + 1), j = t - side * (n + 1);
  const double l = side ? 1.0 : -1.0;
  const double z = -l * (__dmul_rn(alpha, static_cast<double>(j)) - beta);
  const double dy = -l * sigmoid_device(z);
  double* L = table + side * 3 * (n + 1);
  L[j] = softplus_device(z);
  L[(n + 1) + j] = __dmul_rn(dy, static_cast<double>(j));
  L[2 * (n + 1) + j] = -dy;
}

__global__ void dp_pair_kernel(DevicePairLoss a, DevicePairBatch batch, const float* p, const double* table,
                               bool backward, double* records) {
  extern __shared__ double shared[];
  const int64_t n = a.dims;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t k = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (k >= batch.pairs) return;  // whole warps leave together
  double* D = shared + warp * warp_doubles(n);
  double* G = D + tri(n + 1);
  double* Q = G + (n + 1);
  double* OMQ = Q + n;

  const float* pa = p + static_cast<int64_t>(batch.pair_index[2 * k]) * n;
  const float* pb = p + static_cast<int64_t>(batch.pair_index[2 * k + 1]) * n;
  const double* L = table + (batch.labels[k] > 0 ? 3 * (n + 1) : 0);
  const double* A = L + (n + 1);
  const double* B = A + (n + 1);

  for (int64_t i = lane; i < n; i += 32) {
    const double p1 = pa[i], p2 = pb[i];
    Q[i] = __dadd_rn(__dmul_rn(p1, 1.0 - p2), __dmul_rn(p2, 1.0 - p1));
    OMQ[i] = __dadd_rn(__dmul_rn(1.0 - p1, 1.0 - p2), __dmul_rn(p1, p2));
  }
  if (lane == 0) D[0] = 1.0;
  __syncwarp();
  for (int64_t i = 1; i <= n; ++i) {
    const double* prev = D + tri(i - 1);
    double* cur = D + tri(i);
    const double q = Q[i - 1], omq = OMQ[i - 1];
    for (int64_t j = lane; j <= i; j += 32) {
      if (j == 0)
        cur[0] = __dmul_rn(omq, prev[0]);
      else if (j == i)
        cur[i] = __dmul_rn(q, prev[i - 1]);
      else
        cur[j] = __dadd_rn(__dmul_rn(q, prev[j - 1]), __dmul_rn(omq, prev[j]));
    }
    __syncwarp();
  }
  const double* Dn = D + tri(n);
  const double c = a.scale * (batch.weights != nullptr ? static_cast<double>(batch.weights[k]) : 1.0);
  double* rec = backward ? records + k * (2 * n + 2) : nullptr;
  if (lane == 0) {
    double e = 0;
    for (int64_t j = 0; j <= n; ++j) e = __dadd_rn(e, __dmul_rn(Dn[j], L[j]));
    a.loss[k] = e;
    if (backward) {
      double da = 0, db = 0;
      for (int64_t j = 0; j <= n; ++j) {
        da = __dadd_rn(da, __dmul_rn(Dn[j], A[j]));
        db = __dadd_rn(db, __dmul_rn(Dn[j], B[j]));
      }
      rec[2 * n] = __dmul_rn(c, da);
      rec[2 * n + 1] = __dmul_rn(c, db);
    }
  }
  if (!backward) return;
  for (int64_t j = lane; j <= n; j += 32) G[j] = L[j];
  __syncwarp();
  for (int64_t i = n; i >= 1; --i) {
    const double* prev = D + tri(i - 1);
    const double q = Q[i - 1];
    // Lane entries j = lane, lane + 32 (j < i <= 64): read every G before any lane writes.
    double diff[2] = {0, 0}, gj[2] = {0, 0};
    double partial = 0;
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int64_t j = lane + 32 * t;
      if (j < i) {
        gj[t] = G[j];
        diff[t] = G[j + 1] - gj[t];
        partial = __dadd_rn(partial, __dmul_rn(prev[j], diff[t]));
      }
    }
    __syncwarp();
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int64_t j = lane + 32 * t;
      if (j < i) G[j] = __dadd_rn(gj[t], __dmul_rn(q, diff[t]));
    }
    for (int offset = 16; offset > 0; offset >>= 1) partial += __shfl_xor_sync(0xffffffffu, partial, offset);
    if (lane == 0) {
      const double qbar = __dmul_rn(partial, c);
      rec[i - 1] = __dmul_rn(qbar, 1.0 - 2.0 * static_cast<double>(pb[i - 1]));
      rec[n + i - 1] = __dmul_rn(qbar, 1.0 - 2.0 * static_cast<double>(pa[i - 1]));
    }
    __syncwarp();
  }
}

__global__ void dp_image_kernel(DevicePairBatch batch, int64_t n, const double* records, float* grad_p) {
  const int64_t total = batch.images * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = e / n, i = e - x * n;
    double acc = 0;
    for (int32_t pos = batch.occ_offsets[x]; pos < batch.occ_offsets[x + 1]; ++pos) {
      const int32_t occurrence = batch.occ_entries[pos];
      acc += records[static_cast<int64_t>(occurrence >> 1) * (2 * n + 2) + (occurrence & 1) * n + i];
    }
    grad_p[e] = static_cast<float>(acc);
  }
}

}  // namespace

CudaStatus hamming_dp(const DevicePairLoss& a, const float* p, float* grad_p) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (a.batch == nullptr) return invalid("hamming_dp: no pair batch");
  const DevicePairBatch& b = *a.batch;
  const int64_t n = a.dims, P = b.pairs;
  const bool backward = grad_p != nullptr;
  if (n < 1 || n > 64) return invalid("hamming_dp: code length must be 1..64 bits");
  if (backward && a.grad_scalars == nullptr) return invalid("hamming_dp: gradients need grad_scalars");
  if (P <= 0) {
    if (backward) {
      DCL_CUDA_RETURN_IF_ERROR(fill_zero(a.grad_scalars, 2 * sizeof(double)));
      DCL_CUDA_RETURN_IF_ERROR(fill_zero(grad_p, sizeof(float) * b.images * n));
    }
    return CudaStatus::success();
  }
  Scratch table, records;
  DCL_CUDA_RETURN_IF_ERROR(table.allocate(sizeof(double) * 6 * (n + 1)));
  if (backward) DCL_CUDA_RETURN_IF_ERROR(records.allocate(sizeof(double) * P * (2 * n + 2)));
  dp_table_kernel<<<1, 160>>>(n, a.alpha, a.beta, table.as<double>());
  DCL_CUDA_RETURN_IF_ERROR(check_launch("hamming_dp (table)"));

  const size_t per_warp = sizeof(double) * static_cast<size_t>(warp_doubles(n));
  int warps = static_cast<int>(kSharedBudget / per_warp);
  if (warps > kMaxWarpsPerBlock) warps = kMaxWarpsPerBlock;
  if (warps < 1) warps = 1;
  const int64_t blocks = (P + warps - 1) / warps;
  if (blocks > 2147483647LL) return invalid("hamming_dp: too many pairs for one grid");
  dp_pair_kernel<<<static_cast<unsigned>(blocks), 32 * warps, per_warp * warps>>>(a, b, p, table.as<double>(), backward,
                                                                                 records.as<double>());
  DCL_CUDA_RETURN_IF_ERROR(check_launch("hamming_dp (pairs)"));
  if (!backward) return CudaStatus::success();
  const double* r = records.as<double>();
  DCL_CUDA_RETURN_IF_ERROR(sum_pair_scalars(P, r + 2 * n, r + 2 * n + 1, 2 * n + 2, a.grad_scalars, "hamming_dp (alpha, beta)"));
  if (b.images * n > 0) {
    dp_image_kernel<<<grid_for(b.images * n), kElementwiseThreads>>>(b, n, r, grad_p);
    DCL_CUDA_RETURN_IF_ERROR(check_launch("hamming_dp (images)"));
  }
  return CudaStatus::success();
}

}  // namespace cuda
}  // namespace dcl
