// Expected pair loss over binary codes by dynamic programming (technique 2 of the paper, eq. 6-7):
// the driver shared by every ISA, and the serial reference of the inner loop.
//
// Bit i of image x's code is 1 with probability p[x, i], independently. For a pair (a, b) bit i
// differs with probability q_i = p_a,i (1 - p_b,i) + p_b,i (1 - p_a,i) (= p1 + p2 - 2 p1 p2, written
// so that 1 - q_i = (1 - p1)(1 - p2) + p1 p2 keeps its relative accuracy when q_i is near 1), and
// the Hamming distance has the distribution D[n][.]:
//   D[0][0] = 1,  D[i][j] = (1 - q_i) D[i-1][j] + q_i D[i-1][j-1]   (D[i][j] = 0 outside 0..i).
// The loss is E = sum_j D[n][j] L_j, L_j = softplus(-l (alpha j - beta)).
//
// Backward (reverse mode through the recursion, the D rows kept): with G_i[j] = dE/dD[i][j],
//   G_n[j] = L_j,  G_{i-1}[j] = (1 - q_i) G_i[j] + q_i G_i[j+1] = G_i[j] + q_i (G_i[j+1] - G_i[j]),
//   dE/dq_i = sum_j G_i[j] (D[i-1][j-1] - D[i-1][j]) = sum_{j<i} D[i-1][j] (G_i[j+1] - G_i[j]),
// (G_i[j] is the expected loss given j differing bits among the first i), then
//   dE/dp_a,i = dE/dq_i (1 - 2 p_b,i), dE/dp_b,i = dE/dq_i (1 - 2 p_a,i),
//   dE/dalpha = sum_j D[n][j] L'_j j, dE/dbeta = -sum_j D[n][j] L'_j. O(n^2) time per pair, and the
// n rows D[0..n-1] (n (n+1) / 2 values) of memory.
//
// Determinism: every pair's values are computed by the same arithmetic whichever thread or SIMD
// block it falls in; per-pair gradients are written to records and each image's gradient is then
// summed over its pairs in pair order (and d/dalpha, d/dbeta over all pairs in pair order), so the
// results are bit-identical for every thread count.
#include <cmath>
#include <cstdlib>
#include <new>
#include <vector>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace {

// Records per chunk with gradients, in bytes: a pair's record is (2n+2) doubles (528 bytes at
// n = 32). Chunks bound the memory for any number of pairs and keep the records of a chunk in L2
// between the pass that writes them and the reduction that reads them.
constexpr int64_t kChunkBytes = 1 << 20;
// Below this many DP cells (pairs * n^2 / 2) one call stays on the calling thread: waking the pool
// costs ~5-80 us, a cell ~1 ns.
constexpr double kMinParallelCells = 1.0e5;
// Below this many gradient values summed, the per-image reduction stays on the calling thread.
constexpr int64_t kMinParallelReduce = 1 << 16;

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

int64_t tri(int64_t r) { return r * (r + 1) / 2; }

