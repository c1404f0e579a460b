// The device probe, the caching allocator and the host <-> device copies.
//
// The runtime is linked statically (CMakeLists.txt), so this library loads on a machine without a
// GPU driver: the runtime looks for libcuda only when probe() first calls it, and then reports
// why it cannot run (cudaErrorInsufficientDriver, cudaErrorNoDevice) instead of failing to load.
#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

__global__ void noop_kernel(int* out) {
  if (out != nullptr && threadIdx.x == 0 && blockIdx.x == 0) *out = 1;
}

CudaProbe run_probe() {
  CudaProbe p;
  p.compiled = true;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    p.reason = cudaGetErrorString(e);
    cudaGetLastError();  // clear the error so later calls start clean
    return p;
  }
  if (count == 0) {
    p.reason = cudaGetErrorString(cudaErrorNoDevice);
    return p;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    CudaDeviceInfo info;
    info.name = prop.name;
    info.major = prop.major;
    info.minor = prop.minor;
    info.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
    info.sm_count = prop.multiProcessorCount;
    p.devices.push_back(info);
  }
  // A device is only usable if this binary holds code it can run (a real architecture or the
  // PTX the driver can compile): launch an empty kernel and wait for it.
  e = cudaSetDevice(0);
  if (e == cudaSuccess) {
    noop_kernel<<<1, 32>>>(nullptr);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
  }
  if (e != cudaSuccess) {
    p.reason = cudaGetErrorString(e);
    cudaGetLastError();
    return p;
  }
  p.usable = true;
  return p;
}

// ---- the caching allocator -------------------------------------------------------------------

constexpr size_t kMinBlock = 512;
constexpr size_t kLargeStep = size_t(2) << 20;  // 2 MiB
constexpr size_t kPowerOfTwoLimit = size_t(8) << 20;

size_t size_class(size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  if (bytes <= kPowerOfTwoLimit) {
    size_t c = kMinBlock;
    while (c < bytes) c <<= 1;
    return c;
  }
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

struct Allocator {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // size class -> free blocks
  std::unordered_map<void*, size_t> in_use;                   // block -> size class
  AllocatorStats stats;

  // Gives every free block back to the driver (mutex held by the caller).
  cudaError_t release_locked() {
    cudaError_t first = cudaSuccess;
    for (auto& entry : free_lists)
      for (void* p : entry.second) {
        cudaError_t e = cudaFree(p);
        if (first == cudaSuccess) first = e;
      }
    free_lists.clear();
    stats.bytes_cached = 0;
    return first;
  }
};

Allocator& allocator() {
  // Never destroyed: CUDA may already be torn down when static destructors run at exit.
  static Allocator* a = new Allocator();
  return *a;
}

}  // namespace

const CudaProbe& probe() {
  static std::once_flag once;
  static CudaProbe* result = nullptr;
  std::call_once(once, [] { result = new CudaProbe(run_probe()); });
  return *result;
}

CudaStatus require_device() {
  const CudaProbe& p = probe();
  if (p.usable) return CudaStatus::success();
  CudaStatus s;
  s.code = CudaCode::unavailable;
  s.message = "CUDA is not usable: " + p.reason;
  return s;
}

int sm_count() {
  const CudaProbe& p = probe();
  return p.devices.empty() ? 1 : std::max(1, p.devices[0].sm_count);
}

CudaStatus device_alloc(size_t bytes, void** ptr) {
  *ptr = nullptr;
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  const size_t c = size_class(bytes == 0 ? 1 : bytes);
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.free_lists.find(c);
  if (it != a.free_lists.end() && !it->second.empty()) {
    *ptr = it->second.back();
    it->second.pop_back();
    a.in_use[*ptr] = c;
    a.stats.bytes_cached -= static_cast<int64_t>(c);
    a.stats.bytes_in_use += static_cast<int64_t>(c);
    a.stats.reuses++;
    return CudaStatus::success();
  }
  cudaError_t e = cudaMalloc(ptr, c);
  if (e == cudaErrorMemoryAllocation) {
    // The cache may hold the memory in other size classes: give it back and try once more.
    cudaGetLastError();
    a.release_locked();
    e = cudaMalloc(ptr, c);
  }
  if (e != cudaSuccess) {
    *ptr = nullptr;
    cudaGetLastError();
    CudaStatus s = status_from(e, ("cudaMalloc of " + std::to_string(c) + " bytes").c_str());
    return s;
  }
  a.in_use[*ptr] = c;
  a.stats.bytes_in_use += static_cast<int64_t>(c);
  a.stats.device_allocations++;
  return CudaStatus::success();
}

void device_free(void* ptr) {
  if (ptr == nullptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.in_use.find(ptr);
  if (it == a.in_use.end()) return;  // not ours (or freed twice): ignore rather than corrupt the lists
  const size_t c = it->second;
  a.in_use.erase(it);
  a.free_lists[c].push_back(ptr);
  a.stats.bytes_in_use -= static_cast<int64_t>(c);
  a.stats.bytes_cached += static_cast<int64_t>(c);
}

CudaStatus device_release_cached() {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  // cudaFree waits for the device, so blocks still used by queued kernels are safe to release.
  return status_from(a.release_locked(), "cudaFree");
}

AllocatorStats allocator_stats() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.stats;
}

CudaStatus upload(void* device_dst, const void* host_src, size_t bytes) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (bytes == 0) return CudaStatus::success();
  return status_from(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice), "upload (cudaMemcpy)");
}

CudaStatus download(void* host_dst, const void* device_src, size_t bytes) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (bytes == 0) return synchronize();
  return status_from(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost), "download (cudaMemcpy)");
}

CudaStatus copy_device(void* device_dst, const void* device_src, size_t bytes) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (bytes == 0) return CudaStatus::success();
  return status_from(cudaMemcpyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice, 0), "cudaMemcpyAsync");
}

CudaStatus fill_zero(void* device_dst, size_t bytes) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (bytes == 0) return CudaStatus::success();
  return status_from(cudaMemsetAsync(device_dst, 0, bytes, 0), "cudaMemsetAsync");
}

CudaStatus synchronize() {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  return status_from(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

}  // namespace cuda
}  // namespace dcl
