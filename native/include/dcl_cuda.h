// The CUDA backend's interface: plain C++ over device pointers, no CUDA header needed to include
// it (bindings/cuda.cpp is compiled by the host compiler). One launcher per op, with the shapes
// and conventions of the CPU kernels (dcl/kernels.h), whose serial versions are the oracles.
//
// Conventions:
// - every pointer argument of a launcher is device memory (from device_alloc), except where a
//   comment says host; outputs are overwritten, never accumulated into;
// - launches go to one stream in submission order (the legacy default stream), so a launcher
//   returns before the kernel finishes; a download waits for everything before it;
// - every launcher returns a CudaStatus: ok, or a code and a message. Nothing here throws across
//   the interface, calls exit() or abort(). A kernel that fails while running (an illegal address)
//   is reported by the next call that synchronises (a download), as CUDA reports it;
// - shapes were validated by lib/ (lib/cuda.ts); launchers check only what keeps the launch legal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dcl/kernels.h"

namespace dcl {
namespace cuda {

enum class CudaCode {
  ok = 0,
  unavailable,    // no usable device (no driver, no GPU, built without CUDA)
  out_of_memory,  // the device allocator could not get memory
  invalid,        // an argument the launcher cannot run with (E_ARG at the edge)
  failed,         // a CUDA call or launch failed (the message has cudaGetErrorString)
};

struct CudaStatus {
  CudaCode code = CudaCode::ok;
  std::string message;
  bool ok() const { return code == CudaCode::ok; }
  static CudaStatus success() { return {}; }
};

// ---- the device -------------------------------------------------------------------------------

struct CudaDeviceInfo {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int64_t memory_bytes = 0;
  int sm_count = 0;
};

struct CudaProbe {
  bool compiled = false;  // the kernels are in this binary
  bool usable = false;    // a device answered and the kernels run on it
  std::string reason;     // why not usable (cudaGetErrorString text), empty when usable
  std::vector<CudaDeviceInfo> devices;
};

// Asks the CUDA runtime once (the first call initialises it; later calls return the same answer).
// On a machine without a driver this reports cudaErrorInsufficientDriver's or
// cudaErrorNoDevice's text as the reason; the library loads either way (the runtime is linked
// statically and finds libcuda only at this call).
const CudaProbe& probe();
// ok when probe().usable, else CudaCode::unavailable with the reason. Every entry point below
// calls it first, so nothing touches the runtime on a machine where CUDA is not usable.
CudaStatus require_device();

// ---- memory: a caching allocator --------------------------------------------------------------
// Blocks are rounded up to size classes (powers of two from 512 bytes, then multiples of 2 MiB
// above 8 MiB) and kept on per-class free lists when freed, so a training step that frees and
// allocates the same sizes every step never calls cudaMalloc after the first. cudaMalloc failing
// releases every cached block and tries once more before reporting out_of_memory.

CudaStatus device_alloc(size_t bytes, void** ptr);
// Returns the block to its free list (nullptr is ignored). Safe to call while kernels that use
// the block are queued: the stream is in order, so the next user of the block runs after them.
void device_free(void* ptr);
// Gives every cached (free) block back to the driver.
CudaStatus device_release_cached();

struct AllocatorStats {
  int64_t bytes_in_use = 0;      // handed out and not freed
  int64_t bytes_cached = 0;      // on free lists
  int64_t device_allocations = 0;  // cudaMalloc calls so far
  int64_t reuses = 0;            // allocations served from a free list
};
AllocatorStats allocator_stats();

// Copies between host and device memory (in stream order; download waits for the result).
CudaStatus upload(void* device_dst, const void* host_src, size_t bytes);
CudaStatus download(void* host_dst, const void* device_src, size_t bytes);
CudaStatus copy_device(void* device_dst, const void* device_src, size_t bytes);
CudaStatus fill_zero(void* device_dst, size_t bytes);
// Waits for every queued kernel; reports an error a kernel met while running.
CudaStatus synchronize();

// ---- convolution (shape: dcl::Conv2dShape, NCHW, weights [Cout, Cin, KH, KW]) ----------------
CudaStatus conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
CudaStatus conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx);
// db may be nullptr (no bias gradient).
CudaStatus conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db);

// ---- pooling (shape: dcl::Pool2dShape) --------------------------------------------------------
// The CPU's winner rule exactly (kernels.h): same argmax, same y.
CudaStatus max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
// dx = sum of dy over the outputs whose argmax names the element, added in output order (the CPU
// kernel's order, so the result is bit-identical to it). check_argmax: first verify that every
// argmax lies inside its own window (a wait for the answer; CudaCode::invalid with the first bad
// index otherwise); without the check an argmax outside its window is simply never gathered.
CudaStatus max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx,
                               bool check_argmax);
// Fused |tanh| + max-pool (kernels.h): y = tanh(|x[winner]|).
CudaStatus abs_tanh_max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
CudaStatus abs_tanh_max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax,
                                        const float* x, const float* y, float* dx, bool check_argmax);

