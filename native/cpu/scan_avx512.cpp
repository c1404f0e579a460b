// Exhaustive scans over packed codes, AVX-512 (F/DQ/BW/VL): the vector wrappers are in
// scan_vec_avx512.inl, the loops in scan_simd.inl, the driver in scan_driver.cpp. Where the CPU
// has VPOPCNTDQ the whole scan runs from scan_avx512vpopcnt.cpp instead (the same loops, with
// Hamming by vpopcntd); without it Hamming runs on the nibble tables (vpshufb popcount), or
// for fewer than 4 queries on a vpshufb popcount per 32-bit lane.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "ops.h"
#include "scan.h"

#define DCL_SCAN_HAS_POPCOUNT 0

namespace dcl {
namespace avx512 {
namespace {
#include "scan_vec_avx512.inl"
}  // namespace

#include "scan_simd.inl"

namespace {
void select_for_cpu(ScanSpec& spec, ScanInner& inner, int64_t group_queries) {
  if (cpu_has_avx512_vpopcntdq())
    avx512vpopcnt::scan_select(spec, inner, group_queries);
  else
    select_inner(spec, inner, group_queries);
}
}  // namespace

void code_knn(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, int64_t k,
              int32_t* indices, uint32_t* distances) {
  ScanSpec spec = scan_spec(shape.n, shape.q, shape.hamming);
  ScanInner inner;
  select_for_cpu(spec, inner, scan_group_queries(shape.queries));
  scan_knn_drive(shape, database, queries, k, indices, distances, spec, inner);
}

void code_range(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, uint32_t radius,
                const CodeRangeOutput& out) {
  ScanSpec spec = scan_spec(shape.n, shape.q, shape.hamming);
  ScanInner inner;
  select_for_cpu(spec, inner, scan_group_queries(shape.queries));
  scan_range_drive(shape, database, queries, radius, out, spec, inner);
}

}  // namespace avx512
}  // namespace dcl
