// Winograd F(2x2, 3x3) conv2d (3x3, stride 1, padding 1) for the SIMD paths, shared by
// winograd_avx2.cpp and winograd_avx512.cpp. Each includes this file after defining, inside its
// own ISA namespace and an anonymous namespace:
//   struct Vec { using reg; static constexpr int W; zero(); load(p); store(p, v); set1(x);
//                add(a, b); sub(a, b); mul(a, b); fmadd(a, b, c); transpose(reg[W]) }
//   constexpr int kMaxVectors;                   -- column vectors per register tile (NV)
//   template <int NV> constexpr int max_rows();  -- rows per register tile for NV vectors
// so the same source is compiled once per ISA with that ISA's flags (see parallel.h for why no
// shared inline library code may be used here).
//
// The algorithm (Lavin & Gray). A 2x2 block of outputs of a 3x3 correlation is
//   Y = A^T [ (G g G^T) . (B^T d B) ] A
// with d the 4x4 input patch whose origin is (2 ty - 1, 2 tx - 1) (zero outside the image), g the
// 3x3 filter, "." the element-wise product and
//   B^T = | 1  0 -1  0 |   G = | 1    0    0  |   A^T = | 1  1  1  0 |
//         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
//         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |       | 0    0    1  |
// (1-D: y0 = d0 g0 + d1 g1 + d2 g2 = m0 + m1 + m2, y1 = d1 g0 + d2 g1 + d3 g2 = m1 - m2 - m3 with
// m0 = (d0 - d2) g0, m1 = (d1 + d2)(g0 + g1 + g2)/2, m2 = (d2 - d1)(g0 - g1 + g2)/2,
// m3 = (d1 - d3) g2; the 2-D form applies it along rows and columns.) Summed over input channels,
// the element-wise products become 16 independent GEMMs, one per position xi = 4 r + c of the
// 4x4 transformed tile:
//   forward:   M[xi] (tiles x Cout) = V[xi] (tiles x Cin) * U[xi] (Cin x Cout),
//              V = B^T d B per tile and channel, U = G g G^T per filter, Y = A^T M A (+ bias).
//   backward input: the same with the filters flipped in space and Cin, Cout swapped (a 3x3,
//              stride-1, pad-1 transposed convolution is such a convolution).
//   backward weight: the adjoint of each step: dM = A dY A^T per tile (dY = 0 outside the
//              output), dU[xi] (Cin x Cout) = sum over tiles of V[xi]^T dM[xi], dg = G^T dU G.
//
// Tiles of all images are numbered in (image, tile row, tile column) order and processed in
// blocks small enough that a block's V and M stay in L2. For each block: the input rows it needs
// are turned from NCHW into zero-padded NHWC rows (so channels are contiguous and the transforms
// run on channel vectors), transformed, multiplied (register-tiled micro-kernels: each loaded
// weight vector feeds MR rows, each broadcast NV vectors) and transformed back into NHWC rows,
// which are transposed into the NCHW output. Channel counts are padded to a multiple of W with
// zero weights so no vector needs a masked tail.

