// The avx512 max-pool vector wrappers, shared by pool_avx512.cpp and tanh_pool_avx512.cpp: each includes
// this inside its own anonymous namespace, so every copy keeps internal linkage and stays
// inside the files compiled with these ISA flags (see parallel.h on why that matters).


using V = __m512;
using VI = __m512i;
using M = __mmask16;
constexpr int64_t kLanes = 16;

inline VI lane_index() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
// Lanes [0, count) set; count may be <= 0 or >= 16.
inline M lanes_below(int64_t count) {
  if (count <= 0) return 0;
  if (count >= kLanes) return 0xffff;
  return static_cast<M>((1u << count) - 1u);
}
inline V vset1(float f) { return _mm512_set1_ps(f); }
inline VI iset1(int32_t v) { return _mm512_set1_epi32(v); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline V vload_partial(const float* p, int64_t count) { return _mm512_maskz_loadu_ps(lanes_below(count), p); }
// Half a vector from each of two addresses.
inline V vload_halves(const float* lo, const float* hi) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(lo)), _mm256_loadu_ps(hi), 1);
}
inline VI iload(const int32_t* p) { return _mm512_loadu_si512(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline void vstore_partial(float* p, V v, int64_t count) { _mm512_mask_storeu_ps(p, lanes_below(count), v); }
inline void istore(int32_t* p, VI v) { _mm512_storeu_si512(p, v); }
inline void istore_partial(int32_t* p, VI v, int64_t count) { _mm512_mask_storeu_epi32(p, lanes_below(count), v); }
inline V vgather(const float* base, VI offsets) {
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xffff, offsets, base, 4);
}
inline V vgather_partial(const float* base, VI offsets, int64_t count) {
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes_below(count), offsets, base, 4);
}
inline VI iadd(VI a, VI b) { return _mm512_add_epi32(a, b); }
inline VI imul(VI a, VI b) { return _mm512_mullo_epi32(a, b); }
inline M vgt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline M veq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
inline V vselect(M m, V if_true, V if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
inline VI iselect(M m, VI if_true, VI if_false) { return _mm512_mask_blend_epi32(m, if_false, if_true); }
// De-interleaves the 32 floats a | b into even and odd positions, in output order: one
// two-source permute (vpermt2ps) each, so to_output_order has nothing left to do.
inline void deinterleave(V a, V b, V& even, V& odd) {
  const VI even_index = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const VI odd_index = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  even = _mm512_permutex2var_ps(a, even_index, b);
  odd = _mm512_permutex2var_ps(a, odd_index, b);
}
inline V to_output_order(V v) { return v; }
inline VI to_output_order(VI v) { return v; }
