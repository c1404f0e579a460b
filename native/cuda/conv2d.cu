// conv2d forward and both gradients as implicit GEMMs on the shared tiled product (gemm.cuh).
// No im2col buffer: each tile load computes the tensor position of its element.
//
//   forward:          y[n, co, p]      = sum over (ci, ky, kx) of w[co, ci, ky, kx] x[n, ci, p + (ky, kx)]
//                     M = Cout, N = batch OH OW, K = Cin KH KW
//   backward input:   dx[n, ci, q]     = sum over (co, ky, kx) of w[co, ci, ky, kx] dy[n, co, (q - (ky, kx)) / stride]
//                     M = Cin, N = batch H W, K = Cout KH KW (terms whose output position is not
//                     on the stride grid or outside the output are zero: the gather form, so no
//                     two threads write one element)
//   backward weight:  dw[co, ci, ky, kx] = sum over (n, p) of dy[n, co, p] x[n, ci, p + (ky, kx)]
//                     M = Cout, N = Cin KH KW, K = batch OH OW (split along K, see gemm.cuh)
// Positions p + (ky, kx) mean (oy stride_h + ky - pad_h, ox stride_w + kx - pad_w); outside the
// input they read zero (the padding).
#include "gemm.cuh"

namespace dcl {
namespace cuda {
namespace {

struct ConvDims {
  int64_t batch, cin, h, w, cout, kh, kw, sh, sw, ph, pw, oh, ow;
  explicit ConvDims(const Conv2dShape& s)
      : batch(s.batch), cin(s.in_channels), h(s.in_h), w(s.in_w), cout(s.out_channels), kh(s.kernel_h),
        kw(s.kernel_w), sh(s.stride_h), sw(s.stride_w), ph(s.pad_h), pw(s.pad_w), oh(s.out_h()), ow(s.out_w()) {}
};

struct ConvForwardProblem {
  static constexpr bool kAContiguousK = true;   // w[co, k]
  static constexpr bool kBContiguousK = false;  // x along the output pixels
  ConvDims d;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t K;

  struct KInfo {
    int64_t k, x_off;  // k = (ci, ky, kx); x_off = ci H W + ky W + kx
    int ky, kx;
    bool valid;
  };
  struct RowInfo {
    int64_t w_row;
  };
  struct ColInfo {
    int64_t x_base;  // n Cin H W + iy0 W + ix0
    int iy0, ix0;    // top-left input position of the window (may be negative: padding)
  };
  __host__ __device__ KInfo k_info(int64_t k, bool valid) const {
    const int64_t area = d.kh * d.kw;
    const int64_t ci = k / area, r = k - ci * area, ky = r / d.kw, kx = r - ky * d.kw;
    return {k, (ci * d.h + ky) * d.w + kx, static_cast<int>(ky), static_cast<int>(kx), valid};
  }
  __host__ __device__ RowInfo row_info(int64_t m) const { return {m * K}; }
  __host__ __device__ ColInfo col_info(int64_t n) const {
    const int64_t plane = d.oh * d.ow, nb = n / plane, pix = n - nb * plane, oy = pix / d.ow, ox = pix - oy * d.ow;
    const int64_t iy0 = oy * d.sh - d.ph, ix0 = ox * d.sw - d.pw;
    return {nb * d.cin * d.h * d.w + iy0 * d.w + ix0, static_cast<int>(iy0), static_cast<int>(ix0)};
  }
  __host__ __device__ float a(const RowInfo& r, const KInfo& k) const { return k.valid ? w[r.w_row + k.k] : 0.0f; }
  __host__ __device__ float b(const KInfo& k, const ColInfo& c) const {
    const int iy = c.iy0 + k.ky, ix = c.ix0 + k.kx;
    if (!k.valid || iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) return 0.0f;
    return x[c.x_base + k.x_off];
  }
  __host__ __device__ void store(int64_t m, int64_t n, float v) const {
    const int64_t plane = d.oh * d.ow, nb = n / plane, pix = n - nb * plane;
    y[(nb * d.cout + m) * plane + pix] = bias != nullptr ? v + bias[m] : v;
  }
};

struct ConvBackwardInputProblem {
  static constexpr bool kAContiguousK = true;   // w[co, ci, ky, kx]: (ky, kx) contiguous
  static constexpr bool kBContiguousK = false;  // dy along the input pixels
  ConvDims d;
  const float* dy;
  const float* w;
  float* dx;

