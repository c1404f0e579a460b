// Exhaustive scans over packed codes, AVX2: the vector wrappers of scan_simd.inl (32 codes per
// nibble group, 8 per 32-bit vector); the driver is scan_driver.cpp. Hamming runs on the nibble
// tables (vpshufb popcount of the query's nibbles, 8 lookups and adds per 32 codes), or for fewer
// than 4 queries on a vpshufb popcount per 32-bit lane (no transposition of the blocks).
#include <immintrin.h>

#include "ops.h"
#include "scan.h"

#define DCL_SCAN_HAS_POPCOUNT 0

namespace dcl {
namespace avx2 {
namespace {

constexpr int64_t kW = 32;
using VB = __m256i;
using BM = uint32_t;

inline VB b_table(const uint8_t* t) { return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))); }
inline VB b_load(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
inline void b_store(uint8_t* p, VB v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
inline VB b_lookup(VB table, VB index) { return _mm256_shuffle_epi8(table, index); }
inline VB b_add(VB a, VB b) { return _mm256_add_epi8(a, b); }
inline VB b_set1(uint32_t v) { return _mm256_set1_epi8(static_cast<char>(v)); }
// Signed byte compare: distances and bounds are below 128.
inline BM b_lt(VB d, VB bound) { return static_cast<BM>(_mm256_movemask_epi8(_mm256_cmpgt_epi8(bound, d))); }

// 32 codes -> nibble planes. Per 8 codes (one ymm): vpshufb gathers byte b of each lane's 4 codes
// into dword b, vpermd puts byte b of all 8 codes into qword b; a 4 x 4 qword transpose over the
// four ymm gives byte b of the 32 codes in order, split into its low and high nibble.
template <int P>
inline void nib_prepare_group(const int32_t* codes, uint8_t* out) {
  const __m256i gather = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                          0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256i s[4];
  for (int i = 0; i < 4; ++i)
    s[i] = _mm256_permutevar8x32_epi32(
        _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 8 * i)), gather), order);
  const __m256i t0 = _mm256_unpacklo_epi64(s[0], s[1]), t1 = _mm256_unpackhi_epi64(s[0], s[1]);
  const __m256i t2 = _mm256_unpacklo_epi64(s[2], s[3]), t3 = _mm256_unpackhi_epi64(s[2], s[3]);
  __m256i bytes[4];
  bytes[0] = _mm256_permute2x128_si256(t0, t2, 0x20);
  bytes[1] = _mm256_permute2x128_si256(t1, t3, 0x20);
  bytes[2] = _mm256_permute2x128_si256(t0, t2, 0x31);
  bytes[3] = _mm256_permute2x128_si256(t1, t3, 0x31);
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (int j = 0; j < P; ++j) {
    const __m256i b = bytes[j >> 1];
    const __m256i nib = (j & 1) ? _mm256_and_si256(_mm256_srli_epi16(b, 4), low) : _mm256_and_si256(b, low);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + j * kW), nib);
  }
}

constexpr int64_t kL = 8;
using VD = __m256i;

inline VD d_load(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void d_store(uint32_t* p, VD v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
inline VD d_set1(uint32_t v) { return _mm256_set1_epi32(static_cast<int32_t>(v)); }
inline VD d_xor(VD a, VD b) { return _mm256_xor_si256(a, b); }
inline VD d_and(VD a, VD b) { return _mm256_and_si256(a, b); }
inline VD d_add(VD a, VD b) { return _mm256_add_epi32(a, b); }
inline uint32_t d_le(VD d, VD limit) {
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_max_epu32(d, limit), limit))));
}
// Per byte |x - y|, then the 4 bytes of a lane summed (vpmaddubsw, vpmaddwd by ones).
inline VD d_bytes_l1(VD x, VD y) {
  const __m256i diff = _mm256_sub_epi8(_mm256_max_epu8(x, y), _mm256_min_epu8(x, y));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(diff, _mm256_set1_epi8(1)), _mm256_set1_epi16(1));
}
// Per byte by two vpshufb nibble look-ups, then the 4 bytes of a lane summed.
inline VD d_popcount(VD x) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i bytes = _mm256_add_epi8(_mm256_shuffle_epi8(table, _mm256_and_si256(x, low)),
                                        _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(bytes, _mm256_set1_epi8(1)), _mm256_set1_epi16(1));
}
inline VD d_field_absdiff(VD x, VD y, int shift, VD field) {
  const __m128i c = _mm_cvtsi32_si128(shift);
  const __m256i u = _mm256_and_si256(_mm256_srl_epi32(x, c), field);
  const __m256i v = _mm256_and_si256(_mm256_srl_epi32(y, c), field);
  return _mm256_sub_epi32(_mm256_max_epu32(u, v), _mm256_min_epu32(u, v));
}

}  // namespace

#include "scan_simd.inl"

void code_knn(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, int64_t k,
              int32_t* indices, uint32_t* distances) {
  ScanSpec spec = scan_spec(shape.n, shape.q, shape.hamming);
  ScanInner inner;
  select_inner(spec, inner, scan_group_queries(shape.queries));
  scan_knn_drive(shape, database, queries, k, indices, distances, spec, inner);
}

void code_range(const CodeScanShape& shape, const int32_t* database, const int32_t* queries, uint32_t radius,
                const CodeRangeOutput& out) {
  ScanSpec spec = scan_spec(shape.n, shape.q, shape.hamming);
  ScanInner inner;
  select_inner(spec, inner, scan_group_queries(shape.queries));
  scan_range_drive(shape, database, queries, radius, out, spec, inner);
}

}  // namespace avx2
}  // namespace dcl
