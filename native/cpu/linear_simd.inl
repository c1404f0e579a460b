// Fully connected layer on a hand-written blocked SGEMM, shared by linear_avx2.cpp and
// linear_avx512.cpp. Each of those files defines a vector-traits struct (VT below) inside an
// anonymous namespace of its ISA namespace and then includes this file there, so every function
// here has internal linkage and is compiled once per ISA with that ISA's flags. Nothing from the
// standard library that is inline or templated is used (see dcl/parallel.h on ODR safety).
//
// The traits struct provides:
//   V, W (floats per vector), MR (micro-tile rows, 6), MAX_NV (vectors per micro-tile row),
//   DOT_RI / DOT_RJ / DOT_MAX_ROWS (dot-product path), zero, loadu, storeu, bcast, fma, add,
//   load_part / store_part (first n lanes; the others read as zero / left untouched) and hsum.
//
// The GEMM: C[M,N] = A[M,K] B[K,N] (+ bias), C row-major with stride ldc (or written transposed),
//   A(i,k) = a[i * a_rs + k * a_cs]   (any strides: x, w and dy row-major, or dy transposed),
//   B(k,j) = b[k * b_rs + j * b_cs]   (b_cs == 1: rows of B contiguous; b_rs == 1: columns).
// The three linear ops map onto it as
//   forward          y   = x w^T : M=batch, N=out, K=in,    A = x,  B(k,j) = w[j,k]
//                 or y^T = w x^T : M=out, N=batch, K=in,    A = w,  B(k,j) = x[j,k]  (see below)
//   backward_input   dx  = dy w  : M=batch, N=in,  K=out,   A = dy, B(k,j) = w[k,j]
//   backward_weight  dw = dy^T x : M=out,   N=in,  K=batch, A(i,k) = dy[k,i], B(k,j) = x[k,j]
//
// Structure (BLIS-like, simplified):
// - B is packed into panels of NR = MAX_NV * W columns, k-major (for each k, NR contiguous
//   floats), zero-padded to a whole number of vectors, so the micro-kernel has no column tail
//   inside its k loop (only its final store is masked). When B's columns are contiguous in memory
//   (forward: rows of w or x), packing transposes 8 x 8 blocks in registers.
// - A is not packed: the micro-kernel broadcasts A(i,k) straight from the source (row and k
//   strides). Packing A would cost about as much as packing B at batch 64 while being reused
//   only N/NR times. The last row tile uses a micro-kernel instantiated for its exact row count.
// - Loops: column block (NC) > K block (KC, B block packed here) > row tile (MR) > panel (NR) >
//   micro-kernel over kc. The packed B block (KC x NC floats, at most kPackBudget = 256 KB) sits
//   in the 1 MB L2; the A sliver of one row tile (MR x KC = 6 KB) sits in L1 and is reused for
//   every panel of the block. The micro-kernel streams its B panel from L2: at 6 x 4 zmm that is
//   256 bytes per 24 FMA cycles, far below what L2 delivers, so B needs no L1 residency (with
//   all operands in L2 the 6 x 4 kernel measured 113 GFLOP/s on one core, 98% of the FMA peak).
// - Threads split the columns (each packs only its own part of B) or, when there are too few
//   column panels to share out evenly, the row tiles. No two threads write the same element.
//   Scratch (packed B, transposed C blocks) is one thread_scratch slot of the calling thread,
//   sliced per chunk, so nothing is allocated inside a worker.
// - When a thread's row range is a single row tile (batch <= 6), packed B would be used once, so
//   full panels are read in place from B and only the column tail is packed.
// - Forward: packing w^T means transposing out*in floats per call, ~17% of the time at batch 64
//   on one core. When batch is small next to out, the product is run swapped (y^T = w x^T): w is
//   then the unpacked A, only x^T (batch*in) is packed, and each thread transposes its block of
//   y^T out at the end. A cost estimate picks the orientation (swapped at batch 64 / out 256,
//   direct at batch 256). With at most DOT_MAX_ROWS rows (batch 1 inference) or fewer than W
//   outputs, a dot-product path vectorized along k needs no packing at all.

