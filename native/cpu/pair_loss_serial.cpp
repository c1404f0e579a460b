// The pair loss over an L1 distance (technique 1 of the paper, rounding with a straight-through
// error term, and the unquantized reference): the driver shared by every ISA, and the serial
// reference of its two inner loops.
//
// For pair k = (a, b) with label l and coefficient c_k = scale * weight_k:
//   d_k = sum_i |f[a, i] - f[b, i]|,  y = alpha d_k - beta,  loss_k = softplus(-l y),
//   dL/dy = -l sigmoid(-l y),  g_k = c_k alpha dL/dy,
//   grad_f[a, i] += g_k sign(s[a, i] - s[b, i]),  grad_f[b, i] += g_k sign(s[b, i] - s[a, i]),
//   d/dalpha += c_k d_k dL/dy,  d/dbeta -= c_k dL/dy.
// The direction of the gradient comes from s (the unquantized values) and not from f: with rounded
// codes f the L1 distance's subgradient at a tie is sign(0) = 0, and different-person pairs whose
// codes are equal would never be pushed apart (DESIGN.md, practical notes). The straight-through
// rounding itself (f = s + r, r held constant) is done by the caller.
//
// Order of evaluation: distances in parallel over pairs; the losses per pair; d/dalpha and d/dbeta
// summed in pair order; then each image's gradient summed over its pairs in pair order (one image
// per task), so the results do not depend on the thread count.
#include <cmath>
#include <vector>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace {

// Below this much work (pairs * n) the call stays on the calling thread.
constexpr int64_t kMinParallelWork = 1 << 15;

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

void distances_serial(int64_t n, const float* f, const int32_t* pairs, int64_t k0, int64_t k1,
                      double* d) {
  for (int64_t k = k0; k < k1; ++k) {
    const float* fa = f + static_cast<int64_t>(pairs[2 * k]) * n;
    const float* fb = f + static_cast<int64_t>(pairs[2 * k + 1]) * n;
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(fa[i]) - static_cast<double>(fb[i]));
    d[k - k0] = s;
  }
}

void accumulate_serial(int64_t n, double* acc, const float* self, const float* other, double g) {
  for (int64_t i = 0; i < n; ++i) acc[i] += self[i] > other[i] ? g : (self[i] < other[i] ? -g : 0.0);
}

}  // namespace

void pair_l1_drive(const PairLossArgs& a, const float* f, const float* s, float* grad_f,
                   const PairL1Inner& inner) {
  const int64_t N = a.shape.images, n = a.shape.dims, P = a.shape.pairs;
  const bool backward = grad_f != nullptr;
  const int threads = thread_count();
  const bool parallel = threads > 1 && P * (n > 0 ? n : 1) >= kMinParallelWork;

  std::vector<double> d(static_cast<size_t>(P));
  if (parallel) {
    parallel_for(P, [&](int64_t k0, int64_t k1, int) { inner.distances(n, f, a.pairs, k0, k1, d.data() + k0); });
  } else {
    inner.distances(n, f, a.pairs, 0, P, d.data());
  }

  // Per pair: the loss, and dL/dy for the backward pass.
  std::vector<double> dy(backward ? static_cast<size_t>(P) : 0);
  auto losses = [&](int64_t k0, int64_t k1, int) {
    for (int64_t k = k0; k < k1; ++k) {
      const double l = a.labels[k] > 0 ? 1.0 : -1.0;
      const double z = -l * (a.alpha * d[k] - a.beta);
      a.loss[k] = softplus(z);
      if (backward) dy[k] = -l * sigmoid(z);
    }
  };
  if (parallel)
    parallel_for(P, losses);
  else
    losses(0, P, 0);
  if (!backward) return;

  double grad_alpha = 0, grad_beta = 0;
  std::vector<double> g(static_cast<size_t>(P));
  for (int64_t k = 0; k < P; ++k) {
    const double c = a.scale * (a.weights ? static_cast<double>(a.weights[k]) : 1.0);
    grad_alpha += c * dy[k] * d[k];
    grad_beta -= c * dy[k];
    g[k] = c * a.alpha * dy[k];
  }
  a.grad_scalars[0] = grad_alpha;
  a.grad_scalars[1] = grad_beta;

  // Occurrence lists (a counting sort of 2k + side by image, in pair order).
  std::vector<int64_t> offsets(static_cast<size_t>(N + 1), 0), entries(static_cast<size_t>(2 * P));
  for (int64_t e = 0; e < 2 * P; ++e) ++offsets[a.pairs[e] + 1];
  for (int64_t x = 0; x < N; ++x) offsets[x + 1] += offsets[x];
  {
    std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
    for (int64_t e = 0; e < 2 * P; ++e) entries[fill[a.pairs[e]]++] = e;
  }

  const int slots = parallel ? threads : 1;
  AlignedBuffer acc_buffer(static_cast<size_t>(slots) * static_cast<size_t>(2 * n + 16));
  double* acc_all = reinterpret_cast<double*>(acc_buffer.data());
  const int64_t acc_stride = ((n + 7) / 8) * 8;
  auto images = [&](int64_t x0, int64_t x1, double* acc) {
    for (int64_t x = x0; x < x1; ++x) {
      for (int64_t i = 0; i < n; ++i) acc[i] = 0.0;
      const float* self = s + x * n;
      for (int64_t pos = offsets[x]; pos < offsets[x + 1]; ++pos) {
        const int64_t e = entries[pos];
        const int64_t other = a.pairs[e ^ 1];
        inner.accumulate(n, acc, self, s + other * n, g[e >> 1]);
      }
      float* out = grad_f + x * n;
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(acc[i]);
    }
  };
  if (parallel && N > 1) {
    // One task per accumulator slice (see hamming_dp_drive).
    const int64_t tasks = slots < N ? slots : N;
    parallel_for(tasks, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) images(N * t / tasks, N * (t + 1) / tasks, acc_all + acc_stride * t);
    });
  } else {
    images(0, N, acc_all);
  }
}

namespace serial {

void pair_l1_loss(const PairLossArgs& args, const float* f, const float* s, float* grad_f) {
  const PairL1Inner inner{distances_serial, accumulate_serial};
  pair_l1_drive(args, f, s, grad_f, inner);
}

}  // namespace serial
}  // namespace dcl
