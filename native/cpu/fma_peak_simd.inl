// The FMA peak loop for the SIMD paths, shared by fma_peak_avx2.cpp and fma_peak_avx512.cpp, each
// of which defines `struct Vec { reg; W; set1; fmadd; add; store; }` first. 12 independent chains
// cover the FMA latency (4 cycles) times the FMA pipes (2) with room to spare.
namespace {

double vector_chains(int64_t iterations, float* sink) {
  typename Vec::reg a[12];
  for (int i = 0; i < 12; ++i) a[i] = Vec::set1(1.0f + 0.001f * i);
  const typename Vec::reg m = Vec::set1(0.999999f), c = Vec::set1(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = Vec::fmadd(a[i], m, c);
  }
  typename Vec::reg s = a[0];
  for (int i = 1; i < 12; ++i) s = Vec::add(s, a[i]);
  float lanes[Vec::W];
  Vec::store(lanes, s);
  float total = 0.0f;
  for (int i = 0; i < Vec::W; ++i) total += lanes[i];
  *sink += total;
  return 2.0 * 12.0 * Vec::W * static_cast<double>(iterations);
}

}  // namespace

double fma_peak(int threads, double seconds) { return measure_fma_peak(vector_chains, threads, seconds); }
