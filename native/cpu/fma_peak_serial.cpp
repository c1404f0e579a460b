// FMA peak for the serial path: scalar multiply-adds in independent chains (the baseline build
// has no FMA instruction, so this is a multiply and an add, counted as two operations).

#include "fma_peak.h"
#include "ops.h"

namespace dcl {
namespace serial {
namespace {

double scalar_chains(int64_t iterations, float* sink) {
  float a[16];
  for (int i = 0; i < 16; ++i) a[i] = 1.0f + i * 1e-3f;
  const float m = 0.999999f, c = 1e-7f;
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) a[i] = a[i] * m + c;
  float s = 0.0f;
  for (int i = 0; i < 16; ++i) s += a[i];
  *sink += s;
  return 2.0 * 16.0 * static_cast<double>(iterations);
}

}  // namespace

double fma_peak(int threads, double seconds) {
  return measure_fma_peak(scalar_chains, threads, seconds);
}

}  // namespace serial
}  // namespace dcl
