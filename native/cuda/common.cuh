// What every CUDA translation unit shares: turning cudaError_t into a CudaStatus, checking a
// launch, grid sizes, and block-wide reductions. Internal to native/cuda/.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "dcl_cuda.h"

namespace dcl {
namespace cuda {

inline CudaStatus status_from(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return CudaStatus::success();
  CudaStatus s;
  s.code = error == cudaErrorMemoryAllocation ? CudaCode::out_of_memory : CudaCode::failed;
  s.message = std::string(what) + ": " + cudaGetErrorString(error);
  return s;
}

inline CudaStatus invalid(const std::string& message) {
  CudaStatus s;
  s.code = CudaCode::invalid;
  s.message = message;
  return s;
}

// After every <<<...>>>: a launch error (bad configuration, no kernel image for this device) is
// reported here; an error while the kernel runs surfaces at the next synchronising call.
inline CudaStatus check_launch(const char* kernel) { return status_from(cudaGetLastError(), kernel); }

#define DCL_CUDA_RETURN_IF_ERROR(expr)        \
  do {                                         \
    ::dcl::cuda::CudaStatus status_ = (expr);  \
    if (!status_.ok()) return status_;         \
  } while (0)

constexpr int kElementwiseThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the device, never above the
// grid limit (the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = kElementwiseThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = 65535LL * 8;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// Streaming multiprocessors of the device in use (for sizing split reductions).
int sm_count();

// A device scratch block from the caching allocator, given back when the owner goes out of scope
// (in stream order, see device_free).
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { device_free(ptr_); }
  CudaStatus allocate(size_t bytes) {
    device_free(ptr_);
    ptr_ = nullptr;
    return device_alloc(bytes, &ptr_);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// Sum over the block of one value per thread (blockDim.x a multiple of 32, at most 1024): the
// result in thread 0. The order of the additions is fixed by the thread numbers, so the result
// is the same on every run.
template <class T>
__device__ T block_sum(T value, T* shared32) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared32[warp] = value;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  if (warp == 0) {
    value = lane < warps ? shared32[lane] : T(0);
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  __syncthreads();
  return value;
}

// d/dalpha and d/dbeta of a pair loss: out[0] = sum_k first[k stride], out[1] = sum_k
// second[k stride], one block, fixed order (pair_loss.cu).
CudaStatus sum_pair_scalars(int64_t count, const double* first, const double* second, int64_t stride, double* out,
                            const char* name);

// The pair loss of one pair at y = alpha d - beta is softplus(-l y); its derivative in y is
// -l sigmoid(-l y). Both in float64 without overflow, written as the CPU writes them.
__device__ inline double softplus_device(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
__device__ inline double sigmoid_device(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}

}  // namespace cuda
}  // namespace dcl