// A 64-byte aligned array that keeps its memory between calls (no page faults on every call).
template <class T>
class Kept {
 public:
  T* get(int64_t count) {
    const size_t want = static_cast<size_t>(count > 0 ? count : 1);
    if (want > size_) {
      std::free(data_);
      data_ = nullptr;
      size_ = 0;
      void* q = std::aligned_alloc(64, (want * sizeof(T) + 63) / 64 * 64);
      if (!q) throw std::bad_alloc();
      data_ = static_cast<T*>(q);
      size_ = want;
    }
    return data_;
  }
  ~Kept() { std::free(data_); }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

// Buffers of the calling thread (the driver runs on the caller; the pool's workers only use the
// slices of `scratch` they are handed).
struct Workspace {
  std::vector<double> table;
  Kept<double> scratch, records, acc;
  Kept<int64_t> ints;
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

// The serial inner loop: one pair at a time, plain scalar double arithmetic (no FMA contraction:
// this file is built for baseline x86-64).
void hamming_range_serial(const HammingDpBlock& blk, int64_t k0, int64_t k1, double* scratch) {
  const PairLossArgs& a = *blk.args;
  const int64_t n = a.shape.dims;
  double* D = scratch;                 // rows 0..n, row r at tri(r)
  double* G = D + tri(n + 1);          // n + 1
  double* Q = G + (n + 1);             // n
  double* OMQ = Q + n;                 // n
  for (int64_t k = k0; k < k1; ++k) {
    const float* pa = blk.p + static_cast<int64_t>(a.pairs[2 * k]) * n;
    const float* pb = blk.p + static_cast<int64_t>(a.pairs[2 * k + 1]) * n;
    const double* L = blk.table + (a.labels[k] > 0 ? 3 * (n + 1) : 0);
    const double* A = L + (n + 1);
    const double* B = A + (n + 1);
    for (int64_t i = 0; i < n; ++i) {
      const double p1 = pa[i], p2 = pb[i];
      Q[i] = p1 * (1.0 - p2) + p2 * (1.0 - p1);
      OMQ[i] = (1.0 - p1) * (1.0 - p2) + p1 * p2;
    }
    D[0] = 1.0;
    for (int64_t i = 1; i <= n; ++i) {
      const double* prev = D + tri(i - 1);
      double* cur = D + tri(i);
      const double q = Q[i - 1], omq = OMQ[i - 1];
      cur[0] = omq * prev[0];
      for (int64_t j = 1; j < i; ++j) cur[j] = q * prev[j - 1] + omq * prev[j];
      cur[i] = q * prev[i - 1];
    }
    const double* Dn = D + tri(n);
    double e = 0;
    for (int64_t j = 0; j <= n; ++j) e += Dn[j] * L[j];
    a.loss[k] = e;
    if (!blk.backward) continue;
    const double c = a.scale * (a.weights ? static_cast<double>(a.weights[k]) : 1.0);
    double* rec = blk.records + (k - blk.chunk_begin) * (2 * n + 2);
    double da = 0, db = 0;
    for (int64_t j = 0; j <= n; ++j) {
      da += Dn[j] * A[j];
      db += Dn[j] * B[j];
    }
    rec[2 * n] = c * da;
    rec[2 * n + 1] = c * db;
    for (int64_t j = 0; j <= n; ++j) G[j] = L[j];
    for (int64_t i = n; i >= 1; --i) {
      const double* prev = D + tri(i - 1);
      const double q = Q[i - 1];
      double qbar = 0;
      for (int64_t j = 0; j < i; ++j) {
        const double diff = G[j + 1] - G[j];
        qbar += prev[j] * diff;
        G[j] += q * diff;
      }
      qbar *= c;
      rec[i - 1] = qbar * (1.0 - 2.0 * static_cast<double>(pb[i - 1]));
      rec[n + i - 1] = qbar * (1.0 - 2.0 * static_cast<double>(pa[i - 1]));
    }
  }
}

}  // namespace

int64_t hamming_dp_scratch_doubles(int64_t n, int lanes) {
  // D rows 0..n, G (n+1), four per-dimension vectors (q, 1-q, p_a, p_b) and a record tile
  // (2n+2), in vectors of `lanes`.
  return (tri(n + 1) + (n + 1) + 4 * n + (2 * n + 2) + 8) * lanes;
}

void hamming_dp_drive(const PairLossArgs& a, const float* p, float* grad_p, int lanes,
                      HammingDpRangeFn range) {
  const int64_t N = a.shape.images, n = a.shape.dims, P = a.shape.pairs;
  const bool backward = grad_p != nullptr;
  if (backward) {
    a.grad_scalars[0] = 0;
    a.grad_scalars[1] = 0;
  }
  if (n <= 0 || N <= 0 || P <= 0) {
    if (backward)
      for (int64_t i = 0; i < N * n; ++i) grad_p[i] = 0.0f;
    return;
  }

  // L_j, A_j, B_j for l = -1 (rows 0..2) and l = +1 (rows 3..5).
  Workspace& w = workspace();
  w.table.resize(static_cast<size_t>(6 * (n + 1)));
  for (int side = 0; side < 2; ++side) {
    const double l = side ? 1.0 : -1.0;
    double* L = w.table.data() + side * 3 * (n + 1);
    for (int64_t j = 0; j <= n; ++j) {
      const double z = -l * (a.alpha * static_cast<double>(j) - a.beta);
      const double dy = -l * sigmoid(z);
      L[j] = softplus(z);
      L[(n + 1) + j] = dy * static_cast<double>(j);
      L[2 * (n + 1) + j] = -dy;
    }
  }

  const int threads = thread_count();
  // Per-thread scratch, each slice a whole number of 64-byte lines.
  const int64_t per_thread = (hamming_dp_scratch_doubles(n, lanes) + 7) / 8 * 8;
  double* scratch = w.scratch.get(per_thread * threads);

  const int64_t record = 2 * n + 2;
  // Forward only: one chunk of every pair. With gradients: chunks of whole lane blocks whose
  // records fit in about kChunkBytes.
  int64_t chunk = P;
  if (backward) {
    chunk = kChunkBytes / (record * 8);
    chunk = chunk < 256 ? 256 : chunk;
    chunk = (chunk + lanes - 1) / lanes * lanes;
  }
  double* records = backward ? w.records.get((chunk < P ? chunk : P) * record + 8) : nullptr;

  // Per chunk, the occurrences 2k + side of its pairs grouped by image (a stable counting sort
  // over the images present in the chunk, so each group is in pair order): `present` lists the
  // chunk's images, local[x] is x's group, order[offs[g] .. offs[g+1]) are group g's occurrences.
  // Everything but stamp / local (per image) is O(chunk) and stays in cache.
  double* acc = nullptr;
  int64_t *stamp = nullptr, *local = nullptr, *present = nullptr, *offs = nullptr, *fill = nullptr, *order = nullptr;
  if (backward) {
    acc = w.acc.get(N * n);
    for (int64_t i = 0; i < N * n; ++i) acc[i] = 0.0;
    const int64_t occ = 2 * (chunk < P ? chunk : P);
    int64_t* ints = w.ints.get(2 * N + 4 * occ + 1);
    stamp = ints;
    local = stamp + N;
    present = local + N;
    offs = present + occ;
    fill = offs + occ + 1;
    order = fill + occ;
    for (int64_t x = 0; x < N; ++x) stamp[x] = -1;
  }

  double grad_alpha = 0, grad_beta = 0;
  const double cells_per_pair = 0.5 * static_cast<double>(n) * static_cast<double>(n + 1);
  int64_t chunk_index = 0;
  for (int64_t c0 = 0; c0 < P; c0 += chunk, ++chunk_index) {
    const int64_t c1 = c0 + chunk < P ? c0 + chunk : P;
    const HammingDpBlock blk{&a, p, w.table.data(), backward, records, c0};
    const int64_t blocks = (c1 - c0 + lanes - 1) / lanes;
    if (threads <= 1 || blocks < 2 || static_cast<double>(c1 - c0) * cells_per_pair < kMinParallelCells) {
      range(blk, c0, c1, scratch);
    } else {
      // One task per scratch slice (not per pool thread: whichever thread runs a task uses that
      // task's slice, so the slices suffice even if the pool is resized meanwhile).
      const int64_t tasks = threads < blocks ? threads : blocks;
      parallel_for(tasks, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t k0 = c0 + blocks * t / tasks * lanes;
          const int64_t k1 = c0 + blocks * (t + 1) / tasks * lanes < c1 ? c0 + blocks * (t + 1) / tasks * lanes : c1;
          if (k0 < k1) range(blk, k0, k1, scratch + per_thread * t);
        }
      });
    }
    if (!backward) continue;