  struct KInfo {
    int64_t w_off, dy_off;  // co Cin KH KW + (ky KW + kx); co OH OW
    int ky, kx;
    bool valid;
  };
  struct RowInfo {
    int64_t w_row;  // ci KH KW
  };
  struct ColInfo {
    int64_t dy_base;  // n Cout OH OW
    int ty0, tx0;     // iy + pad_h, ix + pad_w
  };
  __host__ __device__ KInfo k_info(int64_t k, bool valid) const {
    const int64_t area = d.kh * d.kw;
    const int64_t co = k / area, r = k - co * area, ky = r / d.kw, kx = r - ky * d.kw;
    return {co * d.cin * area + r, co * d.oh * d.ow, static_cast<int>(ky), static_cast<int>(kx), valid};
  }
  __host__ __device__ RowInfo row_info(int64_t m) const { return {m * d.kh * d.kw}; }
  __host__ __device__ ColInfo col_info(int64_t n) const {
    const int64_t plane = d.h * d.w, nb = n / plane, pix = n - nb * plane, iy = pix / d.w, ix = pix - iy * d.w;
    return {nb * d.cout * d.oh * d.ow, static_cast<int>(iy + d.ph), static_cast<int>(ix + d.pw)};
  }
  __host__ __device__ float a(const RowInfo& r, const KInfo& k) const { return k.valid ? w[k.w_off + r.w_row] : 0.0f; }
  __host__ __device__ float b(const KInfo& k, const ColInfo& c) const {
    const int ty = c.ty0 - k.ky, tx = c.tx0 - k.kx;
    if (!k.valid || ty < 0 || tx < 0) return 0.0f;
    int oy = ty, ox = tx;
    if (d.sh != 1) {
      if (ty % d.sh != 0) return 0.0f;
      oy = ty / static_cast<int>(d.sh);
    }
    if (d.sw != 1) {
      if (tx % d.sw != 0) return 0.0f;
      ox = tx / static_cast<int>(d.sw);
    }
    if (oy >= d.oh || ox >= d.ow) return 0.0f;
    return dy[c.dy_base + k.dy_off + static_cast<int64_t>(oy) * d.ow + ox];
  }
  __host__ __device__ void store(int64_t m, int64_t n, float v) const {
    const int64_t plane = d.h * d.w, nb = n / plane, pix = n - nb * plane;
    dx[(nb * d.cin + m) * plane + pix] = v;
  }
};

struct ConvBackwardWeightProblem {
  static constexpr bool kAContiguousK = true;  // dy[n, co, p]: p contiguous
  static constexpr bool kBContiguousK = true;  // x along the output pixels (stride apart)
  ConvDims d;
  const float* x;
  const float* dy;
  float* dw;
  int64_t N;

  struct KInfo {
    int64_t dy_off, x_base;  // n Cout OH OW + p; n Cin H W
    int iy0, ix0;            // oy stride - pad, ox stride - pad
    bool valid;
  };
  struct RowInfo {
    int64_t dy_row;  // co OH OW
  };
  struct ColInfo {
    int64_t x_off;  // ci H W
    int ky, kx;
  };
  __host__ __device__ KInfo k_info(int64_t k, bool valid) const {
    const int64_t plane = d.oh * d.ow, nb = k / plane, pix = k - nb * plane, oy = pix / d.ow, ox = pix - oy * d.ow;
    return {nb * d.cout * plane + pix, nb * d.cin * d.h * d.w, static_cast<int>(oy * d.sh - d.ph),
            static_cast<int>(ox * d.sw - d.pw), valid};
  }
  __host__ __device__ RowInfo row_info(int64_t m) const { return {m * d.oh * d.ow}; }
  __host__ __device__ ColInfo col_info(int64_t n) const {
    const int64_t area = d.kh * d.kw, ci = n / area, r = n - ci * area, ky = r / d.kw, kx = r - ky * d.kw;
    return {ci * d.h * d.w, static_cast<int>(ky), static_cast<int>(kx)};
  }
  __host__ __device__ float a(const RowInfo& r, const KInfo& k) const { return k.valid ? dy[k.dy_off + r.dy_row] : 0.0f; }
  __host__ __device__ float b(const KInfo& k, const ColInfo& c) const {
    const int iy = k.iy0 + c.ky, ix = k.ix0 + c.kx;
    if (!k.valid || iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) return 0.0f;
    return x[k.x_base + c.x_off + static_cast<int64_t>(iy) * d.w + ix];
  }
  __host__ __device__ void store(int64_t m, int64_t n, float v) const { dw[m * N + n] = v; }
};

constexpr int kChannelSumThreads = 256;

__global__ void channel_sum_kernel(const float* dy, int64_t batch, int64_t channels, int64_t plane, float* db) {
  __shared__ float partial[32];
  const int64_t c = blockIdx.x;
  const int64_t count = batch * plane;
  float s = 0.0f;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t nb = e / plane, i = e - nb * plane;
    s += dy[(nb * channels + c) * plane + i];
  }
  s = block_sum(s, partial);
  if (threadIdx.x == 0) db[c] = s;
}

}  // namespace

CudaStatus channel_sum(const float* dy, int64_t batch, int64_t channels, int64_t plane, float* db, const char* name) {
  if (channels <= 0) return CudaStatus::success();
  if (channels > 2147483647LL) return invalid(std::string(name) + ": too many channels");
  channel_sum_kernel<<<static_cast<unsigned>(channels), kChannelSumThreads>>>(dy, batch, channels, plane, db);
  return check_launch(name);
}

CudaStatus conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  ConvForwardProblem p{ConvDims(s), x, w, b, y, s.in_channels * s.kernel_h * s.kernel_w};
  return run_gemm(p, s.out_channels, s.batch * s.out_h() * s.out_w(), p.K, "conv2d_forward");
}

CudaStatus conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  ConvBackwardInputProblem p{ConvDims(s), dy, w, dx};
  return run_gemm(p, s.in_channels, s.batch * s.in_h * s.in_w, s.out_channels * s.kernel_h * s.kernel_w,
                  "conv2d_backward_input");
}

CudaStatus conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  DCL_CUDA_RETURN_IF_ERROR(require_device());
  const int64_t n_cols = s.in_channels * s.kernel_h * s.kernel_w;
  ConvBackwardWeightProblem p{ConvDims(s), x, dy, dw, n_cols};
  DCL_CUDA_RETURN_IF_ERROR(run_gemm(p, s.out_channels, n_cols, s.batch * s.out_h() * s.out_w(), "conv2d_backward_weight"));
  if (db != nullptr)
    DCL_CUDA_RETURN_IF_ERROR(channel_sum(dy, s.batch, s.out_channels, s.out_h() * s.out_w(), db, "conv2d_backward_weight (bias)"));
  return CudaStatus::success();
}

}  // namespace cuda
}  // namespace dcl
