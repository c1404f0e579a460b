// conv2d with AVX-512: 16-lane vectors, 32 registers. A register tile of 6 pixels x 4 vectors
// (64 output channels) uses 24 accumulators + 4 weight vectors + 1 broadcast: each weight load
// feeds 6 FMAs, each broadcast 4. The kernel itself is in conv2d_simd.inl.
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

#include "conv2d_simd.inl"

}  // namespace avx512
}  // namespace dcl