    for (int64_t k = c0; k < c1; ++k) {
      const double* r = records + (k - c0) * record;
      grad_alpha += r[2 * n];
      grad_beta += r[2 * n + 1];
    }
    int64_t count = 0;
    for (int64_t e = 2 * c0; e < 2 * c1; ++e) {
      const int64_t x = a.pairs[e];
      if (stamp[x] != chunk_index) {
        stamp[x] = chunk_index;
        local[x] = count;
        present[count++] = x;
      }
    }
    for (int64_t g = 0; g <= count; ++g) offs[g] = 0;
    for (int64_t e = 2 * c0; e < 2 * c1; ++e) ++offs[local[a.pairs[e]] + 1];
    for (int64_t g = 0; g < count; ++g) {
      offs[g + 1] += offs[g];
      fill[g] = offs[g];
    }
    for (int64_t e = 2 * c0; e < 2 * c1; ++e) order[fill[local[a.pairs[e]]]++] = e;
    // Each image's gradient: its records of this chunk added in pair order.
    auto reduce = [&](int64_t g0, int64_t g1, int) {
      for (int64_t g = g0; g < g1; ++g) {
        // The accumulator rows are visited in no useful order: fetch a few groups ahead.
        if (g + 4 < g1) {
          const double* ahead = acc + present[g + 4] * n;
          for (int64_t i = 0; i < n; i += 8) __builtin_prefetch(ahead + i, 1);
        }
        double* out = acc + present[g] * n;
        for (int64_t pos = offs[g]; pos < offs[g + 1]; ++pos) {
          const int64_t e = order[pos];
          const double* r = records + ((e >> 1) - c0) * record + (e & 1) * n;
          for (int64_t i = 0; i < n; ++i) out[i] += r[i];
        }
      }
    };
    if (threads > 1 && 2 * (c1 - c0) * n >= kMinParallelReduce)
      parallel_for(count, reduce);
    else
      reduce(0, count, 0);
  }
  if (!backward) return;
  for (int64_t i = 0; i < N * n; ++i) grad_p[i] = static_cast<float>(acc[i]);
  a.grad_scalars[0] = grad_alpha;
  a.grad_scalars[1] = grad_beta;
}

namespace serial {

void hamming_dp(const PairLossArgs& args, const float* p, float* grad_p) {
  hamming_dp_drive(args, p, grad_p, 1, hamming_range_serial);
}

}  // namespace serial
}  // namespace dcl
