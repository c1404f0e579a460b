// The hamming_dp inner loop on SIMD vectors of doubles, shared by hamming_dp_avx2.cpp (4 pairs per
// ymm) and hamming_dp_avx512.cpp (8 pairs per zmm). See hamming_dp_serial.cpp for the recursion and
// its backward pass; here every lane runs it for its own pair, all lanes in step (the recursion's
// shape depends only on n, so there is no divergence). Each ISA file defines, in an anonymous
// namespace of its ISA namespace, a traits struct `Traits` with:
//   V (kLanes doubles), M (a lane mask), kLanes, set1, zero, load, store (64-byte aligned scratch),
//   add, sub, mul, fmadd (a b + c), gt (M), blend (m ? t : f), store_first (the first m lanes of
//   a vector to unaligned memory), kColumns and load_columns(rows, i0, cols, out) (columns i0 ..
//   i0 + cols - 1, cols <= kColumns, of the kLanes float rows, widened, as cols vectors at out),
// then includes this file there: everything here has internal linkage and is compiled with that
// ISA's flags only. No library code is used (see dcl/parallel.h on ODR safety).
//
// Layout: the D table, G and the per-dimension vectors live in `scratch` as vectors (lane j of
// vector v at scratch[v * kLanes + j]); row r of D starts at vector r (r + 1) / 2. For n = 32 the
// table is 561 vectors (35 KB in zmm), at n = 64 it is 137 KB: L1 and L2 resident. The forward
// pass costs a multiply and an FMA per cell, the backward a subtraction and two FMAs per cell.
// The backward handles two rows per sweep and sums each dE/dq on two accumulators (even and odd
// j) so that the FMA latency does not serialise the row; that reorders the sums relative to the
// serial loop (rounding only).

