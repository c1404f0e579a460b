// conv2d with AVX2 + FMA: 8-lane vectors, 16 registers. A register tile of 6 pixels x 2 vectors
// (16 output channels) uses 12 accumulators + 2 weight vectors + 1 broadcast. The kernel itself
// is in conv2d_simd.inl.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"
#include "winograd.h"

namespace dcl {
namespace avx2 {
namespace {

#include "conv_vec_avx2.inl"

}  // namespace

#include "conv2d_simd.inl"

}  // namespace avx2
}  // namespace dcl