namespace {

inline int64_t wmin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t wmax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t wround_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

using reg = typename Vec::reg;

// One 3x3 / stride 1 / pad 1 problem as the forward machinery sees it (backward input is a
// forward problem with the channel roles swapped). Output size = input size.
struct Geometry {
  int64_t batch, cin, cout, h, w;
  int64_t tiles_y, tiles_x, tiles_per_image, tiles;
  int64_t cinp, coutp;  // channels padded to a multiple of W
  int64_t pw;           // width of a padded NHWC input row: 2 tiles_x + 2 (image column c at c + 1)
};

Geometry make_geometry(int64_t batch, int64_t cin, int64_t cout, int64_t h, int64_t w) {
  Geometry g;
  g.batch = batch;
  g.cin = cin;
  g.cout = cout;
  g.h = h;
  g.w = w;
  g.tiles_y = (h + 1) / 2;
  g.tiles_x = (w + 1) / 2;
  g.tiles_per_image = g.tiles_y * g.tiles_x;
  g.tiles = batch * g.tiles_per_image;
  g.cinp = wround_up(cin, Vec::W);
  g.coutp = wround_up(cout, Vec::W);
  g.pw = 2 * g.tiles_x + 2;
  return g;
}

// ---- layout changes ---------------------------------------------------------------------------

// dst[p * ld + c] = src[c * plane + p] for p < count, c < channels: W x W blocks through an
// in-register transpose, tails element by element.
void planes_to_rows(const float* src, int64_t plane, int64_t count, int64_t channels, float* dst,
                    int64_t ld) {
  constexpr int W = Vec::W;
  const int64_t full_p = count / W * W, full_c = channels / W * W;
  for (int64_t p0 = 0; p0 < full_p; p0 += W) {
    for (int64_t c0 = 0; c0 < full_c; c0 += W) {
      reg r[W];
      for (int i = 0; i < W; ++i) r[i] = Vec::load(src + (c0 + i) * plane + p0);
      Vec::transpose(r);
      for (int i = 0; i < W; ++i) Vec::store(dst + (p0 + i) * ld + c0, r[i]);
    }
    for (int64_t c = full_c; c < channels; ++c)
      for (int i = 0; i < W; ++i) dst[(p0 + i) * ld + c] = src[c * plane + p0 + i];
  }
  for (int64_t p = full_p; p < count; ++p)
    for (int64_t c = 0; c < channels; ++c) dst[p * ld + c] = src[c * plane + p];
}

// dst[c * plane + p] = src[p * ld + c] for p < count, c < channels.
void rows_to_planes(const float* src, int64_t ld, int64_t count, int64_t channels, float* dst,
                    int64_t plane) {
  constexpr int W = Vec::W;
  const int64_t full_p = count / W * W, full_c = channels / W * W;
  for (int64_t p0 = 0; p0 < full_p; p0 += W) {
    for (int64_t c0 = 0; c0 < full_c; c0 += W) {
      reg r[W];
      for (int i = 0; i < W; ++i) r[i] = Vec::load(src + (p0 + i) * ld + c0);
      Vec::transpose(r);
      for (int i = 0; i < W; ++i) Vec::store(dst + (c0 + i) * plane + p0, r[i]);
    }
    for (int64_t c = full_c; c < channels; ++c)
      for (int i = 0; i < W; ++i) dst[c * plane + p0 + i] = src[(p0 + i) * ld + c];
  }
  for (int64_t p = full_p; p < count; ++p)
    for (int64_t c = 0; c < channels; ++c) dst[c * plane + p] = src[p * ld + c];
}

inline void zero_floats(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = 0.0f;
}

// Rows [y0, y0 + rows) of one NCHW image (channels planes of h x w; rows outside the image are
// zero) -> padded NHWC rows of pw pixels x cp floats, image column c at pixel c + 1, every other
// pixel and the channels past `channels` zero.
void load_padded_rows(const float* image, int64_t channels, int64_t cp, int64_t h, int64_t w,
                      int64_t pw, int64_t y0, int64_t rows, float* buf) {
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t iy = y0 + k;
    float* row = buf + k * pw * cp;
    if (iy < 0 || iy >= h) {
      zero_floats(row, pw * cp);
      continue;
    }
    zero_floats(row, cp);
    zero_floats(row + (w + 1) * cp, (pw - w - 1) * cp);
    if (cp > channels)
      for (int64_t x = 1; x <= w; ++x) zero_floats(row + x * cp + channels, cp - channels);
    planes_to_rows(image + iy * w, h * w, w, channels, row + cp, cp);
  }
}

// Rows [y0, y0 + rows) of one NCHW image -> NHWC rows of pw pixels x cp floats, image column c
// at pixel c (no left padding), pixels past w, rows past h and channels past `channels` zero.
void load_rows(const float* image, int64_t channels, int64_t cp, int64_t h, int64_t w, int64_t pw,
               int64_t y0, int64_t rows, float* buf) {
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t iy = y0 + k;
    float* row = buf + k * pw * cp;
    if (iy >= h) {
      zero_floats(row, pw * cp);
      continue;
    }
    zero_floats(row + w * cp, (pw - w) * cp);
    if (cp > channels)
      for (int64_t x = 0; x < w; ++x) zero_floats(row + x * cp + channels, cp - channels);
    planes_to_rows(image + iy * w, h * w, w, channels, row, cp);
  }
}

// Calls f(n, q0, q1, j0) for each run of tiles [t0, t1) inside one image: image n, tiles
// [q0, q1) of that image (row-major over tile rows), j0 = index of tile q0 within the block.
template <class F>
inline void for_each_segment(const Geometry& g, int64_t t0, int64_t t1, F f) {
  for (int64_t t = t0; t < t1;) {
    const int64_t n = t / g.tiles_per_image;
    const int64_t end = wmin(t1, (n + 1) * g.tiles_per_image);
    f(n, t - n * g.tiles_per_image, end - n * g.tiles_per_image, t - t0);
    t = end;
  }
}

// ---- transforms -------------------------------------------------------------------------------

