// The avx2 max-pool vector wrappers, shared by pool_avx2.cpp and tanh_pool_avx2.cpp: each includes
// this inside its own anonymous namespace, so every copy keeps internal linkage and stays
// inside the files compiled with these ISA flags (see parallel.h on why that matters).


using V = __m256;
using VI = __m256i;
using M = __m256;  // all-ones / all-zeros lanes, as AVX2 compares return them
constexpr int64_t kLanes = 8;

inline VI lane_index() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
// Lanes [0, count) set; count may be <= 0 or >= 8.
inline VI lanes_below(int64_t count) {
  const int c = count < 0 ? 0 : (count > kLanes ? static_cast<int>(kLanes) : static_cast<int>(count));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), lane_index());
}
inline V vset1(float f) { return _mm256_set1_ps(f); }
inline VI iset1(int32_t v) { return _mm256_set1_epi32(v); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline V vload_partial(const float* p, int64_t count) { return _mm256_maskload_ps(p, lanes_below(count)); }
// Half a vector from each of two addresses.
inline V vload_halves(const float* lo, const float* hi) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}
inline VI iload(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline void vstore_partial(float* p, V v, int64_t count) { _mm256_maskstore_ps(p, lanes_below(count), v); }
inline void istore(int32_t* p, VI v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline void istore_partial(int32_t* p, VI v, int64_t count) {
  _mm256_maskstore_epi32(reinterpret_cast<int*>(p), lanes_below(count), v);
}
inline V vgather(const float* base, VI offsets) { return _mm256_i32gather_ps(base, offsets, 4); }
inline V vgather_partial(const float* base, VI offsets, int64_t count) {
  return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, offsets, _mm256_castsi256_ps(lanes_below(count)), 4);
}
inline VI iadd(VI a, VI b) { return _mm256_add_epi32(a, b); }
inline VI imul(VI a, VI b) { return _mm256_mullo_epi32(a, b); }
inline M vgt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline M veq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
inline V vselect(M m, V if_true, V if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
inline VI iselect(M m, VI if_true, VI if_false) {
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(if_false), _mm256_castsi256_ps(if_true), m));
}
// De-interleaves the 16 floats a | b into even and odd positions. vshufps works within 128-bit
// halves, so the lanes come out in the order of outputs 0 1 4 5 | 2 3 6 7; rather than fixing
// the four inputs, the compares run in that order and to_output_order fixes the two results
// (value and winner code), one vpermpd / vpermq each.
inline void deinterleave(V a, V b, V& even, V& odd) {
  even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  odd = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
}
inline V to_output_order(V v) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline VI to_output_order(VI v) { return _mm256_permute4x64_epi64(v, _MM_SHUFFLE(3, 1, 2, 0)); }
