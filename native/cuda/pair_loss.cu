// The device pair batch (pairs, labels, weights and each image's occurrences), and the pair loss
// over an L1 distance (technique 1 and the unquantized reference; kernels.h PairL1LossFn,
// native/cpu/pair_loss_serial.cpp).
//
// Three steps, each in a fixed order so that results are the same on every run:
// 1. one thread per pair: d_k = sum_i |f_a,i - f_b,i| in float64, in i order (the CPU's sum
//    exactly), loss_k, and the per-pair coefficients g_k = c_k alpha dL/dy, c_k d_k dL/dy,
//    -c_k dL/dy;
// 2. one block sums the last two over the pairs (d/dalpha, d/dbeta; a tree, so within rounding of
//    the CPU's sequential sum);
// 3. one thread per (image, dimension) adds g_k sign(s_x,i - s_other,i) over the image's pairs in
//    pair order (the occurrence lists), in float64: the CPU's sum exactly.
#include <cstring>
#include <vector>

#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

constexpr int kReduceThreads = 1024;

__global__ void l1_pair_kernel(DevicePairLoss a, DevicePairBatch batch, const float* f, bool backward, double* g,
                               double* g_alpha, double* g_beta) {
  const int64_t n = a.dims;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < batch.pairs;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float* fa = f + static_cast<int64_t>(batch.pair_index[2 * k]) * n;
    const float* fb = f + static_cast<int64_t>(batch.pair_index[2 * k + 1]) * n;
    double d = 0;
    for (int64_t i = 0; i < n; ++i) d = __dadd_rn(d, fabs(static_cast<double>(fa[i]) - static_cast<double>(fb[i])));
    const double l = batch.labels[k] > 0 ? 1.0 : -1.0;
    const double z = -l * (__dmul_rn(a.alpha, d) - a.beta);
    a.loss[k] = softplus_device(z);
    if (!backward) continue;
    const double dy = -l * sigmoid_device(z);
    const double c = a.scale * (batch.weights != nullptr ? static_cast<double>(batch.weights[k]) : 1.0);
    g_alpha[k] = __dmul_rn(__dmul_rn(c, dy), d);
    g_beta[k] = -__dmul_rn(c, dy);
    g[k] = __dmul_rn(__dmul_rn(c, a.alpha), dy);
  }
}

__global__ void l1_image_kernel(DevicePairLoss a, DevicePairBatch batch, const float* s, const double* g, float* grad_f) {
  const int64_t n = a.dims, total = batch.images * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = e / n, i = e - x * n;
    const float self = s[e];
    double acc = 0;
    for (int32_t pos = batch.occ_offsets[x]; pos < batch.occ_offsets[x + 1]; ++pos) {
      const int32_t occurrence = batch.occ_entries[pos];
      const float other = s[static_cast<int64_t>(batch.pair_index[occurrence ^ 1]) * n + i];
      const double gk = g[occurrence >> 1];
      acc += self > other ? gk : (self < other ? -gk : 0.0);
    }
    grad_f[e] = static_cast<float>(acc);
  }
}

// Sums two per-pair float64 arrays (entries `stride` apart) into out[0], out[1] in one block.
__global__ void sum_pairs_kernel(int64_t count, const double* first, const double* second, int64_t stride, double* out) {
  __shared__ double partial[32];
  double s0 = 0, s1 = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
    s0 += first[k * stride];
    s1 += second[k * stride];
  }
  s0 = block_sum(s0, partial);
  s1 = block_sum(s1, partial);
  if (threadIdx.x == 0) {
    out[0] = s0;
    out[1] = s1;
  }
}

}  // namespace

CudaStatus sum_pair_scalars(int64_t count, const double* first, const double* second, int64_t stride, double* out,
                            const char* name) {
  sum_pairs_kernel<<<1, kReduceThreads>>>(count, first, second, stride, out);
  return check_launch(name);
}

