// Exhaustive scans over packed codes, AVX-512 with VPOPCNTDQ (compiled with -mavx512vpopcntdq,
// called only where cpuid reports it: scan_avx512.cpp): the loops of scan_simd.inl over the
// wrappers of scan_vec_avx512.inl, Hamming as vpxord + vpopcntd + vpcmpud on 16 codes per vector.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "ops.h"
#include "scan.h"

#define DCL_SCAN_HAS_POPCOUNT 1

namespace dcl {
namespace avx512vpopcnt {
namespace {
#define DCL_SCAN_VPOPCNT 1
#include "scan_vec_avx512.inl"
}  // namespace

#include "scan_simd.inl"

void scan_select(ScanSpec& spec, ScanInner& inner, int64_t group_queries) { select_inner(spec, inner, group_queries); }

}  // namespace avx512vpopcnt
}  // namespace dcl
