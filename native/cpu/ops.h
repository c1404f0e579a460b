// Declarations of every CPU kernel, one namespace per ISA. dispatch.cpp gathers them into the
// CpuKernels tables; each ISA's definitions live in their own translation units (serial: plain
// C++; avx2 / avx512: compiled with that ISA's flags only, see CMakeLists.txt).
#pragma once

#include "dcl/kernels.h"

#define DCL_DECLARE_CPU_KERNELS                                                                  \
  void conv2d_forward(const Conv2dShape&, const float* x, const float* w, const float* b,      \
                      float* y);                                                               \
  void conv2d_backward_input(const Conv2dShape&, const float* dy, const float* w, float* dx);  \
  void conv2d_backward_weight(const Conv2dShape&, const float* x, const float* dy, float* dw,  \
                              float* db);                                                      \
  void max_pool2d_forward(const Pool2dShape&, const float* x, float* y, int32_t* argmax);      \
  void max_pool2d_backward(const Pool2dShape&, const float* dy, const int32_t* argmax,         \
                           float* dx);                                                         \
  void abs_tanh_forward(int64_t n, const float* x, float* y);                                  \
  void abs_tanh_backward(int64_t n, const float* dy, const float* x, const float* y,           \
                         float* dx);                                                           \
  void sigmoid_forward(int64_t n, const float* x, float* y);                                   \
  void sigmoid_backward(int64_t n, const float* dy, const float* y, float* dx);                \
  void linear_forward(const LinearShape&, const float* x, const float* w, const float* b,      \
                      float* y);                                                               \
  void linear_backward_input(const LinearShape&, const float* dy, const float* w, float* dx);  \
  void linear_backward_weight(const LinearShape&, const float* x, const float* dy, float* dw,  \
                              float* db);                                                      \
  double fma_peak(int threads, double seconds);                                               \
  void hamming_dp(const PairLossArgs&, const float* p, float* grad_p);                         \
  void pair_l1_loss(const PairLossArgs&, const float* f, const float* s, float* grad_f);        \
  void quantize_pack(int64_t count, int n, int q, const float* p, int32_t* codes);             \
  void code_distances(int64_t count, int n, int q, bool hamming, const int32_t* a,             \
                      const int32_t* b, uint32_t* dist);                               \
  void abs_tanh_max_pool2d_forward(const Pool2dShape&, const float* x, float* y,               \
                                   int32_t* argmax);                                           \
  void abs_tanh_max_pool2d_backward(const Pool2dShape&, const float* dy, const int32_t* argmax, \
                                    const float* x, const float* y, float* dx);                 \
  void adam_update(int64_t n, float* param, const float* grad, float* m, float* v, double lr,  \
                   double beta1, double beta2, double eps, double weight_decay,                \
                   double bias_correction1, double bias_correction2_sqrt);                     \
  int64_t conv2d_prepared_floats(const Conv2dShape&);                                         \
  void conv2d_prepare(const Conv2dShape&, const float* w, float* prepared);                    \
  void conv2d_forward_prepared(const Conv2dShape&, const float* x, const float* prepared,      \
                               const float* b, float* y);                                      \
  void code_knn(const CodeScanShape&, const int32_t* database, const int32_t* queries,         \
                int64_t k, int32_t* indices, uint32_t* distances);                             \
  void code_range(const CodeScanShape&, const int32_t* database, const int32_t* queries,       \
                  uint32_t radius, const CodeRangeOutput& out);

namespace dcl {

// Thrown (as dcl::Error E_ARG) by every max_pool2d_backward when an argmax index falls outside
// its plane. Defined in pool_serial.cpp, outside the ISA-flagged files, because it builds strings.
[[noreturn]] void throw_argmax_out_of_range(int64_t index, int64_t value, int64_t plane);

// Prepared conv weights (kernels.h): the layouts the header names, and the header itself. Defined
// in conv2d_serial.cpp, outside the ISA-flagged files (the check builds an error message).
enum class PreparedLayout { raw = 0, direct = 1, winograd = 2 };
// Writes the kConv2dPreparedHeader floats: a tag, the layout, the vector width of the ISA that
// wrote it, and the layer's channels, kernel, stride and padding.
void write_prepared_header(const Conv2dShape& s, PreparedLayout layout, int lanes, float* prepared);
// Throws E_ARG unless the header is one write_prepared_header(s, layout, lanes) would write.
void check_prepared_header(const Conv2dShape& s, PreparedLayout layout, int lanes, const float* prepared);

// ---- pair losses: the ISA-independent drivers (hamming_dp_serial.cpp, pair_loss_serial.cpp) ----
// The drivers hold everything that allocates or calls libm: the softplus tables, the per-image
// occurrence lists, chunking and the reductions in pair order. Each ISA supplies only the inner
// loops below, so the ISA files need no library code at all.

// One call of the hamming_dp inner loop. `table` holds, for l = -1 then l = +1, three rows of n+1
// values over the distance j: L_j = softplus(-l (alpha j - beta)), A_j = L'_j j, B_j = -L'_j (L'_j
// = dL/dy at y = alpha j - beta), so d/dalpha = sum_j D[n][j] A_j and d/dbeta = sum_j D[n][j] B_j.
struct HammingDpBlock {
  const PairLossArgs* args;
  const float* p;
  const double* table;  // [2][3][n+1]
  bool backward;
  // Per-pair results of the chunk that starts at pair chunk_begin, one record of 2n+2 doubles per
  // pair (pair k at (k - chunk_begin) (2n+2)): c_k dE/dp_a,i at [i], c_k dE/dp_b,i at [n + i],
  // c_k dE/dalpha at [2n], c_k dE/dbeta at [2n+1], with c_k = scale * weight_k.
  double* records;
  int64_t chunk_begin;
};
// Computes pairs [k0, k1) (k0 - chunk_begin a multiple of lanes): loss[k] always, the records
// when backward. scratch: hamming_dp_scratch_doubles(n, lanes) doubles, 64-byte aligned.
using HammingDpRangeFn = void (*)(const HammingDpBlock&, int64_t k0, int64_t k1, double* scratch);
int64_t hamming_dp_scratch_doubles(int64_t n, int lanes);
void hamming_dp_drive(const PairLossArgs& args, const float* p, float* grad_p, int lanes,
                      HammingDpRangeFn range);

struct PairL1Inner {
  // d[k - k0] = sum_i |f[a, i] - f[b, i]| in float64 for pairs [k0, k1).
  void (*distances)(int64_t n, const float* f, const int32_t* pairs, int64_t k0, int64_t k1,
                    double* d);
  // acc[i] += g * sign(self[i] - other[i]) (sign 0 at ties and for NaN), i < n.
  void (*accumulate)(int64_t n, double* acc, const float* self, const float* other, double g);
};
void pair_l1_drive(const PairLossArgs& args, const float* f, const float* s, float* grad_f,
                   const PairL1Inner& inner);

namespace serial {
DCL_DECLARE_CPU_KERNELS
}
namespace avx2 {
DCL_DECLARE_CPU_KERNELS
}
namespace avx512 {
DCL_DECLARE_CPU_KERNELS
}
}  // namespace dcl
