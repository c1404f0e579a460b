// The device's limits, which the benchmarks quote beside every kernel: FP32 multiply-add
// throughput (independent FMA chains in every thread of a full grid) and device-to-device copy
// bandwidth (cudaMemcpyAsync on a large buffer), both timed with CUDA events.
#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

constexpr int kPeakChains = 8;        // independent chains per thread: hides the FMA latency
constexpr int kPeakThreads = 256;
constexpr int kPeakInnerSteps = 256;  // unrolled FMAs per chain between loop tests

__global__ void fma_peak_kernel(int iterations, float seed, float* sink) {
  float v[kPeakChains];
#pragma unroll
  for (int c = 0; c < kPeakChains; ++c) v[c] = seed + static_cast<float>(threadIdx.x + c);
  const float mul = 0.999999f, add = 1e-7f;
  for (int it = 0; it < iterations; ++it) {
#pragma unroll
    for (int s = 0; s < kPeakInnerSteps; ++s)
#pragma unroll
      for (int c = 0; c < kPeakChains; ++c) v[c] = fmaf(v[c], mul, add);
  }
  float total = 0.0f;
#pragma unroll
  for (int c = 0; c < kPeakChains; ++c) total += v[c];
  // Stored only in an impossible case, but the compiler cannot know it: the chains stay.
  if (total == 12345.678f) sink[blockIdx.x * blockDim.x + threadIdx.x] = total;
}

// Times one launch with events (milliseconds).
template <class Launch>
CudaStatus time_ms(Launch launch, float* ms) {
  cudaEvent_t start = nullptr, stop = nullptr;
  CudaStatus s = status_from(cudaEventCreate(&start), "cudaEventCreate");
  if (s.ok()) s = status_from(cudaEventCreate(&stop), "cudaEventCreate");
  if (s.ok()) s = status_from(cudaEventRecord(start, 0), "cudaEventRecord");
  if (s.ok()) s = launch();
  if (s.ok()) s = status_from(cudaEventRecord(stop, 0), "cudaEventRecord");
  if (s.ok()) s = status_from(cudaEventSynchronize(stop), "cudaEventSynchronize");
  if (s.ok()) s = status_from(cudaEventElapsedTime(ms, start, stop), "cudaEventElapsedTime");
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  return s;
}

}  // namespace

CudaStatus fma_peak(double seconds, double* gflops) {
  *gflops = 0;
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  const int blocks = 8 * sm_count();
  Scratch sink;
  DCL_CUDA_RETURN_IF_ERROR(sink.allocate(sizeof(float) * blocks * kPeakThreads));
  auto run = [&](int iterations, float* ms) {
    return time_ms(
        [&] {
          fma_peak_kernel<<<blocks, kPeakThreads>>>(iterations, 1.0f, sink.as<float>());
          return check_launch("fma_peak");
        },
        ms);
  };
  // Calibrate on a short run, then run for about `seconds`.
  float ms = 0;
  int iterations = 16;
  DCL_CUDA_RETURN_IF_ERROR(run(iterations, &ms));
  while (ms < 20.0f && iterations < (1 << 24)) {
    iterations *= 4;
    DCL_CUDA_RETURN_IF_ERROR(run(iterations, &ms));
  }
  const double target_ms = seconds * 1000.0;
  if (ms < target_ms) {
    const double scaled = iterations * (target_ms / ms);
    iterations = static_cast<int>(scaled < (1 << 28) ? scaled : (1 << 28));
    DCL_CUDA_RETURN_IF_ERROR(run(iterations, &ms));
  }
  const double flops = 2.0 * kPeakChains * kPeakInnerSteps * static_cast<double>(iterations) * blocks * kPeakThreads;
  *gflops = flops / (ms * 1e-3) / 1e9;
  return CudaStatus::success();
}

CudaStatus copy_bandwidth(size_t bytes, int repeats, double* gbytes_per_second) {
  *gbytes_per_second = 0;
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (bytes == 0 || repeats < 1) return invalid("copy_bandwidth: need bytes > 0 and repeats >= 1");
  Scratch from, to;
  DCL_CUDA_RETURN_IF_ERROR(from.allocate(bytes));
  DCL_CUDA_RETURN_IF_ERROR(to.allocate(bytes));
  DCL_CUDA_RETURN_IF_ERROR(fill_zero(from.as<void>(), bytes));
  DCL_CUDA_RETURN_IF_ERROR(copy_device(to.as<void>(), from.as<void>(), bytes));  // warm-up
  float ms = 0;
  DCL_CUDA_RETURN_IF_ERROR(time_ms(
      [&] {
        for (int r = 0; r < repeats; ++r) DCL_CUDA_RETURN_IF_ERROR(copy_device(to.as<void>(), from.as<void>(), bytes));
        return CudaStatus::success();
      },
      &ms));
  *gbytes_per_second = 2.0 * static_cast<double>(bytes) * repeats / (ms * 1e-3) / 1e9;
  return CudaStatus::success();
}

}  // namespace cuda
}  // namespace dcl