// The input transform of one tile: d = 4x4 patch of padded NHWC rows (row stride ld floats, pixel
// stride cp floats) -> v[xi * vstride + c] for every channel vector c < cp.
inline void input_transform(const float* d, int64_t ld, int64_t cp, float* v, int64_t vstride) {
  for (int64_t c = 0; c < cp; c += Vec::W) {
    reg e[4][4];
    for (int a = 0; a < 4; ++a) {
      const float* row = d + a * ld + c;
      const reg d0 = Vec::load(row), d1 = Vec::load(row + cp), d2 = Vec::load(row + 2 * cp),
                d3 = Vec::load(row + 3 * cp);
      // Along the row (columns of d): d B.
      e[a][0] = Vec::sub(d0, d2);
      e[a][1] = Vec::add(d1, d2);
      e[a][2] = Vec::sub(d2, d1);
      e[a][3] = Vec::sub(d1, d3);
    }
    for (int col = 0; col < 4; ++col) {
      // Down the column: B^T (d B).
      Vec::store(v + (0 + col) * vstride + c, Vec::sub(e[0][col], e[2][col]));
      Vec::store(v + (4 + col) * vstride + c, Vec::add(e[1][col], e[2][col]));
      Vec::store(v + (8 + col) * vstride + c, Vec::sub(e[2][col], e[1][col]));
      Vec::store(v + (12 + col) * vstride + c, Vec::sub(e[1][col], e[3][col]));
    }
  }
}

// The output transform of one tile: m[xi * mstride + c] -> Y = A^T M A (+ bias) for channels
// c < channels (a multiple of W), 2x2 outputs written to out + (p * ld + q * cp) for p < rows,
// q < cols (1 or 2 each: edge tiles are partial); cp is the pixel stride of out.
inline void output_transform(const float* m, int64_t mstride, int64_t channels, int64_t cp,
                             const float* bias, float* out, int64_t ld, int rows, int cols) {
  for (int64_t c = 0; c < channels; c += Vec::W) {
    reg f[2][4];
    for (int col = 0; col < 4; ++col) {
      const reg m0 = Vec::load(m + (0 + col) * mstride + c), m1 = Vec::load(m + (4 + col) * mstride + c),
                m2 = Vec::load(m + (8 + col) * mstride + c), m3 = Vec::load(m + (12 + col) * mstride + c);
      f[0][col] = Vec::add(Vec::add(m0, m1), m2);
      f[1][col] = Vec::sub(Vec::sub(m1, m2), m3);
    }
    const reg b = bias ? Vec::load(bias + c) : Vec::zero();
    for (int p = 0; p < rows; ++p) {
      const reg y0 = Vec::add(Vec::add(Vec::add(f[p][0], f[p][1]), f[p][2]), b);
      Vec::store(out + p * ld + c, y0);
      if (cols > 1) {
        const reg y1 = Vec::add(Vec::sub(Vec::sub(f[p][1], f[p][2]), f[p][3]), b);
        Vec::store(out + p * ld + cp + c, y1);
      }
    }
  }
}

// The adjoint of the output transform for one tile: dY (2x2 at dy + p * ld + q * cp, zero where
// the caller zeroed rows / columns outside the output) -> dm[xi * mstride + c] = (A dY A^T)[xi];
// also adds the tile's four dY to bias_acc (cp floats) when given.
inline void output_transform_adjoint(const float* dy, int64_t ld, int64_t cp, float* dm,
                                     int64_t mstride, float* bias_acc) {
  for (int64_t c = 0; c < cp; c += Vec::W) {
    const reg y00 = Vec::load(dy + c), y01 = Vec::load(dy + cp + c), y10 = Vec::load(dy + ld + c),
              y11 = Vec::load(dy + ld + cp + c);
    if (bias_acc)
      Vec::store(bias_acc + c,
                 Vec::add(Vec::load(bias_acc + c), Vec::add(Vec::add(y00, y01), Vec::add(y10, y11))));
    // A dY: rows (dy0, dy0 + dy1, dy0 - dy1, -dy1) for each column of dY.
    const reg r0[2] = {y00, y01};
    const reg r1[2] = {Vec::add(y00, y10), Vec::add(y01, y11)};
    const reg r2[2] = {Vec::sub(y00, y10), Vec::sub(y01, y11)};
    const reg r3[2] = {Vec::sub(Vec::zero(), y10), Vec::sub(Vec::zero(), y11)};
    const reg* rows[4] = {r0, r1, r2, r3};
    for (int r = 0; r < 4; ++r) {
      const reg a = rows[r][0], b = rows[r][1];
      Vec::store(dm + (4 * r + 0) * mstride + c, a);
      Vec::store(dm + (4 * r + 1) * mstride + c, Vec::add(a, b));
      Vec::store(dm + (4 * r + 2) * mstride + c, Vec::sub(a, b));
      Vec::store(dm + (4 * r + 3) * mstride + c, Vec::sub(Vec::zero(), b));
    }
  }
}

