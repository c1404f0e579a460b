// One tiled matrix product that the convolutions (as implicit GEMMs) and the fully connected
// layers share: C[m, n] = sum_k A(m, k) B(k, n), where a Problem says how to read A and B from
// its tensors and where C goes.
//
// Tiling: a block of 256 threads computes a 64 x 64 tile of C, walking K in steps of 16. Each
// step the block stages a 64 x 16 slice of A and a 16 x 64 slice of B in shared memory (every
// element read from global memory once per block) and each thread accumulates a 4 x 4 micro-tile
// in registers: rows ty, ty + 16, ty + 32, ty + 48 and columns tx, tx + 16, ... (strided, so a
// warp reads 16 consecutive floats of a B row and two broadcast values of A: no bank conflicts).
// A tile that hangs over the edge of C or K reads zeros and does not store.
//
// Index arithmetic: an implicit-GEMM element needs divisions to find its tensor position. The
// divisions by the K index are done once per K step for the 16 k of the step (Problem::KInfo,
// staged in shared memory); those by the row and column indices once per thread (RowInfo,
// ColInfo: each thread loads the same 4 rows of A and the same 4 columns of B at every step).
//
// Split K: when C has too few tiles to fill the device (a weight gradient: C is Cout x Cin KH KW
// while K is N OH OW), blockIdx.z takes a slice of K and writes a partial C; a second kernel adds
// the partials in slice order. Both orders are fixed, so results are the same on every run.
#pragma once

#include "common.cuh"

namespace dcl {
namespace cuda {

constexpr int kGemmTileM = 64, kGemmTileN = 64, kGemmTileK = 16, kGemmThreads = 256;

// The load mapping: A is stored with k contiguous (kAContiguousK) or m contiguous; consecutive
// threads then read consecutive addresses (coalesced) either way. Likewise B.
template <bool kContiguousK, int kTileOther>
struct TileLoadMap {
  // Element r (0..3) of this thread: its index along K (0..15) and along M or N (0..63).
  __host__ __device__ static int k_of(int tid, int r) {
    return kContiguousK ? tid % kGemmTileK : tid / kTileOther + r * (kGemmThreads / kTileOther);
  }
  __host__ __device__ static int other_of(int tid, int r) {
    return kContiguousK ? tid / kGemmTileK + r * (kGemmThreads / kGemmTileK) : tid % kTileOther;
  }
};

template <class Problem>
__global__ void __launch_bounds__(kGemmThreads)
    tiled_gemm_kernel(Problem p, int64_t M, int64_t N, int64_t K, int64_t k_per_split, float* partial) {
  using KInfo = typename Problem::KInfo;
  using RowInfo = typename Problem::RowInfo;
  using ColInfo = typename Problem::ColInfo;
  using MapA = TileLoadMap<Problem::kAContiguousK, kGemmTileM>;
  using MapB = TileLoadMap<Problem::kBContiguousK, kGemmTileN>;
  __shared__ float As[kGemmTileK][kGemmTileM + 1];
  __shared__ float Bs[kGemmTileK][kGemmTileN + 1];
  __shared__ KInfo kinfo[kGemmTileK];

  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kGemmTileM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kGemmTileN;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * k_per_split;
  const int64_t k_end = k_begin + k_per_split < K ? k_begin + k_per_split : K;

  // The rows of A and the columns of B this thread loads, decoded once.
  RowInfo rows[4];
  ColInfo cols[4];
  bool row_ok[4], col_ok[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int64_t gm = m0 + MapA::other_of(tid, r);
    row_ok[r] = gm < M;
    rows[r] = p.row_info(row_ok[r] ? gm : 0);
    const int64_t gn = n0 + MapB::other_of(tid, r);
    col_ok[r] = gn < N;
    cols[r] = p.col_info(col_ok[r] ? gn : 0);
  }

  const int tx = tid % 16, ty = tid / 16;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kGemmTileK) {
    if (tid < kGemmTileK) {
      const int64_t gk = k0 + tid;
      kinfo[tid] = p.k_info(gk < k_end ? gk : k_begin, gk < k_end);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int ka = MapA::k_of(tid, r), ma = MapA::other_of(tid, r);
      As[ka][ma] = row_ok[r] ? p.a(rows[r], kinfo[ka]) : 0.0f;
      const int kb = MapB::k_of(tid, r), nb = MapB::other_of(tid, r);
      Bs[kb][nb] = col_ok[r] ? p.b(kinfo[kb], cols[r]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kGemmTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t gm = m0 + ty + 16 * i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t gn = n0 + tx + 16 * j;
      if (gn >= N) continue;
      if (partial != nullptr)
        partial[(static_cast<int64_t>(blockIdx.z) * M + gm) * N + gn] = acc[i][j];
      else
        p.store(gm, gn, acc[i][j]);
    }
  }
}

// Adds the split-K partials in slice order and stores through the problem.
template <class Problem>
__global__ void gemm_split_sum_kernel(Problem p, int64_t M, int64_t N, int splits, const float* partial) {
  const int64_t total = M * N;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int z = 0; z < splits; ++z) sum += partial[z * total + e];
    p.store(e / N, e % N, sum);
  }
}

