// Code layouts n x q: quantize + pack, and the exhaustive k-nearest scan (native/cpu/quantize_*.cpp,
// native/cpu/scan_*.cpp).
//
// Quantize: one thread per code, the CPU's rule exactly (2^q p is exact in float32; NaN, p <= 0
// give level 0, p >= 1 gives 2^q - 1).
//
// k nearest: one block of 128 threads per query. Thread t visits database codes t, t + 128, ...
// (ascending) and keeps the smallest keys (distance << 32 | index) it has seen in a sorted list
// of at most k entries in its local memory; then the block merges the 128 sorted lists: k rounds,
// each taking the smallest list head (a shuffle + shared-memory minimum) and advancing that list.
// Keys are unique (they hold the index), so the result is exactly the CPU's: the k smallest
// (distance, index) pairs, ascending, ties by the smaller index. The lists bound k (kKnnMaxK).
#include <climits>

#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

constexpr int kKnnThreads = 128;

__global__ void quantize_pack_kernel(int64_t count, int n, int q, const float* p, int32_t* codes) {
  const float scale = static_cast<float>(static_cast<double>(1ull << q));
  const uint32_t top = q >= 32 ? 0xffffffffu : (1u << q) - 1u;
  for (int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; x < count;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t code = 0;
    for (int i = 0; i < n; ++i) {
      const float v = __fmul_rn(p[x * n + i], scale);
      uint32_t level;
      if (!(v > 0.0f))
        level = 0;  // negative, zero, NaN
      else if (v >= scale)
        level = top;  // p >= 1, +inf
      else
        level = static_cast<uint32_t>(static_cast<int64_t>(v));  // truncation = floor for v > 0
      code |= level << (i * q);
    }
    codes[x] = static_cast<int32_t>(code);
  }
}

struct Metric {
  int n, q;
  bool hamming;
  uint32_t mask, field;
  __device__ uint32_t operator()(uint32_t x, uint32_t y) const {
    if (hamming) return __popc((x ^ y) & mask);
    uint32_t s = 0;
    for (int i = 0; i < n; ++i) {
      const uint32_t u = (x >> (i * q)) & field, v = (y >> (i * q)) & field;
      s += u > v ? u - v : v - u;
    }
    return s;
  }
};

__global__ void __launch_bounds__(kKnnThreads)
    knn_kernel(Metric dist, int64_t count, const int32_t* database, const int32_t* queries, int k, int32_t* indices,
               uint32_t* distances) {
  __shared__ unsigned long long warp_min[kKnnThreads / 32];
  __shared__ unsigned long long round_min;
  const int64_t qi = blockIdx.x;
  const uint32_t query = static_cast<uint32_t>(queries[qi]);
  unsigned long long list[kKnnMaxK];
  int size = 0;
  for (int64_t x = threadIdx.x; x < count; x += blockDim.x) {
    const unsigned long long key =
        (static_cast<unsigned long long>(dist(static_cast<uint32_t>(database[x]), query)) << 32) | static_cast<unsigned long long>(x);
    if (size == k && key >= list[k - 1]) continue;
    // Insertion into the sorted list (the last entry drops out when it is full).
    int at = size < k ? size : k - 1;
    while (at > 0 && list[at - 1] > key) {
      list[at] = list[at - 1];
      --at;
    }
    list[at] = key;
    if (size < k) ++size;
  }
  int head = 0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int j = 0; j < k; ++j) {
    unsigned long long mine = head < size ? list[head] : ULLONG_MAX;
    unsigned long long m = mine;
    for (int offset = 16; offset > 0; offset >>= 1) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffu, m, offset);
      m = other < m ? other : m;
    }
    if (lane == 0) warp_min[warp] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned long long best = warp_min[0];
      for (int w = 1; w < kKnnThreads / 32; ++w) best = warp_min[w] < best ? warp_min[w] : best;
      round_min = best;
      const bool real = best != ULLONG_MAX;
      indices[qi * k + j] = real ? static_cast<int32_t>(best & 0xffffffffu) : -1;
      distances[qi * k + j] = real ? static_cast<uint32_t>(best >> 32) : 0xffffffffu;
    }
    __syncthreads();
    if (mine != ULLONG_MAX && mine == round_min) ++head;  // keys are unique: one owner
  }
}

}  // namespace

CudaStatus quantize_pack(int64_t count, int n, int q, const float* p, int32_t* codes) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (n < 1 || q < 1 || q > 32 || n * q > 32) return invalid("quantize_pack: bad layout");
  if (count <= 0) return CudaStatus::success();
  quantize_pack_kernel<<<grid_for(count), kElementwiseThreads>>>(count, n, q, p, codes);
  return check_launch("quantize_pack");
}

CudaStatus code_knn(const CodeScanShape& s, const int32_t* database, const int32_t* queries, int64_t k, int32_t* indices,
                    uint32_t* distances) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (s.n < 1 || s.q < 1 || s.q > 32 || s.n * s.q > 32) return invalid("code_knn: bad layout");
  if (k < 1 || k > kKnnMaxK)
    return invalid("Expected k from 1 to " + std::to_string(kKnnMaxK) + " for a CUDA k-nearest scan but received " + std::to_string(k));
  if (s.queries <= 0) return CudaStatus::success();
  if (s.queries > 2147483647LL) return invalid("code_knn: too many queries for one grid");
  Metric m;
  m.n = s.n;
  m.q = s.q;
  m.hamming = s.hamming || s.q == 1;
  m.mask = s.n * s.q >= 32 ? 0xffffffffu : (1u << (s.n * s.q)) - 1u;
  m.field = s.q >= 32 ? 0xffffffffu : (1u << s.q) - 1u;
  knn_kernel<<<static_cast<unsigned>(s.queries), kKnnThreads>>>(m, s.count, database, queries, static_cast<int>(k), indices,
                                                                 distances);
  return check_launch("code_knn");
}

}  // namespace cuda
}  // namespace dcl
