// The AVX-512 (F/BW/VL) vector wrappers of scan_simd.inl, shared by scan_avx512.cpp and
// scan_avx512vpopcnt.cpp (which defines DCL_SCAN_VPOPCNT: d_popcount is vpopcntd): 64 codes per nibble group, 16 per 32-bit
// vector, compares into opmask registers. Included inside an anonymous namespace.

constexpr int64_t kW = 64;
using VB = __m512i;
using BM = uint64_t;

inline VB b_table(const uint8_t* t) { return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))); }
inline VB b_load(const uint8_t* p) { return _mm512_load_si512(reinterpret_cast<const void*>(p)); }
inline void b_store(uint8_t* p, VB v) { _mm512_store_si512(reinterpret_cast<void*>(p), v); }
inline VB b_lookup(VB table, VB index) { return _mm512_shuffle_epi8(table, index); }
inline VB b_add(VB a, VB b) { return _mm512_add_epi8(a, b); }
inline VB b_set1(uint32_t v) { return _mm512_set1_epi8(static_cast<char>(v)); }
inline BM b_lt(VB d, VB bound) { return static_cast<BM>(_mm512_cmplt_epu8_mask(d, bound)); }

// 64 codes -> nibble planes. Per 16 codes (one zmm): vpshufb gathers byte b of each 128-bit
// lane's 4 codes into dword b, vpermd puts byte b of all 16 codes into 128-bit lane b; a 4 x 4
// transpose of 128-bit lanes (vshufi64x2) over the four zmm gives byte b of the 64 codes in
// order, split into its low and high nibble.
template <int P>
inline void nib_prepare_group(const int32_t* codes, uint8_t* out) {
  const __m512i gather = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  __m512i s[4];
  for (int i = 0; i < 4; ++i)
    s[i] = _mm512_permutexvar_epi32(order, _mm512_shuffle_epi8(_mm512_loadu_si512(reinterpret_cast<const void*>(codes + 16 * i)), gather));
  const __m512i t0 = _mm512_shuffle_i64x2(s[0], s[1], _MM_SHUFFLE(1, 0, 1, 0));  // s0.l0 s0.l1 s1.l0 s1.l1
  const __m512i t1 = _mm512_shuffle_i64x2(s[2], s[3], _MM_SHUFFLE(1, 0, 1, 0));  // s2.l0 s2.l1 s3.l0 s3.l1
  const __m512i t2 = _mm512_shuffle_i64x2(s[0], s[1], _MM_SHUFFLE(3, 2, 3, 2));  // s0.l2 s0.l3 s1.l2 s1.l3
  const __m512i t3 = _mm512_shuffle_i64x2(s[2], s[3], _MM_SHUFFLE(3, 2, 3, 2));  // s2.l2 s2.l3 s3.l2 s3.l3
  __m512i bytes[4];
  bytes[0] = _mm512_shuffle_i64x2(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));  // s0.l0 s1.l0 s2.l0 s3.l0
  bytes[1] = _mm512_shuffle_i64x2(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));  // s0.l1 s1.l1 s2.l1 s3.l1
  bytes[2] = _mm512_shuffle_i64x2(t2, t3, _MM_SHUFFLE(2, 0, 2, 0));
  bytes[3] = _mm512_shuffle_i64x2(t2, t3, _MM_SHUFFLE(3, 1, 3, 1));
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int j = 0; j < P; ++j) {
    const __m512i b = bytes[j >> 1];
    const __m512i nib = (j & 1) ? _mm512_and_si512(_mm512_srli_epi16(b, 4), low) : _mm512_and_si512(b, low);
    _mm512_store_si512(reinterpret_cast<void*>(out + j * kW), nib);
  }
}

constexpr int64_t kL = 16;
using VD = __m512i;

inline VD d_load(const uint32_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }
inline void d_store(uint32_t* p, VD v) { _mm512_store_si512(reinterpret_cast<void*>(p), v); }
inline VD d_set1(uint32_t v) { return _mm512_set1_epi32(static_cast<int32_t>(v)); }
inline VD d_xor(VD a, VD b) { return _mm512_xor_si512(a, b); }
inline VD d_and(VD a, VD b) { return _mm512_and_si512(a, b); }
inline VD d_add(VD a, VD b) { return _mm512_add_epi32(a, b); }
inline uint32_t d_le(VD d, VD limit) { return static_cast<uint32_t>(_mm512_cmple_epu32_mask(d, limit)); }
inline VD d_bytes_l1(VD x, VD y) {
  const __m512i diff = _mm512_sub_epi8(_mm512_max_epu8(x, y), _mm512_min_epu8(x, y));
  return _mm512_madd_epi16(_mm512_maddubs_epi16(diff, _mm512_set1_epi8(1)), _mm512_set1_epi16(1));
}
#if DCL_SCAN_VPOPCNT
inline VD d_popcount(VD x) { return _mm512_popcnt_epi32(x); }
#else
// Per byte by two vpshufb nibble look-ups, then the 4 bytes of a lane summed.
inline VD d_popcount(VD x) {
  const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i bytes = _mm512_add_epi8(_mm512_shuffle_epi8(table, _mm512_and_si512(x, low)),
                                        _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(x, 4), low)));
  return _mm512_madd_epi16(_mm512_maddubs_epi16(bytes, _mm512_set1_epi8(1)), _mm512_set1_epi16(1));
}
#endif
inline VD d_field_absdiff(VD x, VD y, int shift, VD field) {
  const __m128i c = _mm_cvtsi32_si128(shift);
  const __m512i u = _mm512_and_si512(_mm512_srl_epi32(x, c), field);
  const __m512i v = _mm512_and_si512(_mm512_srl_epi32(y, c), field);
  return _mm512_sub_epi32(_mm512_max_epu32(u, v), _mm512_min_epu32(u, v));
}