// Runs the product: picks the split of K, launches, checks every launch.
template <class Problem>
CudaStatus run_gemm(const Problem& p, int64_t M, int64_t N, int64_t K, const char* name) {
  if (M <= 0 || N <= 0) return CudaStatus::success();
  const int64_t tiles_m = (M + kGemmTileM - 1) / kGemmTileM, tiles_n = (N + kGemmTileN - 1) / kGemmTileN;
  if (tiles_m > 65535) return invalid(std::string(name) + ": too many rows for one grid");
  if (tiles_n > 2147483647LL) return invalid(std::string(name) + ": too many columns for one grid");
  // Enough blocks for about 4 per SM, but each slice at least 8 K steps long (the partials cost
  // splits M N floats, small exactly when there are few tiles).
  const int64_t tiles = tiles_m * tiles_n;
  const int64_t want_blocks = 4LL * sm_count();
  int64_t splits = 1;
  if (K > 0 && tiles < want_blocks) {
    splits = (want_blocks + tiles - 1) / tiles;
    const int64_t max_splits = (K + 8 * kGemmTileK - 1) / (8 * kGemmTileK);
    if (splits > max_splits) splits = max_splits;
    if (splits > 1024) splits = 1024;
    if (splits < 1) splits = 1;
  }
  int64_t k_per_split = (K + splits - 1) / splits;
  k_per_split = (k_per_split + kGemmTileK - 1) / kGemmTileK * kGemmTileK;
  if (k_per_split < kGemmTileK) k_per_split = kGemmTileK;
  splits = K > 0 ? (K + k_per_split - 1) / k_per_split : 1;

  Scratch partial;
  if (splits > 1) DCL_CUDA_RETURN_IF_ERROR(partial.allocate(static_cast<size_t>(splits * M * N) * sizeof(float)));
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m), static_cast<unsigned>(splits));
  tiled_gemm_kernel<Problem><<<grid, kGemmThreads>>>(p, M, N, K, k_per_split, splits > 1 ? partial.as<float>() : nullptr);
  DCL_CUDA_RETURN_IF_ERROR(check_launch(name));
  if (splits > 1) {
    gemm_split_sum_kernel<Problem><<<grid_for(M * N), kElementwiseThreads>>>(p, M, N, static_cast<int>(splits), partial.as<float>());
    DCL_CUDA_RETURN_IF_ERROR(check_launch(name));
  }
  return CudaStatus::success();
}

// db[c] = sum over the batch and the plane of dy[(b C + c) plane + i] (the bias gradients of
// conv2d and linear): one block per channel, a fixed-order tree sum. Defined in conv2d.cu.
CudaStatus channel_sum(const float* dy, int64_t batch, int64_t channels, int64_t plane, float* db, const char* name);

}  // namespace cuda
}  // namespace dcl