// Packed B block budget in floats: 64 K floats = 256 KB, a quarter of the 1 MB L2, leaving room
// for the A rows streaming through and the C tiles.
constexpr int64_t kPackBudget = 64 * 1024;
// Default K block: 256 keeps the A sliver (MR x KC) at 6 KB in the 32 KB L1 and the packed B
// block at least 256 columns wide; the C tile is reloaded once per KC steps (negligible).
constexpr int64_t kKc = 256;
// Below this many FLOPs (about 20 us on one core) a call runs on the calling thread. A parallel
// region costs ~4 us when the pool's workers are awake, but ~30-80 us in this VM once they have
// slept for more than ~10 us (measured), so splitting a 10 us product rarely pays.
constexpr double kMinParallelFlops = 2.0e6;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Gemm {
  int64_t M, N, K;
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;
  int64_t b_rs, b_cs;
  float* c;
  int64_t ldc;
  // Per column of C, or nullptr. With c_trans: per row of C (a column of what is written).
  const float* bias;
  // Write C transposed: c[j * ldc + i] = C(i,j) (+ bias[i]). Each thread computes its block of C
  // into scratch and transposes it out at the end (a small fraction of the work: M*N elements
  // against M*N*K FMAs).
  bool c_trans;
};

// Micro-kernel: an R x (NV * W) tile of C (R <= MR rows) over kc steps of k.
//   a: A(i0, k0); a_rs / a_cs: steps from row to row and from k to k+1 in A; b: panel start;
//   b_ks: step from k to k+1 in the panel (NV * W when packed, the row stride of B when read in
//   place). Registers at full size: MR * NV accumulators + NV B vectors + 1 broadcast =
//   6*4+4+1 = 29 of 32 zmm, 6*2+2+1 = 15 of 16 ymm. Row tails get their own instantiation
//   (R < MR) rather than computing rows that are thrown away: at batch 1 that would be 6x the work.
// The tile's first `cols` columns are written: C = acc + bias (first K block) or C += acc (later
// K blocks); only the last vector can be partial (masked load / store).
template <class T, int R, int NV>
void micro_kernel(int64_t kc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                  int64_t b_ks, float* c, int64_t ldc, int64_t cols, const float* bias,
                  bool accumulate) {
  using V = typename T::V;
  constexpr int W = T::W;
  int64_t ro[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) ro[r] = r * a_rs;
  V acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = T::zero();
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = T::loadu(b + v * W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const V av = T::bcast(a + ro[r]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = T::fma(av, bv[v], acc[r][v]);
    }
    a += a_cs;
    b += b_ks;
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const int64_t j = static_cast<int64_t>(v) * W;
      if (j + W <= cols) {
        V out = acc[r][v];
        if (accumulate)
          out = T::add(out, T::loadu(cr + j));
        else if (bias)
          out = T::add(out, T::loadu(bias + j));
        T::storeu(cr + j, out);
      } else if (j < cols) {
        const int n = static_cast<int>(cols - j);
        V out = acc[r][v];
        if (accumulate)
          out = T::add(out, T::load_part(cr + j, n));
        else if (bias)
          out = T::add(out, T::load_part(bias + j, n));
        T::store_part(cr + j, out, n);
      }
    }
  }
}