CudaStatus pair_batch_upload(int64_t images, int64_t pairs, const int32_t* host_pairs, const float* host_labels,
                             const float* host_weights, DevicePairBatch* out) {
  *out = DevicePairBatch();
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (images < 0 || pairs < 0 || 2 * pairs > 2147483647LL) return invalid("pair_batch_upload: too many pairs");
  // Occurrence lists: a counting sort of 2k + side by image, stable (pair order within an image).
  std::vector<int32_t> offsets(static_cast<size_t>(images + 1), 0), entries(static_cast<size_t>(2 * pairs));
  for (int64_t e = 0; e < 2 * pairs; ++e) {
    const int32_t x = host_pairs[e];
    if (x < 0 || x >= images) return invalid("pair_batch_upload: an image index is outside [0, images)");
    ++offsets[static_cast<size_t>(x) + 1];
  }
  for (int64_t x = 0; x < images; ++x) offsets[x + 1] += offsets[x];
  {
    std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
    for (int64_t e = 0; e < 2 * pairs; ++e) entries[fill[host_pairs[e]]++] = static_cast<int32_t>(e);
  }
  // One device block holds the five arrays (one allocation, one copy).
  const size_t pairs_bytes = aligned(sizeof(int32_t) * 2 * pairs), labels_bytes = aligned(sizeof(float) * pairs);
  const size_t weights_bytes = host_weights ? aligned(sizeof(float) * pairs) : 0;
  const size_t offsets_bytes = aligned(sizeof(int32_t) * (images + 1)), entries_bytes = aligned(sizeof(int32_t) * 2 * pairs);
  const size_t total = pairs_bytes + labels_bytes + weights_bytes + offsets_bytes + entries_bytes;
  std::vector<unsigned char> staging(total, 0);
  size_t at = 0;
  auto place = [&](const void* src, size_t bytes, size_t slot) {
    if (bytes > 0) std::memcpy(staging.data() + at, src, bytes);
    const size_t start = at;
    at += slot;
    return start;
  };
  const size_t pairs_at = place(host_pairs, sizeof(int32_t) * 2 * pairs, pairs_bytes);
  const size_t labels_at = place(host_labels, sizeof(float) * pairs, labels_bytes);
  const size_t weights_at = host_weights ? place(host_weights, sizeof(float) * pairs, weights_bytes) : 0;
  const size_t offsets_at = place(offsets.data(), sizeof(int32_t) * (images + 1), offsets_bytes);
  const size_t entries_at = place(entries.data(), sizeof(int32_t) * 2 * pairs, entries_bytes);
  void* block = nullptr;
  DCL_CUDA_RETURN_IF_ERROR(device_alloc(total, &block));
  CudaStatus copied = upload(block, staging.data(), total);
  if (!copied.ok()) {
    device_free(block);
    return copied;
  }
  unsigned char* base = static_cast<unsigned char*>(block);
  out->images = images;
  out->pairs = pairs;
  out->pair_index = reinterpret_cast<int32_t*>(base + pairs_at);
  out->labels = reinterpret_cast<float*>(base + labels_at);
  out->weights = host_weights ? reinterpret_cast<float*>(base + weights_at) : nullptr;
  out->occ_offsets = reinterpret_cast<int32_t*>(base + offsets_at);
  out->occ_entries = reinterpret_cast<int32_t*>(base + entries_at);
  return CudaStatus::success();
}

void pair_batch_free(DevicePairBatch* batch) {
  if (batch == nullptr) return;
  device_free(batch->pair_index);  // the start of the one block
  *batch = DevicePairBatch();
}

CudaStatus pair_l1_loss(const DevicePairLoss& a, const float* f, const float* s, float* grad_f) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (a.batch == nullptr) return invalid("pair_l1_loss: no pair batch");
  const DevicePairBatch& b = *a.batch;
  const bool backward = grad_f != nullptr;
  if (backward && a.grad_scalars == nullptr) return invalid("pair_l1_loss: gradients need grad_scalars");
  const int64_t P = b.pairs;
  Scratch coefficients;
  if (backward) DCL_CUDA_RETURN_IF_ERROR(coefficients.allocate(sizeof(double) * 3 * (P > 0 ? P : 1)));
  double* g = coefficients.as<double>();
  double* g_alpha = backward ? g + P : nullptr;
  double* g_beta = backward ? g + 2 * P : nullptr;
  if (P > 0) {
    l1_pair_kernel<<<grid_for(P), kElementwiseThreads>>>(a, b, f, backward, g, g_alpha, g_beta);
    DCL_CUDA_RETURN_IF_ERROR(check_launch("pair_l1_loss (pairs)"));
  }
  if (!backward) return CudaStatus::success();
  DCL_CUDA_RETURN_IF_ERROR(sum_pair_scalars(P, g_alpha, g_beta, 1, a.grad_scalars, "pair_l1_loss (alpha, beta)"));
  if (b.images * a.dims > 0) {
    l1_image_kernel<<<grid_for(b.images * a.dims), kElementwiseThreads>>>(a, b, s, g, grad_f);
    DCL_CUDA_RETURN_IF_ERROR(check_launch("pair_l1_loss (images)"));
  }
  return CudaStatus::success();
}

}  // namespace cuda
}  // namespace dcl
