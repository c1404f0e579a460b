// Max-pooling and the fused |tanh| + max-pool, forward and backward.
//
// Forward: one thread per output walks its window row by row with the CPU's winner rule
// (kernels.h), so argmax and y are those of the serial kernel (the fused y within tanhf's 2 ulp).
// Backward: the gather form: one thread per input element adds the dy of every output whose
// argmax names it, in output order, starting from 0, which is the order the CPU's scatter adds
// them in: the same float operations, so the result is bit-identical (no atomics, no race
// between overlapping windows). An element belongs to the windows oy in
// [ceil((iy - KH + 1) / SH), floor(iy / SH)] (and likewise ox), clipped to the output.
#include <climits>

#include "common.cuh"

namespace dcl {
namespace cuda {
namespace {

struct PoolDims {
  int64_t planes, h, w, kh, kw, sh, sw, oh, ow;
  explicit PoolDims(const Pool2dShape& s)
      : planes(s.batch * s.channels), h(s.in_h), w(s.in_w), kh(s.kernel_h), kw(s.kernel_w), sh(s.stride_h),
        sw(s.stride_w), oh(s.out_h()), ow(s.out_w()) {}
};

template <bool kAbsTanh>
__global__ void pool_forward_kernel(PoolDims d, const float* x, float* y, int32_t* argmax) {
  const int64_t per_plane = d.oh * d.ow, total = d.planes * per_plane;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = e / per_plane, o = e - p * per_plane, oy = o / d.ow, ox = o - oy * d.ow;
    const float* xp = x + p * d.h * d.w;
    // The CPU's rule: start below every candidate with the window's first element as the winner,
    // take an element only when strictly greater (NaN never takes over, ties keep the first).
    float best = kAbsTanh ? -1.0f : -INFINITY;
    int64_t best_index = (oy * d.sh) * d.w + ox * d.sw;
    for (int64_t ky = 0; ky < d.kh; ++ky) {
      const int64_t row = (oy * d.sh + ky) * d.w + ox * d.sw;
      for (int64_t kx = 0; kx < d.kw; ++kx) {
        const float v = kAbsTanh ? fabsf(xp[row + kx]) : xp[row + kx];
        if (v > best) {
          best = v;
          best_index = row + kx;
        }
      }
    }
    y[e] = kAbsTanh ? tanhf(fabsf(xp[best_index])) : xp[best_index];
    argmax[e] = static_cast<int32_t>(best_index);
  }
}

template <bool kAbsTanh>
__global__ void pool_backward_kernel(PoolDims d, const float* dy, const int32_t* argmax, const float* x, const float* y,
                                     float* dx) {
  const int64_t plane = d.h * d.w, per_plane = d.oh * d.ow, total = d.planes * plane;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = e / plane, i = e - p * plane, iy = i / d.w, ix = i - iy * d.w;
    // Windows oy with oy SH <= iy <= oy SH + KH - 1.
    const int64_t oy_lo = iy >= d.kh ? (iy - d.kh + d.sh) / d.sh : 0;
    const int64_t oy_hi = iy / d.sh < d.oh - 1 ? iy / d.sh : d.oh - 1;
    const int64_t ox_lo = ix >= d.kw ? (ix - d.kw + d.sw) / d.sw : 0;
    const int64_t ox_hi = ix / d.sw < d.ow - 1 ? ix / d.sw : d.ow - 1;
    float sign = 0.0f;
    if (kAbsTanh) sign = x[e] > 0.0f ? 1.0f : (x[e] < 0.0f ? -1.0f : 0.0f);
    float acc = 0.0f;
    for (int64_t oy = oy_lo; oy <= oy_hi; ++oy)
      for (int64_t ox = ox_lo; ox <= ox_hi; ++ox) {
        const int64_t o = p * per_plane + oy * d.ow + ox;
        if (argmax[o] != i) continue;
        if (kAbsTanh) {
          // dy * sign * (1 - y^2), each operation rounded as the CPU rounds it (no contraction).
          const float yv = y[o];
          acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(dy[o], sign), __fsub_rn(1.0f, __fmul_rn(yv, yv))));
        } else {
          acc = __fadd_rn(acc, dy[o]);
        }
      }
    dx[e] = acc;
  }
}

