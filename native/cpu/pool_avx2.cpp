// max-pool 2d, AVX2: 8 lanes. The algorithm lives in pool_simd.inl; this file supplies the
// 8-lane wrappers it is written against. Partial vectors use maskload/maskstore (and masked
// gathers), which neither read nor write the masked-off lanes.
#include <immintrin.h>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {
#include "pool_vec_avx2.inl"

}  // namespace

#include "pool_simd.inl"

}  // namespace avx2
}  // namespace dcl
