// Winograd F(2x2, 3x3) conv2d with AVX-512: 16-lane vectors, 32 registers. GEMM register tiles
// as in the direct kernel (6 rows x 4 vectors: 24 accumulators + 4 loaded vectors + 1 broadcast).
// The algorithm is in winograd_simd.inl.
// GCC 12 reports its own AVX-512 intrinsics (which start from an undefined vector) as "may be
// used uninitialized": a known false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"
#include "winograd.h"

namespace dcl {
namespace avx512 {
namespace {

#include "conv_vec_avx512.inl"

}  // namespace

#include "winograd_simd.inl"

}  // namespace avx512
}  // namespace dcl