template <class T, int R>
void run_micro_rows(int nv, int64_t kc, const float* a, int64_t a_rs, int64_t a_cs,
                    const float* b, int64_t b_ks, float* c, int64_t ldc, int64_t cols,
                    const float* bias, bool accumulate) {
  switch (nv) {
    case 1:
      micro_kernel<T, R, 1>(kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    case 2:
      if constexpr (T::MAX_NV >= 2)
        micro_kernel<T, R, 2>(kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    case 3:
      if constexpr (T::MAX_NV >= 3)
        micro_kernel<T, R, 3>(kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    default:
      if constexpr (T::MAX_NV >= 4)
        micro_kernel<T, R, 4>(kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
  }
}

template <class T>
void run_micro(int64_t rows, int nv, int64_t kc, const float* a, int64_t a_rs, int64_t a_cs,
               const float* b, int64_t b_ks, float* c, int64_t ldc, int64_t cols,
               const float* bias, bool accumulate) {
  static_assert(T::MR == 6, "run_micro dispatches rows 1..6");
  switch (rows) {
    case 1:
      run_micro_rows<T, 1>(nv, kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    case 2:
      run_micro_rows<T, 2>(nv, kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    case 3:
      run_micro_rows<T, 3>(nv, kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    case 4:
      run_micro_rows<T, 4>(nv, kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    case 5:
      run_micro_rows<T, 5>(nv, kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
    default:
      run_micro_rows<T, 6>(nv, kc, a, a_rs, a_cs, b, b_ks, c, ldc, cols, bias, accumulate);
      break;
  }
}

// 8 x 8 transpose with 256-bit AVX (available under both ISAs' flags): dst + t*ldd receives
// column t of the block at src (rows src + r*lds).
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  // t[2p] / t[2p+1]: rows 2p and 2p+1 interleaved (low / high pairs of each 128-bit lane).
  __m256 t[8];
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  // c[4s + m]: in 128-bit lane q, column 4q + m of rows 4s .. 4s+3.
  __m256 c[8];
  for (int s = 0; s < 2; ++s) {
    c[4 * s + 0] = _mm256_shuffle_ps(t[4 * s], t[4 * s + 2], 0x44);
    c[4 * s + 1] = _mm256_shuffle_ps(t[4 * s], t[4 * s + 2], 0xEE);
    c[4 * s + 2] = _mm256_shuffle_ps(t[4 * s + 1], t[4 * s + 3], 0x44);
    c[4 * s + 3] = _mm256_shuffle_ps(t[4 * s + 1], t[4 * s + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    _mm256_storeu_ps(dst + m * ldd, _mm256_permute2f128_ps(c[m], c[4 + m], 0x20));
    _mm256_storeu_ps(dst + (4 + m) * ldd, _mm256_permute2f128_ps(c[m], c[4 + m], 0x31));
  }
}

// Packs B(k0 .. k0+kc, j0 .. j0+nc) into panels of NR columns: panel p starts at dst + p*NR*kc
// and holds, for each k, its width rounded up to whole vectors (zeros past column nc).
template <class T>
void pack_b(const Gemm& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  constexpr int W = T::W;
  constexpr int64_t NR = static_cast<int64_t>(T::MAX_NV) * W;
  for (int64_t jp = 0; jp < nc; jp += NR) {
    const int64_t width = imin(NR, nc - jp);
    const int64_t nv = ceil_div(width, W);
    const int64_t pw = nv * W;
    float* d = dst + jp * kc;
    if (g.b_cs == 1) {
      // Rows of B contiguous: copy each row segment, zero-filling the last vector.
      const float* s = g.b + k0 * g.b_rs + (j0 + jp);
      for (int64_t k = 0; k < kc; ++k) {
        const float* sk = s + k * g.b_rs;
        float* dk = d + k * pw;
        for (int64_t v = 0; v < nv; ++v) {
          const int64_t n = imin(W, width - v * W);
          if (n == W)
            T::storeu(dk + v * W, T::loadu(sk + v * W));
          else
            T::storeu(dk + v * W, T::load_part(sk + v * W, static_cast<int>(n)));
        }
      }
    } else {
      // Columns of B contiguous (B(k,j) = b[j * b_cs + k]): 8 columns x 8 k at a time through an
      // in-register transpose. Groups of 8 source rows, not W: rows of w are usually a multiple
      // of 4 KB apart, so the lines read together all fall in one set of the 8-way L1; with 16
      // rows in flight (a 16 x 16 zmm transpose) they evicted each other and packing ran from
      // L3 at half the speed. The k tail and a partial last group go element by element.
      for (int64_t g8 = 0; g8 < pw; g8 += 8) {
        const int64_t n = imax(0, imin(8, width - g8));  // valid source rows in this group
        const float* s = n > 0 ? g.b + (j0 + jp + g8) * g.b_cs + k0 : nullptr;
        float* dg = d + g8;
        int64_t k = 0;
        if (n == 8)
          for (; k + 8 <= kc; k += 8) transpose8x8(s + k, g.b_cs, dg + k * pw, pw);
        for (; k < kc; ++k) {
          float* dk = dg + k * pw;
          int64_t r = 0;
          for (; r < n; ++r) dk[r] = s[r * g.b_cs + k];
          for (; r < 8; ++r) dk[r] = 0.0f;
        }
      }
    }
  }
}

// One thread's share: rows [i0, i1) x columns [j0, j1) of C, all of K. `scratch` holds at least
// kc_max * nc_max floats, 64-byte aligned.
template <class T>
void gemm_range(const Gemm& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t kc_max,
                int64_t nc_max, float* scratch) {
  constexpr int W = T::W;
  constexpr int MR = T::MR;
  constexpr int64_t NR = static_cast<int64_t>(T::MAX_NV) * W;
  const int64_t kblocks = ceil_div(g.K, kc_max);
  const bool in_place = g.b_cs == 1 && i1 - i0 <= MR;
  for (int64_t jc = j0; jc < j1; jc += nc_max) {
    const int64_t nc = imin(nc_max, j1 - jc);
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      // Even K blocks (K = 257 gives 129 + 128, not 256 + 1).
      const int64_t k0 = g.K * kb / kblocks;
      const int64_t kc = g.K * (kb + 1) / kblocks - k0;
      const bool accumulate = kb > 0;
      if (!in_place) pack_b<T>(g, k0, kc, jc, nc, scratch);
      for (int64_t i = i0; i < i1; i += MR) {
        const int64_t rows = imin(MR, i1 - i);
        const float* a = g.a + i * g.a_rs + k0 * g.a_cs;
        float* crow = g.c + i * g.ldc;
        for (int64_t jp = 0; jp < nc; jp += NR) {
          const int64_t cols = imin(NR, nc - jp);
          const int nv = static_cast<int>(ceil_div(cols, W));
          const int64_t j = jc + jp;
          const float* bias = g.bias ? g.bias + j : nullptr;
          const float* panel;
          int64_t b_ks;
          if (!in_place) {
            panel = scratch + jp * kc;
            b_ks = static_cast<int64_t>(nv) * W;
          } else if (cols % W == 0) {
            panel = g.b + k0 * g.b_rs + j;
            b_ks = g.b_rs;
          } else {
            // Column tail read in place would run past the end of B: pack just this panel.
            pack_b<T>(g, k0, kc, j, cols, scratch);
            panel = scratch;
            b_ks = static_cast<int64_t>(nv) * W;
          }
          run_micro<T>(rows, nv, kc, a, g.a_rs, g.a_cs, panel, b_ks, crow + j, g.ldc, cols, bias,
                       accumulate);
        }
      }
    }
  }
}

template <class T>
void gemm(const Gemm& g) {
  constexpr int MR = T::MR;
  constexpr int64_t NR = static_cast<int64_t>(T::MAX_NV) * T::W;
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) {
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) {
        if (g.c_trans)
          g.c[j * g.ldc + i] = g.bias ? g.bias[i] : 0.0f;
        else
          g.c[i * g.ldc + j] = g.bias ? g.bias[j] : 0.0f;
      }
    return;
  }
  // B read in place (one row tile, rows of B contiguous, see gemm_range): with a short K block
  // the micro-kernels walk bands of 8 rows of B left to right, 8 sequential streams that the
  // prefetchers follow; a long block makes each call hop down 256 rows 16 KB apart. Measured at
  // in=4096: batch 1 backward_input 2x (AVX-512) to 5x (AVX2) faster with 8. With 3..6 rows the
  // 16-float AVX2 panels still prefer 8, while AVX-512 (256-byte row segments, C traffic per
  // block 4x larger) is faster with the usual block.
  const bool in_place = g.b_cs == 1 && g.M <= MR;
  const int64_t kc_target = in_place && (T::W == 8 || g.M <= 2) ? 8 : kKc;
  const int64_t kblocks = ceil_div(g.K, kc_target);
  const int64_t kc_max = ceil_div(g.K, kblocks);
  const int64_t panels = ceil_div(g.N, NR);
  const int64_t tiles = ceil_div(g.M, MR);

  int64_t threads = thread_count();
  if (2.0 * static_cast<double>(g.M) * static_cast<double>(g.N) * static_cast<double>(g.K) <
      kMinParallelFlops)
    threads = 1;
  // Split columns when the panels share out about as evenly as the row tiles (splitting rows
  // makes every thread pack all of B); otherwise split row tiles.
  bool split_cols = true;
  if (threads > 1) {
    const double col_balance =
        static_cast<double>(panels) / static_cast<double>(threads * ceil_div(panels, threads));
    const double row_balance =
        static_cast<double>(tiles) / static_cast<double>(threads * ceil_div(tiles, threads));
    split_cols = col_balance + 0.1 >= row_balance;
  }
  const int64_t chunks = imin(threads, split_cols ? panels : tiles);
  // Column block: as many panels as fit the pack budget at this kc, no more than one chunk needs.
  const int64_t chunk_panels = split_cols ? ceil_div(panels, chunks) : panels;
  const int64_t chunk_rows = split_cols ? g.M : ceil_div(tiles, chunks) * MR;
  const int64_t nc_max = NR * imax(1, imin(kPackBudget / (kc_max * NR), chunk_panels));
  // Per-chunk scratch (packed B, then C's block when transposing), each part rounded to whole
  // 64-byte lines; taken on the calling thread so that an allocation failure throws here, not
  // inside a worker.
  const int64_t pack_floats = ceil_div(kc_max * nc_max, 16) * 16;
  const int64_t c_floats = g.c_trans ? ceil_div(chunk_rows * chunk_panels * NR, 16) * 16 : 0;
  const int64_t per_chunk = pack_floats + c_floats;
  float* scratch = thread_scratch(3, static_cast<size_t>(per_chunk * chunks));

  auto run_chunk = [&](int64_t t) {
    float* mine = scratch + t * per_chunk;
    int64_t i0 = 0, i1 = g.M, j0 = 0, j1 = g.N;
    if (split_cols) {
      j0 = imin(g.N, panels * t / chunks * NR);
      j1 = imin(g.N, panels * (t + 1) / chunks * NR);
    } else {
      i0 = imin(g.M, tiles * t / chunks * MR);
      i1 = imin(g.M, tiles * (t + 1) / chunks * MR);
    }
    if (i0 >= i1 || j0 >= j1) return;
    if (!g.c_trans) {
      gemm_range<T>(g, i0, i1, j0, j1, kc_max, nc_max, mine);
      return;
    }
    // This chunk's block of C, row-major in scratch, then written out transposed.
    Gemm local = g;
    local.a = g.a + i0 * g.a_rs;
    local.b = g.b + j0 * g.b_cs;
    local.M = i1 - i0;
    local.N = j1 - j0;
    local.c = mine + pack_floats;
    local.ldc = local.N;
    local.bias = nullptr;
    local.c_trans = false;
    gemm_range<T>(local, 0, local.M, 0, local.N, kc_max, nc_max, mine);
    for (int64_t j = j0; j < j1; ++j) {
      const float* src = local.c + (j - j0);
      float* dst = g.c + j * g.ldc;
      for (int64_t i = i0; i < i1; ++i)
        dst[i] = src[(i - i0) * local.ldc] + (g.bias ? g.bias[i] : 0.0f);
    }
  };
  if (chunks <= 1) {
    run_chunk(0);
    return;
  }
  parallel_for(chunks, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) run_chunk(t);
  });
}

// Dot-product forward: y[i,j] = sum_k x[i,k] w[j,k] (+ bias[j]), vectorized along k (both
// operands contiguous in k). One tile: RI rows of x (exactly; RI <= DOT_RI) by DOT_RJ rows of w
// (a column tail repeats the last valid row of w and drops the result), each of the RI * DOT_RJ
// vector accumulators reduced horizontally at the end.
template <class T, int RI>
void dot_tile(const float* x, const float* w, const float* bias, float* y, int64_t K, int64_t N,
              int64_t i, int64_t j, int64_t cols) {
  using V = typename T::V;
  constexpr int W = T::W;
  constexpr int RJ = T::DOT_RJ;
  const int64_t kfull = K / W * W;
  const int ktail = static_cast<int>(K - kfull);
  const float* xr[RI];
  for (int r = 0; r < RI; ++r) xr[r] = x + (i + r) * K;
  const float* wr[RJ];
  for (int s = 0; s < RJ; ++s) wr[s] = w + (j + imin(s, cols - 1)) * K;
  V acc[RI][RJ];
#pragma GCC unroll 16
  for (int r = 0; r < RI; ++r)
#pragma GCC unroll 16
    for (int s = 0; s < RJ; ++s) acc[r][s] = T::zero();
  for (int64_t k = 0; k < kfull; k += W) {
    V wv[RJ];
#pragma GCC unroll 16
    for (int s = 0; s < RJ; ++s) wv[s] = T::loadu(wr[s] + k);
#pragma GCC unroll 16
    for (int r = 0; r < RI; ++r) {
      const V xv = T::loadu(xr[r] + k);
#pragma GCC unroll 16
      for (int s = 0; s < RJ; ++s) acc[r][s] = T::fma(xv, wv[s], acc[r][s]);
    }
  }
  if (ktail) {
    V wv[RJ];
#pragma GCC unroll 16
    for (int s = 0; s < RJ; ++s) wv[s] = T::load_part(wr[s] + kfull, ktail);
#pragma GCC unroll 16
    for (int r = 0; r < RI; ++r) {
      const V xv = T::load_part(xr[r] + kfull, ktail);
#pragma GCC unroll 16
      for (int s = 0; s < RJ; ++s) acc[r][s] = T::fma(xv, wv[s], acc[r][s]);
    }
  }
  for (int r = 0; r < RI; ++r)
    for (int s = 0; s < RJ; ++s) {
      if (s >= cols) break;
      y[(i + r) * N + j + s] = T::hsum(acc[r][s]) + (bias ? bias[j + s] : 0.0f);
    }
}

// Rows [i0,i1) x columns [j0,j1) of y. Column groups outer, row tiles inner: each group of w
// rows is read from memory once and reused from cache for every row tile.
template <class T>
void dot_forward_range(const float* x, const float* w, const float* bias, float* y, int64_t K,
                       int64_t N, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  constexpr int RI = T::DOT_RI;
  for (int64_t j = j0; j < j1; j += T::DOT_RJ) {
    const int64_t cols = imin(T::DOT_RJ, j1 - j);
    for (int64_t i = i0; i < i1; i += RI) {
      const int64_t rows = imin(RI, i1 - i);
      if (rows == RI)
        dot_tile<T, RI>(x, w, bias, y, K, N, i, j, cols);
      else if (rows == 1)
        dot_tile<T, 1>(x, w, bias, y, K, N, i, j, cols);
      else if (rows == 2)
        dot_tile<T, 2>(x, w, bias, y, K, N, i, j, cols);
      else if constexpr (RI > 3)
        dot_tile<T, 3>(x, w, bias, y, K, N, i, j, cols);
    }
  }
}

template <class T>
void dot_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  const int64_t M = s.batch, N = s.out_features, K = s.in_features;
  int64_t threads = thread_count();
  if (2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) <
      kMinParallelFlops)
    threads = 1;
  // Split the output columns (rows of w) in whole groups of DOT_RJ; fall back to the rows.
  const int64_t groups = ceil_div(N, T::DOT_RJ);
  const bool split_cols = groups >= threads;
  const int64_t chunks = imin(threads, split_cols ? groups : M);
  if (chunks <= 1) {
    dot_forward_range<T>(x, w, b, y, K, N, 0, M, 0, N);
    return;
  }
  parallel_for(chunks, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      if (split_cols) {
        const int64_t g0 = groups * t / chunks, g1 = groups * (t + 1) / chunks;
        dot_forward_range<T>(x, w, b, y, K, N, 0, M, g0 * T::DOT_RJ, imin(N, g1 * T::DOT_RJ));
      } else {
        dot_forward_range<T>(x, w, b, y, K, N, M * t / chunks, M * (t + 1) / chunks, 0, N);
      }
    }
  });
}

template <class T>
void linear_forward_impl(const LinearShape& s, const float* x, const float* w, const float* b,
                         float* y) {
  const int64_t M = s.batch, N = s.out_features, K = s.in_features;
  if (M <= 0 || N <= 0) return;
  // Few rows: packing w (transposed) would cost as much as using it. Few columns: the packed
  // panel would be mostly zero padding, while the dot path keeps all lanes busy along k.
  if (K >= T::W && (M <= T::DOT_MAX_ROWS || N < T::W)) {
    dot_forward<T>(s, x, w, b, y);
    return;
  }
  // Two ways to run it. Direct: C = y = x w^T, B = w^T is packed (transposing w, out*in
  // elements per call, shared out among the threads). Swapped: C = y^T = w x^T, A = w is read in
  // place and B = x^T is packed (batch*in elements, by every thread), C is transposed on the way
  // out. Estimated per-thread cost, in lane-FMAs per unit of K: rows x columns padded to whole
  // vectors / threads, plus ~10 per packed element (packing runs at ~0.6 cycle per element while
  // the FMA unit does 16 lanes per cycle). At batch 64, out 256 swapped wins (half as much to
  // pack; measured 107 against 89 GFLOP/s on one core); at batch 256 direct wins.
  const double flops =
      2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const double threads = flops < kMinParallelFlops ? 1.0 : static_cast<double>(thread_count());
  const double rows_batch = static_cast<double>(M), rows_out = static_cast<double>(N);
  const double cols_batch = static_cast<double>(ceil_div(M, T::W) * T::W);
  const double cols_out = static_cast<double>(ceil_div(N, T::W) * T::W);
  const double direct = rows_batch * cols_out / threads + 10.0 * rows_out / threads;
  const double swapped = rows_out * cols_batch / threads + 10.0 * rows_batch;
  if (swapped < direct) {
    Gemm g{N, M, K, w, K, 1, x, 1, K, y, N, b, true};
    gemm<T>(g);
  } else {
    Gemm g{M, N, K, x, K, 1, w, 1, K, y, N, b, false};
    gemm<T>(g);
  }
}

template <class T>
void linear_backward_input_impl(const LinearShape& s, const float* dy, const float* w,
                                float* dx) {
  const int64_t M = s.batch, N = s.in_features, K = s.out_features;
  Gemm g{M, N, K, dy, K, 1, w, N, 1, dx, N, nullptr, false};
  gemm<T>(g);
}

template <class T>
void linear_backward_weight_impl(const LinearShape& s, const float* x, const float* dy,
                                 float* dw, float* db) {
  const int64_t batch = s.batch, in = s.in_features, out = s.out_features;
  Gemm g{out, in, batch, dy, 1, out, x, in, 1, dw, in, nullptr, false};
  gemm<T>(g);
  if (db && out > 0) {
    // Column sums of dy, W columns at a time (batch * out adds: negligible next to the GEMM).
    for (int64_t o = 0; o < out; o += T::W) {
      const int n = static_cast<int>(imin(T::W, out - o));
      typename T::V acc = T::zero();
      for (int64_t i = 0; i < batch; ++i) acc = T::add(acc, T::load_part(dy + i * out + o, n));
      T::store_part(db + o, acc, n);
    }
  }
}
