// Winograd F(2x2, 3x3) conv2d with AVX2 + FMA: 8-lane vectors, 16 registers. The GEMM register
// tile is 6 rows x 2 vectors (12 accumulators + 2 loaded vectors + 1 broadcast), as in the direct
// kernel. The algorithm is in winograd_simd.inl.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"
#include "winograd.h"

namespace dcl {
namespace avx2 {
namespace {

#include "conv_vec_avx2.inl"

}  // namespace

#include "winograd_simd.inl"

}  // namespace avx2
}  // namespace dcl