// ---- element-wise ------------------------------------------------------------------------------
CudaStatus abs_tanh_forward(int64_t n, const float* x, float* y);
CudaStatus abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y, float* dx);
CudaStatus sigmoid_forward(int64_t n, const float* x, float* y);
CudaStatus sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx);

// ---- fully connected (shape: dcl::LinearShape, w [out, in]) -----------------------------------
CudaStatus linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y);
CudaStatus linear_backward_input(const LinearShape& s, const float* dy, const float* w, float* dx);
CudaStatus linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, float* db);

// ---- pair losses (kernels.h: PairLossArgs) ----------------------------------------------------
// A batch of pairs on the device, with each image's occurrences in pair order (a CSR list built
// on the host, where the pairs are made): the per-image gradient sums then follow the CPU's order.
struct DevicePairBatch {
  int64_t images = 0, pairs = 0;
  int32_t* pair_index = nullptr;   // [P, 2]
  float* labels = nullptr;         // [P]
  float* weights = nullptr;        // [P] or nullptr
  int32_t* occ_offsets = nullptr;  // [N + 1]
  int32_t* occ_entries = nullptr;  // [2P]: 2k + side, grouped by image, pair order within
};
// Uploads host pairs / labels / weights (weights may be nullptr) and their occurrence lists.
CudaStatus pair_batch_upload(int64_t images, int64_t pairs, const int32_t* host_pairs, const float* host_labels,
                             const float* host_weights, DevicePairBatch* out);
void pair_batch_free(DevicePairBatch* batch);

// The loss arguments of a device call: alpha, beta, scale as in PairLossArgs; outputs on the
// device: loss [P] (float64), grad_scalars [2] (float64, d/dalpha, d/dbeta; nullptr without
// gradients).
struct DevicePairLoss {
  const DevicePairBatch* batch = nullptr;
  int64_t dims = 0;
  double alpha = 0, beta = 0, scale = 1;
  double* loss = nullptr;
  double* grad_scalars = nullptr;
};
// Technique 2 (binary codes, dims <= 64): expected loss by dynamic programming, float64.
// grad_p [N, n] or nullptr (forward only).
CudaStatus hamming_dp(const DevicePairLoss& a, const float* p, float* grad_p);
// Pair loss over the L1 distance of f, directions from s (kernels.h PairL1LossFn).
CudaStatus pair_l1_loss(const DevicePairLoss& a, const float* f, const float* s, float* grad_f);

// The training loss of one batch (lib/train.ts batchLoss, whose CPU code is the oracle):
// rounding / std / float through pair_l1_loss on 2^Q p (rounded codes for rounding and std), dp through
// hamming_dp, the spread term for std; native/cuda/batch_loss.cu. grad_p [N, n] receives dL/dp;
// result (device, float64 [3]) receives the loss (sum_k w_k loss_k / weight_sum, minus omega
// sum_i std_i for std), d/dalpha and d/dbeta.
enum class BatchLossMethod { rounding = 0, dp = 1, std_term = 2, unrounded = 3 };
struct BatchLossArgs {
  const DevicePairBatch* batch = nullptr;  // images = the batch's image count
  int64_t dims = 0;                        // n
  int levels = 2;                          // 2^Q
  BatchLossMethod method = BatchLossMethod::rounding;
  double alpha = 0, beta = 0;
  double weight_sum = 1;  // sum of the pair weights (the mean's denominator), > 0
  double omega = 0;       // std only
};
CudaStatus batch_loss(const BatchLossArgs& a, const float* p, float* grad_p, double* result);

// ---- codes ---------------------------------------------------------------------------------
CudaStatus quantize_pack(int64_t count, int n, int q, const float* p, int32_t* codes);
// k nearest by (distance, index), as the CPU code_knn; k <= kKnnMaxK.
constexpr int64_t kKnnMaxK = 64;
CudaStatus code_knn(const CodeScanShape& s, const int32_t* database, const int32_t* queries, int64_t k,
                    int32_t* indices, uint32_t* distances);

// ---- optimiser -------------------------------------------------------------------------------
// Adam / AdamW in place, the CPU's float32 operations in the same order (kernels.h AdamUpdateFn):
// bit-identical to the serial kernel.
CudaStatus adam_update(int64_t n, float* param, const float* grad, float* m, float* v, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double bias_correction1,
                       double bias_correction2_sqrt);

// ---- the device's limits (benchmarks) --------------------------------------------------------
// FP32 fused multiply-add throughput of independent chains over the whole device, GFLOP/s.
CudaStatus fma_peak(double seconds, double* gflops);
// Device-to-device copy of `bytes`, repeated: GB/s counting bytes read plus bytes written.
CudaStatus copy_bandwidth(size_t bytes, int repeats, double* gbytes_per_second);

}  // namespace cuda
}  // namespace dcl
