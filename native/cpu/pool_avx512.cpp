// max-pool 2d, AVX-512 (F/DQ/BW/VL): 16 lanes with opmask registers. The algorithm lives in
// pool_simd.inl; this file supplies the 16-lane wrappers it is written against. Partial vectors
// use masked loads, stores and gathers, which neither read nor write the masked-off lanes.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx512 {
namespace {
#include "pool_vec_avx512.inl"

}  // namespace

#include "pool_simd.inl"

}  // namespace avx512
}  // namespace dcl