// U[xi][i][o] (o < op, padded lanes zero) = (G g G^T)[xi] for every filter g of (i, o): g's 3x3
// taps at w + i * stride_i + o * stride_o, in flipped order (g[k] = tap 8 - k) when `flip`; w
// holds `total` floats. One vector of W consecutive o per step: the W filters' taps are loaded as
// W rows (W floats from each filter's first tap) and transposed in registers, so that vector k
// holds tap k of the W filters (with W = 8 a second transpose of the rows one float further on
// gives tap 8); rows that would read past w, and partial vectors, go through a small array.
void transform_weights(const float* w, int64_t total, int64_t ni, int64_t no, int64_t op,
                       int64_t stride_i, int64_t stride_o, bool flip, float* u) {
  const int64_t plane = ni * op;  // floats per xi
  constexpr int W = Vec::W;
  auto range = [&](int64_t begin, int64_t end, int) {
    alignas(64) float tmp[9][W];
    const reg half = Vec::set1(0.5f);
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t o0 = 0; o0 < op; o0 += W) {
        const float* base = w + i * stride_i + o0 * stride_o;
        const int64_t lanes = wmin(W, no - o0);
        // The last float a row load reads (row W - 1, from tap 9 - W when W < 9).
        const int64_t last = (base - w) + (W - 1) * stride_o + (W < 9 ? 9 - W : 0) + W - 1;
        reg t[9];
        if (lanes == W && last < total) {
          reg r[W];
          for (int l = 0; l < W; ++l) r[l] = Vec::load(base + l * stride_o);
          Vec::transpose(r);
          for (int k = 0; k < 9 && k < W; ++k) t[k] = r[k];
          if constexpr (W < 9) {
            for (int l = 0; l < W; ++l) r[l] = Vec::load(base + l * stride_o + (9 - W));
            Vec::transpose(r);
            t[8] = r[W - 1];
          }
        } else {
          for (int k = 0; k < 9; ++k)
            for (int l = 0; l < W; ++l) tmp[k][l] = l < lanes ? base[l * stride_o + k] : 0.0f;
          for (int k = 0; k < 9; ++k) t[k] = Vec::load(tmp[k]);
        }
        reg g[9];
        for (int k = 0; k < 9; ++k) g[k] = t[flip ? 8 - k : k];
        // G g: rows (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2) for each column of g.
        reg a[4][3];
        for (int x = 0; x < 3; ++x) {
          const reg g0 = g[x], g1 = g[3 + x], g2 = g[6 + x];
          const reg s = Vec::add(g0, g2);
          a[0][x] = g0;
          a[1][x] = Vec::mul(Vec::add(s, g1), half);
          a[2][x] = Vec::mul(Vec::sub(s, g1), half);
          a[3][x] = g2;
        }
        float* out = u + i * op + o0;
        for (int r = 0; r < 4; ++r) {
          const reg s = Vec::add(a[r][0], a[r][2]);
          Vec::store(out + (4 * r + 0) * plane, a[r][0]);
          Vec::store(out + (4 * r + 1) * plane, Vec::mul(Vec::add(s, a[r][1]), half));
          Vec::store(out + (4 * r + 2) * plane, Vec::mul(Vec::sub(s, a[r][1]), half));
          Vec::store(out + (4 * r + 3) * plane, a[r][2]);
        }
      }
    }
  };
  if (ni * op >= 16384)
    parallel_for(ni, range);
  else
    range(0, ni, 0);
}

// ---- GEMM micro-kernels -------------------------------------------------------------------------

