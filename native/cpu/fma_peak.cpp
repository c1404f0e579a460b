#include "fma_peak.h"

#include <atomic>
#include <vector>

namespace dcl {

double measure_fma_peak(FmaChainFn chain, int threads, double seconds) {
  if (threads < 1) threads = 1;
  if (threads > thread_count()) threads = thread_count();
  // Calibrate one thread's rate, then give every thread the same fixed amount of work and time
  // the whole parallel run: the slowest thread decides, as it would in a real kernel.
  float sink = 0.0f;
  int64_t iterations = 1 << 14;
  double elapsed = 0.0;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    chain(iterations, &sink);
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (elapsed > 0.02) break;
    iterations *= 4;
  }
  const double per_thread_seconds = seconds;
  const int64_t rounds = static_cast<int64_t>(iterations * (per_thread_seconds / elapsed)) + 1;
  struct Ctx {
    FmaChainFn chain;
    int64_t rounds;
    std::vector<double> flops;
    std::vector<float> sinks;
  } ctx{chain, rounds, std::vector<double>(threads), std::vector<float>(threads * 16)};
  auto t0 = std::chrono::steady_clock::now();
  parallel_run_raw(
      threads,
      [](void* p, int t) {
        auto* c = static_cast<Ctx*>(p);
        c->flops[t] = c->chain(c->rounds, &c->sinks[t * 16]);
      },
      &ctx);
  const double total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0.0;
  for (double f : ctx.flops) total += f;
  return total / total_seconds / 1e9;
}

}  // namespace dcl
