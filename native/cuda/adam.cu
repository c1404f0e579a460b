// Adam / AdamW update in place, element-wise (native/cpu/adam_serial.cpp). The constants are
// derived on the host exactly as the CPU derives them (float64, each rounded to float32 once), and
// every float32 operation is the CPU's, rounded once, in the CPU's order (the __f*_rn intrinsics
// keep nvcc from contracting a multiply and an add; sqrtf and division are IEEE-rounded without
// fast-math): the result is bit-identical to the serial kernel.
#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

struct AdamConstants {
  float decay, b1, c1, b2, c2, step, bc2, eps;
};

__global__ void adam_kernel(int64_t n, float* param, const float* grad, float* m, float* v, AdamConstants k) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i];
    const float p = __fmul_rn(param[i], k.decay);
    const float mi = __fadd_rn(__fmul_rn(k.b1, m[i]), __fmul_rn(k.c1, g));
    const float vi = __fadd_rn(__fmul_rn(k.b2, v[i]), __fmul_rn(k.c2, __fmul_rn(g, g)));
    m[i] = mi;
    v[i] = vi;
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2), k.eps);
    param[i] = __fsub_rn(p, __fmul_rn(k.step, __fdiv_rn(mi, denom)));
  }
}

}  // namespace

CudaStatus adam_update(int64_t n, float* param, const float* grad, float* m, float* v, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double bias_correction1,
                       double bias_correction2_sqrt) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (n <= 0) return CudaStatus::success();
  AdamConstants k;
  k.decay = static_cast<float>(1.0 - lr * weight_decay);
  k.b1 = static_cast<float>(beta1);
  k.c1 = static_cast<float>(1.0 - beta1);
  k.b2 = static_cast<float>(beta2);
  k.c2 = static_cast<float>(1.0 - beta2);
  k.step = static_cast<float>(lr / bias_correction1);
  k.bc2 = static_cast<float>(bias_correction2_sqrt);
  k.eps = static_cast<float>(eps);
  adam_kernel<<<grid_for(n), kElementwiseThreads>>>(n, param, grad, m, v, k);
  return check_launch("adam_update");
}

}  // namespace cuda
}  // namespace dcl