// C[MR][NV W] = A[MR][k] * B[k][NV W]; A rows at stride lda, B rows at stride ldb, C rows at ldc.
// Each step loads NV vectors of B and broadcasts one A value per row.
template <int MR, int NV>
inline void gemm_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                      int64_t ldc) {
  reg acc[MR][NV];
  const float* ar[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    ar[r] = a + r * lda;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = Vec::zero();
  }
  for (int64_t kk = 0; kk < k; ++kk, b += ldb) {
    reg bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Vec::load(b + v * Vec::W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const reg s = Vec::set1(ar[r][kk]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = Vec::fmadd(s, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Vec::store(c + r * ldc + v * Vec::W, acc[r][v]);
}

// C[MR][NV W] += A^T B over k steps: step kk broadcasts A[kk][0..MR) (contiguous, row stride lda)
// and loads B[kk][0..NV W) (row stride ldb). The accumulators start from C and go back to it, so
// a sum split over several calls is added in the same order as one long call.
template <int MR, int NV>
inline void gemm_at_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                         float* c, int64_t ldc) {
  reg acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = Vec::load(c + r * ldc + v * Vec::W);
  for (int64_t kk = 0; kk < k; ++kk, a += lda, b += ldb) {
    reg bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Vec::load(b + v * Vec::W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const reg s = Vec::set1(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = Vec::fmadd(s, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Vec::store(c + r * ldc + v * Vec::W, acc[r][v]);
}

// rows x (NV W) of C, in tiles of max_rows<NV>() rows and one tail tile. `at` selects the A^T
// (accumulating) kernel; rows then index A's columns.
template <int NV, bool AT>
void gemm_rows(int64_t rows, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc) {
  constexpr int MR = max_rows<NV>();
  const int64_t a_step = AT ? 1 : lda;  // from one row of C to the next, in A
  int64_t r0 = 0;
  for (; r0 + MR <= rows; r0 += MR) {
    if constexpr (AT)
      gemm_at_tile<MR, NV>(k, a + r0 * a_step, lda, b, ldb, c + r0 * ldc, ldc);
    else
      gemm_tile<MR, NV>(k, a + r0 * a_step, lda, b, ldb, c + r0 * ldc, ldc);
  }
  const float* at = a + r0 * a_step;
  float* ct = c + r0 * ldc;
  switch (rows - r0) {
    case 0: break;
#define DCL_TAIL(m)                                                           \
  case m:                                                                     \
    if constexpr (m < MR) {                                                   \
      if constexpr (AT)                                                       \
        gemm_at_tile<m, NV>(k, at, lda, b, ldb, ct, ldc);                     \
      else                                                                    \
        gemm_tile<m, NV>(k, at, lda, b, ldb, ct, ldc);                        \
    }                                                                         \
    break;
    DCL_TAIL(1) DCL_TAIL(2) DCL_TAIL(3) DCL_TAIL(4) DCL_TAIL(5) DCL_TAIL(6) DCL_TAIL(7)
    DCL_TAIL(8) DCL_TAIL(9) DCL_TAIL(10) DCL_TAIL(11) DCL_TAIL(12) DCL_TAIL(13) DCL_TAIL(14)
    DCL_TAIL(15)
#undef DCL_TAIL
    default: break;
  }
}

// C (rows x vectors W) = A B (AT = false) or += A^T B (AT = true), column blocks of kMaxVectors
// vectors outermost so that the block's slice of B (k x NV W) stays in L1 across the row tiles.
template <bool AT>
void gemm(int64_t rows, int64_t vectors, int64_t k, const float* a, int64_t lda, const float* b,
          int64_t ldb, float* c, int64_t ldc) {
  for (int64_t v0 = 0; v0 < vectors; v0 += kMaxVectors) {
    const int nv = static_cast<int>(wmin(kMaxVectors, vectors - v0));
    const float* bb = b + v0 * Vec::W;
    float* cc = c + v0 * Vec::W;
    switch (nv) {
      case 1: gemm_rows<1, AT>(rows, k, a, lda, bb, ldb, cc, ldc); break;
      case 2: if constexpr (kMaxVectors >= 2) gemm_rows<2, AT>(rows, k, a, lda, bb, ldb, cc, ldc); break;
      case 3: if constexpr (kMaxVectors >= 3) gemm_rows<3, AT>(rows, k, a, lda, bb, ldb, cc, ldc); break;
      case 4: if constexpr (kMaxVectors >= 4) gemm_rows<4, AT>(rows, k, a, lda, bb, ldb, cc, ldc); break;
      default: break;
    }
  }
}

// ---- blocking -----------------------------------------------------------------------------------

// Tiles per block: the block's V and M (16 (cinp + coutp) floats per tile) in about half of L2,
// a whole number of register tiles, and never so few that the micro-kernel's rows run short.
int64_t block_tiles(const Geometry& g) {
  constexpr int64_t MR = max_rows<kMaxVectors>();
  const int64_t l2_floats = l2_cache_bytes() / 4;
  const int64_t per_tile = 16 * (g.cinp + g.coutp);
  int64_t tb = (l2_floats / 2) / per_tile;
  tb = wmax(tb, 4 * MR);
  tb = wmin(tb, 40 * MR);
  return tb / MR * MR;
}

// Scratch floats for the NHWC rows of one segment of at most tb tiles: the padded input rows
// (2 per tile row + 2) or the output rows (2 per tile row), whichever is larger.
int64_t rows_scratch(const Geometry& g, int64_t tb, int64_t in_ld, int64_t out_ld) {
  const int64_t tile_rows = tb / g.tiles_x + 2;
  return wmax((2 * tile_rows + 2) * in_ld, 2 * tile_rows * out_ld);
}

// Input transform of tiles [t0, t1) of x (NCHW, g.cin channels) into v[xi][j][cinp], j = t - t0.
void transform_block_input(const Geometry& g, const float* x, int64_t t0, int64_t t1, float* xin,
                           float* v, int64_t tb) {
  const int64_t image = g.cin * g.h * g.w, row_ld = g.pw * g.cinp;
  const int64_t vstride = tb * g.cinp;
  for_each_segment(g, t0, t1, [&](int64_t n, int64_t q0, int64_t q1, int64_t j0) {
    const int64_t ty0 = q0 / g.tiles_x, ty1 = (q1 - 1) / g.tiles_x + 1;
    load_padded_rows(x + n * image, g.cin, g.cinp, g.h, g.w, g.pw, 2 * ty0 - 1, 2 * (ty1 - ty0) + 2, xin);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t ty = q / g.tiles_x, tx = q % g.tiles_x;
      input_transform(xin + 2 * (ty - ty0) * row_ld + 2 * tx * g.cinp, row_ld, g.cinp,
                      v + (j0 + q - q0) * g.cinp, vstride);
    }
  });
}

// ---- forward ------------------------------------------------------------------------------------

// y (NCHW, g.cout channels) = the convolution of x with the transformed filters u
// ([16][g.cin][g.coutp]) plus bias (g.coutp floats or nullptr).
//
// Work items are (part of the tiles, chunk of output channels). With enough tiles (training
// batches) a part is one block of block_tiles() tiles and there is one chunk; with fewer parts
// than threads (batch 1, deep layers) the output channels are split too, so that each thread reads
// only its share of U (2 MB for DCL-S's conv4) instead of all of it, and each item transforms its
// tiles' input itself (cheap: 1 / Cout of the GEMM). While items are few, the parts are made a
// multiple of the thread count with boundaries at whole register tiles (MR rows), so threads get
// equal work without short GEMM tails. The result does not depend on the split: every output is one
// chain of FMAs over the input channels in order, whatever the register tile or block it falls in.
void forward(const Geometry& g, const float* x, const float* u, const float* bias, float* y) {
  constexpr int64_t MR = max_rows<kMaxVectors>();
  constexpr int64_t unit = kMaxVectors * Vec::W;  // output channels of one GEMM column block
  const int64_t tb = block_tiles(g);
  int64_t parts = (g.tiles + tb - 1) / tb;
  bool even = false;  // parts of equal size (rounded to MR) instead of whole blocks of tb
  const int64_t threads = thread_count();
  const int64_t units = (g.coutp + unit - 1) / unit;
  int64_t chunks = 1;
  if (threads > 1) {
    if (parts < threads) chunks = wmin(units, (threads + parts - 1) / parts);
    if (parts * chunks < 8 * threads) {
      const int64_t target = wround_up(parts * chunks, threads);
      parts = wmax(parts, wmin((target + chunks - 1) / chunks, (g.tiles + MR - 1) / MR));
      even = true;
    }
  }
  auto part_start = [&](int64_t p) -> int64_t {
    if (p >= parts) return g.tiles;
    if (!even) return p * tb;
    return wmin(g.tiles, (g.tiles * p / parts + MR / 2) / MR * MR);
  };
  const int64_t out_plane = g.h * g.w, out_image = g.cout * out_plane;
  const int64_t in_ld = g.pw * g.cinp, out_ld = g.w * g.coutp;
  const int64_t scratch = rows_scratch(g, tb, in_ld, out_ld);
  auto run = [&](int64_t begin, int64_t end, int) {
    float* rows = thread_scratch(0, scratch);
    float* v = thread_scratch(1, 16 * tb * g.cinp);
    float* m = thread_scratch(2, 16 * tb * g.coutp);
    int64_t transformed = -1;  // the first tile of the block whose input transform v holds
    for (int64_t item = begin; item < end; ++item) {
      const int64_t part = item / chunks, chunk = item % chunks;
      const int64_t c0 = units * chunk / chunks * unit;
      const int64_t c1 = wmin(g.coutp, units * (chunk + 1) / chunks * unit);
      const int64_t channels = wmin(g.cout, c1) - c0;  // real output channels of the chunk
      const int64_t p0 = part_start(part), p1 = part_start(part + 1);
      // The part in blocks of at most tb tiles, of equal size (whole register tiles but the last).
      const int64_t nb = (p1 - p0 + tb - 1) / tb;
      const int64_t bsize = nb <= 1 ? p1 - p0 : wmin(tb, ((p1 - p0 + nb - 1) / nb + MR - 1) / MR * MR);
      for (int64_t t0 = p0; t0 < p1; t0 += bsize) {
        const int64_t t1 = wmin(p1, t0 + bsize), count = t1 - t0;
        if (transformed != t0) {
          transform_block_input(g, x, t0, t1, rows, v, tb);
          transformed = t0;
        }
        for (int xi = 0; xi < 16; ++xi)
          gemm<false>(count, (c1 - c0) / Vec::W, g.cin, v + xi * tb * g.cinp, g.cinp,
                      u + xi * g.cin * g.coutp + c0, g.coutp, m + xi * tb * g.coutp + c0, g.coutp);
        for_each_segment(g, t0, t1, [&](int64_t n, int64_t q0, int64_t q1, int64_t j0) {
          // Output rows 2 ty0 .. of this image, NHWC, g.w pixels each (channels [c0, c1) written).
          const int64_t ty0 = q0 / g.tiles_x, ty1 = (q1 - 1) / g.tiles_x + 1;
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t ty = q / g.tiles_x, tx = q % g.tiles_x;
            const int oh = static_cast<int>(wmin(2, g.h - 2 * ty));
            const int ow = static_cast<int>(wmin(2, g.w - 2 * tx));
            output_transform(m + (j0 + q - q0) * g.coutp + c0, tb * g.coutp, c1 - c0, g.coutp,
                             bias ? bias + c0 : nullptr,
                             rows + (2 * (ty - ty0) * g.w + 2 * tx) * g.coutp + c0, out_ld, oh, ow);
          }
          float* yn = y + n * out_image + c0 * out_plane;
          // Back to NCHW: whole tile rows as one run of pixels, a partial first / last tile row
          // one output row at a time.
          for (int64_t ty = ty0; ty < ty1; ++ty) {
            const int64_t txa = ty == ty0 ? q0 % g.tiles_x : 0;
            const int64_t txb = ty == ty1 - 1 ? (q1 - 1) % g.tiles_x + 1 : g.tiles_x;
            const int64_t oy0 = 2 * ty, oy1 = wmin(g.h, 2 * ty + 2);
            const int64_t ox0 = 2 * txa, ox1 = wmin(g.w, 2 * txb);
            const float* src = rows + (2 * (ty - ty0) * g.w) * g.coutp + c0;
            if (ox0 == 0 && ox1 == g.w) {
              rows_to_planes(src, g.coutp, (oy1 - oy0) * g.w, channels, yn + oy0 * g.w, out_plane);
            } else {
              for (int64_t oy = oy0; oy < oy1; ++oy)
                rows_to_planes(src + ((oy - oy0) * g.w + ox0) * g.coutp, g.coutp, ox1 - ox0, channels,
                               yn + oy * g.w + ox0, out_plane);
            }
          }
        });
      }
    }
  };
  if (threads > 1 && parts * chunks > 1)
    parallel_for(parts * chunks, run);
  else
    run(0, parts * chunks, 0);
}

// ---- backward weight ----------------------------------------------------------------------------

// Fixed number of partial sums over tiles: each chunk of tiles accumulates its own dU (and bias
// sum), and the chunks are added in chunk order at the end, so the result does not depend on the
// thread count or on timing. 8 keeps 8 threads busy and the partials of DCL-S's conv4 at 16 MB.
constexpr int64_t kWeightChunks = 8;

void backward_weight(const Geometry& g, const float* x, const float* dy, float* dw, float* db) {
  constexpr int64_t MR = max_rows<kMaxVectors>();
  const int64_t tb = block_tiles(g);
  const int64_t chunks = wmax(1, wmin(kWeightChunks, g.tiles / MR));
  const int64_t du_size = 16 * g.cinp * g.coutp;
  const int64_t part = du_size + g.coutp;  // dU [16][cinp][coutp], then the bias sums
  float* partials = thread_scratch(3, chunks * part);
  const int64_t in_ld = g.pw * g.cinp, dy_ld = 2 * g.tiles_x * g.coutp;
  const int64_t scratch = rows_scratch(g, tb, in_ld, dy_ld);
  const int64_t image_y = g.cout * g.h * g.w;
  parallel_for(chunks, [&](int64_t begin, int64_t end, int) {
    float* rows = thread_scratch(0, scratch);
    float* v = thread_scratch(1, 16 * tb * g.cinp);
    float* m = thread_scratch(2, 16 * tb * g.coutp);
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      float* du = partials + chunk * part;
      float* bias_acc = du + du_size;
      zero_floats(du, part);
      const int64_t c0 = g.tiles * chunk / chunks, c1 = g.tiles * (chunk + 1) / chunks;
      for (int64_t t0 = c0; t0 < c1; t0 += tb) {
        const int64_t t1 = wmin(c1, t0 + tb), count = t1 - t0;
        transform_block_input(g, x, t0, t1, rows, v, tb);
        for_each_segment(g, t0, t1, [&](int64_t n, int64_t q0, int64_t q1, int64_t j0) {
          const int64_t ty0 = q0 / g.tiles_x, ty1 = (q1 - 1) / g.tiles_x + 1;
          load_rows(dy + n * image_y, g.cout, g.coutp, g.h, g.w, 2 * g.tiles_x, 2 * ty0, 2 * (ty1 - ty0), rows);
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t ty = q / g.tiles_x, tx = q % g.tiles_x;
            output_transform_adjoint(rows + 2 * (ty - ty0) * dy_ld + 2 * tx * g.coutp, dy_ld, g.coutp,
                                     m + (j0 + q - q0) * g.coutp, tb * g.coutp, db ? bias_acc : nullptr);
          }
        });
        for (int xi = 0; xi < 16; ++xi)
          gemm<true>(g.cin, g.coutp / Vec::W, count, v + xi * tb * g.cinp, g.cinp,
                     m + xi * tb * g.coutp, g.coutp, du + xi * g.cinp * g.coutp, g.coutp);
      }
    }
  });
  // dw[co][ci] = G^T (sum of the chunks' dU) G, one input channel per work item.
  parallel_for(g.cin, [&](int64_t begin, int64_t end, int) {
    alignas(64) float tmp[9][Vec::W];
    const reg half = Vec::set1(0.5f);
    for (int64_t ci = begin; ci < end; ++ci) {
      for (int64_t o0 = 0; o0 < g.coutp; o0 += Vec::W) {
        reg u[16];
        for (int xi = 0; xi < 16; ++xi) {
          const float* p = partials + (xi * g.cinp + ci) * g.coutp + o0;
          reg s = Vec::load(p);
          for (int64_t c = 1; c < chunks; ++c) s = Vec::add(s, Vec::load(p + c * part));
          u[xi] = s;
        }
        // G^T dU: rows (u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3) per column.
        reg h[3][4];
        for (int col = 0; col < 4; ++col) {
          const reg u0 = u[col], u1 = u[4 + col], u2 = u[8 + col], u3 = u[12 + col];
          const reg s = Vec::mul(Vec::add(u1, u2), half);
          h[0][col] = Vec::add(u0, s);
          h[1][col] = Vec::mul(Vec::sub(u1, u2), half);
          h[2][col] = Vec::add(s, u3);
        }
        for (int ky = 0; ky < 3; ++ky) {
          const reg s = Vec::mul(Vec::add(h[ky][1], h[ky][2]), half);
          Vec::store(tmp[ky * 3 + 0], Vec::add(h[ky][0], s));
          Vec::store(tmp[ky * 3 + 1], Vec::mul(Vec::sub(h[ky][1], h[ky][2]), half));
          Vec::store(tmp[ky * 3 + 2], Vec::add(s, h[ky][3]));
        }
        const int64_t lanes = wmin(Vec::W, g.cout - o0);
        for (int64_t l = 0; l < lanes; ++l) {
          float* out = dw + ((o0 + l) * g.cin + ci) * 9;
          for (int k = 0; k < 9; ++k) out[k] = tmp[k][l];
        }
      }
    }
  });
  if (db)
    for (int64_t co = 0; co < g.cout; ++co) {
      float s = partials[du_size + co];
      for (int64_t c = 1; c < chunks; ++c) s += partials[c * part + du_size + co];
      db[co] = s;
    }
}

}  // namespace

int64_t winograd_prepared_floats(const Conv2dShape& s) {
  return 16 * s.in_channels * wround_up(s.out_channels, Vec::W);
}

void winograd_prepare(const Conv2dShape& s, const float* w, float* u) {
  const Geometry g = make_geometry(s.batch, s.in_channels, s.out_channels, s.in_h, s.in_w);
  transform_weights(w, g.cout * g.cin * 9, g.cin, g.cout, g.coutp, 9, g.cin * 9, false, u);
}

void winograd_conv2d_forward_prepared(const Conv2dShape& s, const float* x, const float* u,
                                      const float* b, float* y) {
  const Geometry g = make_geometry(s.batch, s.in_channels, s.out_channels, s.in_h, s.in_w);
  // The padded bias in the caller's scratch slot 3 (the blocks use slots 0..2 of whichever
  // thread runs them).
  float* bias = nullptr;
  if (b) {
    bias = thread_scratch(3, g.coutp);
    for (int64_t c = 0; c < g.coutp; ++c) bias[c] = c < g.cout ? b[c] : 0.0f;
  }
  forward(g, x, u, bias, y);
}

void winograd_conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                             float* y) {
  const Geometry g = make_geometry(s.batch, s.in_channels, s.out_channels, s.in_h, s.in_w);
  // U [16][cin][coutp] and the padded bias after it, in the caller's scratch (the blocks use
  // slots 0..2 of whichever thread runs them). The same steps as prepare + forward_prepared.
  float* u = thread_scratch(3, 16 * g.cin * g.coutp + g.coutp);
  winograd_prepare(s, w, u);
  float* bias = nullptr;
  if (b) {
    bias = u + 16 * g.cin * g.coutp;
    for (int64_t c = 0; c < g.coutp; ++c) bias[c] = c < g.cout ? b[c] : 0.0f;
  }
  forward(g, x, u, bias, y);
}

void winograd_conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                    float* dx) {
  // A forward problem from dy (out_channels) to dx (in_channels) with filter (i = co, o = ci) =
  // w[co][ci] flipped in space.
  const Geometry g = make_geometry(s.batch, s.out_channels, s.in_channels, s.in_h, s.in_w);
  float* u = thread_scratch(3, 16 * g.cin * g.coutp);
  transform_weights(w, g.cin * g.cout * 9, g.cin, g.cout, g.coutp, s.in_channels * 9, 9, true, u);
  forward(g, dy, u, nullptr, dx);
}

void winograd_conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy,
                                     float* dw, float* db) {
  const Geometry g = make_geometry(s.batch, s.in_channels, s.out_channels, s.in_h, s.in_w);
  backward_weight(g, x, dy, dw, db);
}