namespace {

inline int64_t tri_index(int64_t r) { return r * (r + 1) / 2; }

template <class T>
void hamming_dp_range(const HammingDpBlock& blk, int64_t k0, int64_t k1, double* scratch) {
  using V = typename T::V;
  using M = typename T::M;
  constexpr int W = T::kLanes;
  const PairLossArgs& a = *blk.args;
  const int64_t n = a.shape.dims;
  double* D = scratch;
  double* G = D + tri_index(n + 1) * W;
  double* Q = G + (n + 1) * W;
  double* OMQ = Q + n * W;
  double* P1 = OMQ + n * W;
  double* P2 = P1 + n * W;
  double* tile = P2 + n * W;  // this block's results before they are transposed into records
  const double* Lneg = blk.table;
  const double* Aneg = Lneg + (n + 1);
  const double* Bneg = Aneg + (n + 1);
  const double* Lpos = Bneg + (n + 1);
  const double* Apos = Lpos + (n + 1);
  const double* Bpos = Apos + (n + 1);
  const int64_t record = 2 * n + 2;
  const V one = T::set1(1.0);
  const V two = T::set1(2.0);

  for (int64_t kb = k0; kb < k1; kb += W) {
    const int m = k1 - kb < W ? static_cast<int>(k1 - kb) : W;
    // Lanes past the last pair repeat it (finite values, results dropped).
    const float* ra[W];
    const float* rb[W];
    alignas(64) double lab[W];
    alignas(64) double wt[W];
    for (int lane = 0; lane < W; ++lane) {
      const int64_t k = kb + (lane < m ? lane : m - 1);
      ra[lane] = blk.p + static_cast<int64_t>(a.pairs[2 * k]) * n;
      rb[lane] = blk.p + static_cast<int64_t>(a.pairs[2 * k + 1]) * n;
      lab[lane] = a.labels[k];
      wt[lane] = a.weights ? static_cast<double>(a.weights[k]) : 1.0;
    }
    const M pos = T::gt(T::load(lab), T::zero());

    // p of the W pairs' images, dimension-major (a transpose of W rows, kColumns dimensions at a
    // time: measured faster than one gather per dimension and image).
    for (int64_t i0 = 0; i0 < n; i0 += T::kColumns) {
      const int cols = n - i0 < T::kColumns ? static_cast<int>(n - i0) : T::kColumns;
      T::load_columns(ra, i0, cols, P1 + i0 * W);
      T::load_columns(rb, i0, cols, P2 + i0 * W);
    }
    for (int64_t i = 0; i < n; ++i) {
      const V p1 = T::load(P1 + i * W);
      const V p2 = T::load(P2 + i * W);
      const V m1 = T::sub(one, p1), m2 = T::sub(one, p2);
      T::store(Q + i * W, T::fmadd(p1, m2, T::mul(p2, m1)));
      T::store(OMQ + i * W, T::fmadd(m1, m2, T::mul(p1, p2)));
    }

    // Forward: D[i][j] = q D[i-1][j-1] + (1 - q) D[i-1][j].
    T::store(D, one);
    for (int64_t i = 1; i <= n; ++i) {
      const double* prev = D + tri_index(i - 1) * W;
      double* cur = D + tri_index(i) * W;
      const V q = T::load(Q + (i - 1) * W), omq = T::load(OMQ + (i - 1) * W);
      V left = T::load(prev);
      T::store(cur, T::mul(omq, left));
      for (int64_t j = 1; j < i; ++j) {
        const V here = T::load(prev + j * W);
        T::store(cur + j * W, T::fmadd(q, left, T::mul(omq, here)));
        left = here;
      }
      T::store(cur + i * W, T::mul(q, left));
    }

    const double* Dn = D + tri_index(n) * W;
    V e = T::zero(), da = T::zero(), db = T::zero();
    for (int64_t j = 0; j <= n; ++j) {
      const V d = T::load(Dn + j * W);
      e = T::fmadd(d, T::blend(pos, T::set1(Lpos[j]), T::set1(Lneg[j])), e);
      if (blk.backward) {
        da = T::fmadd(d, T::blend(pos, T::set1(Apos[j]), T::set1(Aneg[j])), da);
        db = T::fmadd(d, T::blend(pos, T::set1(Bpos[j]), T::set1(Bneg[j])), db);
      }
    }
    T::store_first(a.loss + kb, e, m);
    if (!blk.backward) continue;

    const V c = T::mul(T::set1(a.scale), T::load(wt));
    T::store(tile + 2 * n * W, T::mul(c, da));
    T::store(tile + (2 * n + 1) * W, T::mul(c, db));

    // Backward: G[j] <- G[j] + q_i (G[j+1] - G[j]), dE/dq_i = sum_j D[i-1][j] (G[j+1] - G[j]).
    // Two rows per sweep over G (rows i and i-1): G is read and written once for both, which
    // halves its load / store traffic, the limit of this loop.
    for (int64_t j = 0; j <= n; ++j) T::store(G + j * W, T::blend(pos, T::set1(Lpos[j]), T::set1(Lneg[j])));
    auto finish_row = [&](int64_t i, V s) {
      const V qbar = T::mul(c, s);
      // dE/dp_a = qbar (1 - 2 p_b), dE/dp_b = qbar (1 - 2 p_a).
      const V fa = T::sub(one, T::mul(two, T::load(P2 + (i - 1) * W)));
      const V fb = T::sub(one, T::mul(two, T::load(P1 + (i - 1) * W)));
      T::store(tile + (i - 1) * W, T::mul(qbar, fa));
      T::store(tile + (n + i - 1) * W, T::mul(qbar, fb));
    };
    int64_t i = n;
    for (; i >= 2; i -= 2) {
      // G holds G_i (entries 0..i); computes G_{i-1} on the fly (h) and writes G_{i-2}.
      const double* pa_row = D + tri_index(i - 1) * W;  // D[i-1], i entries
      const double* pb_row = D + tri_index(i - 2) * W;  // D[i-2], i-1 entries
      const V qa = T::load(Q + (i - 1) * W), qb = T::load(Q + (i - 2) * W);
      V sa0 = T::zero(), sa1 = T::zero(), sb0 = T::zero(), sb1 = T::zero();
      V g0 = T::load(G);
      V g1 = T::load(G + W);
      V da = T::sub(g1, g0);
      sa0 = T::fmadd(T::load(pa_row), da, sa0);
      V h0 = T::fmadd(qa, da, g0);  // G_{i-1}[0]
      int64_t j = 1;
      for (; j + 1 < i; j += 2) {
        // j: G_{i-1}[j], then G_{i-2}[j-1]; j+1: G_{i-1}[j+1], then G_{i-2}[j].
        const V g2 = T::load(G + (j + 1) * W);
        const V g3 = T::load(G + (j + 2) * W);
        const V da1 = T::sub(g2, g1), da2 = T::sub(g3, g2);
        sa1 = T::fmadd(T::load(pa_row + j * W), da1, sa1);
        sa0 = T::fmadd(T::load(pa_row + (j + 1) * W), da2, sa0);
        const V h1 = T::fmadd(qa, da1, g1);
        const V h2 = T::fmadd(qa, da2, g2);
        const V db1 = T::sub(h1, h0), db2 = T::sub(h2, h1);
        sb0 = T::fmadd(T::load(pb_row + (j - 1) * W), db1, sb0);
        sb1 = T::fmadd(T::load(pb_row + j * W), db2, sb1);
        T::store(G + (j - 1) * W, T::fmadd(qb, db1, h0));
        T::store(G + j * W, T::fmadd(qb, db2, h1));
        g1 = g3;
        h0 = h2;
      }
      if (j < i) {
        const V g2 = T::load(G + (j + 1) * W);
        const V da1 = T::sub(g2, g1);
        sa1 = T::fmadd(T::load(pa_row + j * W), da1, sa1);
        const V h1 = T::fmadd(qa, da1, g1);
        const V db1 = T::sub(h1, h0);
        sb0 = T::fmadd(T::load(pb_row + (j - 1) * W), db1, sb0);
        T::store(G + (j - 1) * W, T::fmadd(qb, db1, h0));
      }
      finish_row(i, T::add(sa0, sa1));
      finish_row(i - 1, T::add(sb0, sb1));
    }
    if (i == 1) {
      // The last single row: D[0] = 1, so dE/dq_1 = G_1[1] - G_1[0].
      const V g0 = T::load(G), g1 = T::load(G + W);
      finish_row(1, T::mul(T::load(D), T::sub(g1, g0)));
    }
    // Transpose the tile (lane-minor) into the pairs' records (one contiguous record per pair,
    // which the per-image reduction then reads with unit stride).
    for (int lane = 0; lane < m; ++lane) {
      double* rec = blk.records + (kb + lane - blk.chunk_begin) * record;
      for (int64_t r = 0; r < record; ++r) rec[r] = tile[r * W + lane];
    }
  }
}

}  // namespace

void hamming_dp(const PairLossArgs& args, const float* p, float* grad_p) {
  hamming_dp_drive(args, p, grad_p, Traits::kLanes, hamming_dp_range<Traits>);
}
