// FMA peak for the avx2 path: 12 independent chains of 8-lane FMAs, enough to cover the FMA
// latency (4 cycles) times the number of FMA pipes (2) with room to spare.
#include <immintrin.h>

#include "fma_peak.h"
#include "ops.h"

namespace dcl {
namespace avx2 {
namespace {

double vector_chains(int64_t iterations, float* sink) {
  __m256 a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.001f), a2 = _mm256_set1_ps(1.002f), a3 = _mm256_set1_ps(1.003f);
  __m256 a4 = _mm256_set1_ps(1.004f), a5 = _mm256_set1_ps(1.005f), a6 = _mm256_set1_ps(1.006f), a7 = _mm256_set1_ps(1.007f);
  __m256 a8 = _mm256_set1_ps(1.008f), a9 = _mm256_set1_ps(1.009f), a10 = _mm256_set1_ps(1.010f), a11 = _mm256_set1_ps(1.011f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c); a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c); a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float total = 0.0f;
  for (int i = 0; i < 8; ++i) total += lanes[i];
  *sink += total;
  return 2.0 * 12.0 * 8.0 * static_cast<double>(iterations);
}

}  // namespace

double fma_peak(int threads, double seconds) {
  return measure_fma_peak(vector_chains, threads, seconds);
}

}  // namespace avx2
}  // namespace dcl