// first_bad = the smallest output index whose argmax is not inside its own window.
__global__ void argmax_check_kernel(PoolDims d, const int32_t* argmax, int* first_bad) {
  const int64_t per_plane = d.oh * d.ow, total = d.planes * per_plane, plane = d.h * d.w;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = e % per_plane, oy = o / d.ow, ox = o - oy * d.ow;
    const int64_t a = argmax[e];
    bool ok = a >= 0 && a < plane;
    if (ok) {
      const int64_t ay = a / d.w, ax = a - ay * d.w;
      ok = ay >= oy * d.sh && ay < oy * d.sh + d.kh && ax >= ox * d.sw && ax < ox * d.sw + d.kw;
    }
    if (!ok) atomicMin(first_bad, static_cast<int>(e));
  }
}

CudaStatus check_argmax_windows(const PoolDims& d, const int32_t* argmax, const char* name) {
  Scratch flag;
  DCL_CUDA_RETURN_IF_ERROR(flag.allocate(sizeof(int)));
  const int none = INT_MAX;
  DCL_CUDA_RETURN_IF_ERROR(upload(flag.as<int>(), &none, sizeof(int)));
  argmax_check_kernel<<<grid_for(d.planes * d.oh * d.ow), kElementwiseThreads>>>(d, argmax, flag.as<int>());
  DCL_CUDA_RETURN_IF_ERROR(check_launch(name));
  int first = INT_MAX;
  DCL_CUDA_RETURN_IF_ERROR(download(&first, flag.as<int>(), sizeof(int)));
  if (first != INT_MAX)
    return invalid(std::string("Expected every argmax inside its own pooling window (as the forward pass writes it) for argmax but received a value outside at index ") +
                   std::to_string(first));
  return CudaStatus::success();
}

template <bool kAbsTanh>
CudaStatus pool_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax, const char* name) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  const PoolDims d(s);
  if (d.oh <= 0 || d.ow <= 0 || d.planes <= 0) return CudaStatus::success();
  pool_forward_kernel<kAbsTanh><<<grid_for(d.planes * d.oh * d.ow), kElementwiseThreads>>>(d, x, y, argmax);
  return check_launch(name);
}

template <bool kAbsTanh>
CudaStatus pool_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, const float* x, const float* y,
                         float* dx, bool check, const char* name) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  const PoolDims d(s);
  if (d.planes <= 0 || d.h * d.w <= 0) return CudaStatus::success();
  if (check && d.oh > 0 && d.ow > 0) DCL_CUDA_RETURN_IF_ERROR(check_argmax_windows(d, argmax, name));
  pool_backward_kernel<kAbsTanh><<<grid_for(d.planes * d.h * d.w), kElementwiseThreads>>>(d, dy, argmax, x, y, dx);
  return check_launch(name);
}

}  // namespace

CudaStatus max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  return pool_forward<false>(s, x, y, argmax, "max_pool2d_forward");
}

CudaStatus max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx, bool check_argmax) {
  return pool_backward<false>(s, dy, argmax, nullptr, nullptr, dx, check_argmax, "max_pool2d_backward");
}

CudaStatus abs_tanh_max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  return pool_forward<true>(s, x, y, argmax, "abs_tanh_max_pool2d_forward");
}

CudaStatus abs_tanh_max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, const float* x,
                                        const float* y, float* dx, bool check_argmax) {
  return pool_backward<true>(s, dy, argmax, x, y, dx, check_argmax, "abs_tanh_max_pool2d_backward");
}

}  // namespace cuda
}  // namespace dcl
