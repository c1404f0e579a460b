// |tanh| and sigmoid, forward and backward: grid-stride loops, one element per thread per step.
// The backward formulas are the CPU's with every operation rounded as the CPU rounds it (the
// __f*_rn intrinsics keep nvcc from fusing a multiply and an add), so they are bit-identical to
// the serial kernel; the forwards use CUDA's tanhf / expf (within 2 ulp of libm).
#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

#define DCL_GRID_STRIDE(i, n)                                                                  \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void abs_tanh_forward_kernel(int64_t n, const float* x, float* y) {
  DCL_GRID_STRIDE(i, n) y[i] = fabsf(tanhf(x[i]));
}

__global__ void abs_tanh_backward_kernel(int64_t n, const float* dy, const float* x, const float* y, float* dx) {
  DCL_GRID_STRIDE(i, n) {
    const float xv = x[i], yv = y[i];
    const float sign = xv > 0.0f ? 1.0f : (xv < 0.0f ? -1.0f : 0.0f);
    dx[i] = __fmul_rn(__fmul_rn(dy[i], sign), __fsub_rn(1.0f, __fmul_rn(yv, yv)));
  }
}

__global__ void sigmoid_forward_kernel(int64_t n, const float* x, float* y) {
  DCL_GRID_STRIDE(i, n) y[i] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x[i])));
}

__global__ void sigmoid_backward_kernel(int64_t n, const float* dy, const float* y, float* dx) {
  DCL_GRID_STRIDE(i, n) {
    const float yv = y[i];
    dx[i] = __fmul_rn(__fmul_rn(dy[i], yv), __fsub_rn(1.0f, yv));
  }
}

}  // namespace

CudaStatus abs_tanh_forward(int64_t n, const float* x, float* y) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (n <= 0) return CudaStatus::success();
  abs_tanh_forward_kernel<<<grid_for(n), kElementwiseThreads>>>(n, x, y);
  return check_launch("abs_tanh_forward");
}

CudaStatus abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y, float* dx) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (n <= 0) return CudaStatus::success();
  abs_tanh_backward_kernel<<<grid_for(n), kElementwiseThreads>>>(n, dy, x, y, dx);
  return check_launch("abs_tanh_backward");
}

CudaStatus sigmoid_forward(int64_t n, const float* x, float* y) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (n <= 0) return CudaStatus::success();
  sigmoid_forward_kernel<<<grid_for(n), kElementwiseThreads>>>(n, x, y);
  return check_launch("sigmoid_forward");
}

CudaStatus sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  if (n <= 0) return CudaStatus::success();
  sigmoid_backward_kernel<<<grid_for(n), kElementwiseThreads>>>(n, dy, y, dx);
  return check_launch("sigmoid_backward");
}

}  // namespace cuda
}  // namespace dcl
