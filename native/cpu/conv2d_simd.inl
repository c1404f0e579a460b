// conv2d for the SIMD paths, shared by conv2d_avx2.cpp and conv2d_avx512.cpp. Each includes this
// file after defining, inside its own ISA namespace:
//   struct Vec { using reg; static constexpr int W; zero(); load(p); store(p, v); set1(x);
//                fmadd(a, b, c); }   -- W float lanes
//   constexpr int kMaxVectors;       -- output-channel vectors per register tile (NV)
//   template <int NV> constexpr int max_rows();  -- rows per register tile for NV vectors
// so the same source is compiled once per ISA with that ISA's flags (see parallel.h for why no
// shared inline library code may be used here).
//
// How it works. Every direction is turned into one kernel: a direct convolution of a padded NHWC
// image (channels last) with a weight panel packed for the register tile.
//   forward:          input = x, zero-padded, NHWC        weights W[co][ci][ky][kx]
//   backward input:   input = dy, dilated by the stride and padded by (k - 1 - pad), NHWC;
//                     weights flipped in space with ci and co swapped (a transposed convolution)
//   backward weight:  a second kernel that accumulates dW[(ky, kx, ci)][co] over output pixels.
// The register tile holds MR output pixels x NV vectors of output channels: for each (tap, input
// channel) it loads NV weight vectors and broadcasts one input value per pixel, so every loaded
// weight is used MR times and every broadcast NV times. Pixels of a tile lie in one output row,
// at a constant stride in the NHWC input, which keeps the address arithmetic to one base pointer.
// NCHW at the interface is converted per image into thread-local scratch that stays in L2, and
// output channels are padded to a multiple of W (zero weights) so no tile needs a masked tail.
// Weight panels, like the thread pool, are reused between calls (thread_scratch), so a training
// step does not allocate.
// 3x3, stride-1, padding-1 layers go to the Winograd kernels (winograd_simd.inl) instead when
// winograd_applies() says so (the conv algorithm setting, dcl/cpu.h).

namespace {

constexpr int64_t kMaxTaps = 256;  // kernels up to 16x16 take this path; larger ones go serial
constexpr int64_t kL2Floats = 1 << 18;  // 1 MB: the L2 of one core on the machines we tune for

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// One image of an NHWC convolution whose padding is already part of the input.
struct ImageConv {
  int64_t in_h, in_w, channels;          // padded input
  int64_t kernel_h, kernel_w, stride_h, stride_w;
  int64_t out_h, out_w;
  int64_t out_channels_padded;           // multiple of Vec::W
  int64_t tap_offsets[kMaxTaps];         // (ky * in_w + kx) * channels
  int64_t taps() const { return kernel_h * kernel_w; }
  int64_t channel_blocks() const {
    return (out_channels_padded / Vec::W + kMaxVectors - 1) / kMaxVectors;
  }
  void init_offsets() {
    for (int64_t ky = 0; ky < kernel_h; ++ky)
      for (int64_t kx = 0; kx < kernel_w; ++kx)
        tap_offsets[ky * kernel_w + kx] = (ky * in_w + kx) * channels;
  }
};

// MR pixels x NV channel vectors. pixels[r]: the input at pixel r's window origin (tap 0), any
// pixels of the image (a tile may wrap onto the next output row, so small images still fill
// whole tiles). b: packed weights [tap][channel][NV * W]. init: NV * W values to start from
// (bias) or nullptr for zero. c: output row of pixel 0; the tile's pixels are consecutive rows.
template <int MR, int NV>
inline void forward_tile(const float* const* pixels, const ImageConv& g, const float* b,
                         const float* init, float* c) {
  typename Vec::reg acc[MR][NV];
  const float* a[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    a[r] = pixels[r];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = init ? Vec::load(init + v * Vec::W) : Vec::zero();
  }
  const int64_t taps = g.taps(), channels = g.channels;
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t offset = g.tap_offsets[t];
    for (int64_t ci = offset; ci < offset + channels; ++ci, b += NV * Vec::W) {
      typename Vec::reg bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = Vec::load(b + v * Vec::W);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const typename Vec::reg s = Vec::set1(a[r][ci]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = Vec::fmadd(s, bv[v], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Vec::store(c + r * g.out_channels_padded + v * Vec::W, acc[r][v]);
}

template <int NV>
constexpr int64_t tile_rows() {
  return max_rows<NV>();
}

// Pixels [p0, p0 + count) of the image (count <= max_rows<NV>()), one tile.
template <int NV>
void forward_pixels(int64_t p0, int64_t count, const float* xp, const ImageConv& g, const float* b,
                    const float* init, float* c) {
  constexpr int MR = max_rows<NV>();
  const float* pixels[MR];
  for (int64_t i = 0; i < count; ++i) {
    const int64_t oy = (p0 + i) / g.out_w, ox = (p0 + i) % g.out_w;
    pixels[i] = xp + (oy * g.stride_h * g.in_w + ox * g.stride_w) * g.channels;
  }
  c += p0 * g.out_channels_padded;
  switch (count) {
#define DCL_TILE(m) \
  case m: if constexpr (m <= MR) forward_tile<m, NV>(pixels, g, b, init, c); break;
    DCL_TILE(1) DCL_TILE(2) DCL_TILE(3) DCL_TILE(4) DCL_TILE(5) DCL_TILE(6) DCL_TILE(7)
    DCL_TILE(8) DCL_TILE(9) DCL_TILE(10) DCL_TILE(11) DCL_TILE(12)
#undef DCL_TILE
    default: break;
  }
}

inline int64_t rows_for(int nv) {
  switch (nv) {
    case 1: return max_rows<1>();
    case 2: return max_rows<2>();
    case 3: return max_rows<3>();
    default: return max_rows<4>();
  }
}

// Work items of one image: (channel block, tile of pixels); tiles_per_block(g) tiles per block.
int64_t tiles_per_block(const ImageConv& g, int nv) {
  const int64_t rows = rows_for(nv);
  return (g.out_h * g.out_w + rows - 1) / rows;
}

int64_t image_items(const ImageConv& g) {
  const int64_t vectors = g.out_channels_padded / Vec::W;
  int64_t items = 0;
  for (int64_t v0 = 0; v0 < vectors; v0 += kMaxVectors)
    items += tiles_per_block(g, static_cast<int>(min64(kMaxVectors, vectors - v0)));
  return items;
}

// Computes work items [begin, end) of one image. packed: weights for all channel blocks,
// [block][tap][channel][NV_block * W] where a block starts at vector index block * kMaxVectors;
// bias: out_channels_padded values or nullptr.
void conv_image(const ImageConv& g, const float* xp, const float* packed, const float* bias,
                float* out, int64_t begin, int64_t end) {
  const int64_t vectors = g.out_channels_padded / Vec::W;
  const int64_t panel = g.taps() * g.channels;  // floats per output channel in the packed weights
  const int64_t pixels = g.out_h * g.out_w;
  int64_t first = 0;  // first item of the current block
  for (int64_t v0 = 0; v0 < vectors && first < end; v0 += kMaxVectors) {
    const int nv = static_cast<int>(min64(kMaxVectors, vectors - v0));
    const int64_t tiles = tiles_per_block(g, nv), rows = rows_for(nv);
    const float* b = packed + panel * v0 * Vec::W;
    const float* init = bias ? bias + v0 * Vec::W : nullptr;
    float* c = out + v0 * Vec::W;
    for (int64_t tile = (begin > first ? begin - first : 0); tile < tiles && first + tile < end; ++tile) {
      const int64_t p0 = tile * rows, count = min64(rows, pixels - p0);
      switch (nv) {
        case 1: forward_pixels<1>(p0, count, xp, g, b, init, c); break;
        case 2: if constexpr (kMaxVectors >= 2) forward_pixels<2>(p0, count, xp, g, b, init, c); break;
        case 3: if constexpr (kMaxVectors >= 3) forward_pixels<3>(p0, count, xp, g, b, init, c); break;
        case 4: if constexpr (kMaxVectors >= 4) forward_pixels<4>(p0, count, xp, g, b, init, c); break;
        default: break;
      }
    }
    first += tiles;
  }
}

// Packs weights for conv_image. source(co, ci, tap) gives the weight that maps input channel ci at
// tap to output channel co; out channels >= real_out are zero.
template <class Source>
void pack_weights(const ImageConv& g, int64_t real_out, Source source, float* packed) {
  const int64_t vectors = g.out_channels_padded / Vec::W;
  const int64_t taps = g.taps(), channels = g.channels;
  // One output channel per work item: its weights are read in source order (contiguous for the
  // forward layout) and written at a stride of the block's lane count. The other order reads at a
  // stride of a whole filter, which for conv4 of DCL-S cost more than the batch-1 convolution.
  auto pack_range = [&](int64_t begin, int64_t end, int) {
    for (int64_t co = begin; co < end; ++co) {
      const int64_t v0 = co / Vec::W / kMaxVectors * kMaxVectors;
      const int64_t lanes = min64(kMaxVectors, vectors - v0) * Vec::W;
      float* p = packed + taps * channels * v0 * Vec::W + (co - v0 * Vec::W);
      if (co >= real_out) {
        for (int64_t k = 0; k < taps * channels; ++k) p[k * lanes] = 0.0f;
        continue;
      }
      for (int64_t ci = 0; ci < channels; ++ci)
        for (int64_t t = 0; t < taps; ++t) p[(t * channels + ci) * lanes] = source(co, ci, t);
    }
  };
  const int64_t total = g.out_channels_padded;
  if (total * taps * channels >= (1 << 16))
    parallel_for(total, pack_range);
  else
    pack_range(0, total, 0);
}

// Layout changes between one NCHW image and the kernels' pixel-major rows, W x W blocks at a
// time through an in-register transpose (Vec::transpose); tails are copied element by element.
//
// planes_to_pixels: src [channels][height * width] -> dst row of pixel (py, px) at
//   dst + ((top + py * step_y) * dst_width + left + px * step_x) * ld, channel c at offset c.
// Rows of dst that no pixel maps to are left as they are (the caller zeroes borders).
struct PixelMap {
  int64_t height, width, dst_width, top, left, step_y, step_x, ld;
  float* row(float* dst, int64_t p) const {
    const int64_t py = p / width, px = p % width;
    return dst + ((top + py * step_y) * dst_width + left + px * step_x) * ld;
  }
};

void planes_to_pixels(const float* src, int64_t channels, const PixelMap& m, float* dst) {
  constexpr int W = Vec::W;
  const int64_t pixels = m.height * m.width;
  const int64_t full_p = pixels / W * W, full_c = channels / W * W;
  for (int64_t p0 = 0; p0 < full_p; p0 += W) {
    float* rows[W];
    for (int i = 0; i < W; ++i) rows[i] = m.row(dst, p0 + i);
    for (int64_t c0 = 0; c0 < full_c; c0 += W) {
      typename Vec::reg r[W];
      for (int i = 0; i < W; ++i) r[i] = Vec::load(src + (c0 + i) * pixels + p0);
      Vec::transpose(r);
      for (int i = 0; i < W; ++i) Vec::store(rows[i] + c0, r[i]);
    }
    for (int64_t c = full_c; c < channels; ++c)
      for (int i = 0; i < W; ++i) rows[i][c] = src[c * pixels + p0 + i];
  }
  for (int64_t p = full_p; p < pixels; ++p) {
    float* row = m.row(dst, p);
    for (int64_t c = 0; c < channels; ++c) row[c] = src[c * pixels + p];
  }
}

// src rows of `ld` floats, one per pixel -> dst [channels][pixels] (the first `channels` only).
void pixels_to_planes(const float* src, int64_t ld, int64_t pixels, int64_t channels, float* dst) {
  constexpr int W = Vec::W;
  const int64_t full_p = pixels / W * W, full_c = channels / W * W;
  for (int64_t p0 = 0; p0 < full_p; p0 += W) {
    for (int64_t c0 = 0; c0 < full_c; c0 += W) {
      typename Vec::reg r[W];
      for (int i = 0; i < W; ++i) r[i] = Vec::load(src + (p0 + i) * ld + c0);
      Vec::transpose(r);
      for (int i = 0; i < W; ++i) Vec::store(dst + (c0 + i) * pixels + p0, r[i]);
    }
    for (int64_t c = full_c; c < channels; ++c)
      for (int i = 0; i < W; ++i) dst[c * pixels + p0 + i] = src[(p0 + i) * ld + c];
  }
  for (int64_t p = full_p; p < pixels; ++p)
    for (int64_t c = 0; c < channels; ++c) dst[c * pixels + p] = src[p * ld + c];
}

// x: one NCHW image [C][H][W] -> padded NHWC [H + 2ph][W + 2pw][C].
void to_padded_nhwc(const float* x, int64_t channels, int64_t h, int64_t w, int64_t ph, int64_t pw,
                    float* out) {
  const int64_t wp = w + 2 * pw, hp = h + 2 * ph;
  // Zero only the border: the interior is overwritten below.
  for (int64_t y = 0; y < hp; ++y) {
    float* row = out + y * wp * channels;
    if (y < ph || y >= ph + h) {
      for (int64_t i = 0; i < wp * channels; ++i) row[i] = 0.0f;
    } else {
      for (int64_t i = 0; i < pw * channels; ++i) row[i] = 0.0f;
      for (int64_t i = (pw + w) * channels; i < wp * channels; ++i) row[i] = 0.0f;
    }
  }
  planes_to_pixels(x, channels, PixelMap{h, w, wp, ph, pw, 1, 1, channels}, out);
}

// out: NHWC [pixels][padded] -> y: NCHW [channels][pixels] (real channels only).
void nhwc_to_nchw(const float* in, int64_t pixels, int64_t channels, int64_t padded, float* y) {
  pixels_to_planes(in, padded, pixels, channels, y);
}

// y: NCHW [channels][pixels] -> NHWC [pixels][padded], padded channels zero.
void nchw_to_nhwc(const float* y, int64_t pixels, int64_t channels, int64_t padded, float* out) {
  if (padded > channels)
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t c = channels; c < padded; ++c) out[p * padded + c] = 0.0f;
  planes_to_pixels(y, channels, PixelMap{1, pixels, pixels, 0, 0, 1, 1, padded}, out);
}

// Runs `per_image(n, thread)` for every image, images split across threads; when there are fewer
// images than threads, runs them one at a time and lets `per_image` split its own work.
template <class PerImage, class SplitImage>
void for_each_image(int64_t batch, PerImage per_image, SplitImage split_image) {
  if (batch >= thread_count()) {
    parallel_for(batch, [&](int64_t begin, int64_t end, int) {
      for (int64_t n = begin; n < end; ++n) per_image(n);
    });
  } else {
    for (int64_t n = 0; n < batch; ++n) split_image(n);
  }
}

// ---- backward weight -----------------------------------------------------------------------

// Images whose pixels one pass of the dW kernel runs over: the padded NHWC input and the NHWC
// output gradient of each. Several images per pass keep the dW accumulator tile in registers
// longer: for deep layers dW (1152 x 256 floats for conv4 of DCL-S) outgrows L2, and loading and
// storing it once per image would stall on L3.
constexpr int kMaxGroup = 8;
struct ImageGroup {
  int count = 0;
  const float* xp[kMaxGroup];
  const float* dyn[kMaxGroup];
};

// MR rows of dW (each an (input channel, tap) pair with its offset into the padded input) x NV
// channel vectors (starting at float `lane0` of each pixel's gradient row), accumulated over the
// output pixels of every image of the group.
template <int MR, int NV>
inline void weight_tile(const ImageConv& g, const ImageGroup& group, int64_t lane0,
                        const int64_t* row_offsets, float* acc_out) {
  typename Vec::reg acc[MR][NV];
  int64_t off[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    off[r] = row_offsets[r];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = Vec::load(acc_out + r * g.out_channels_padded + v * Vec::W);
  }
  const int64_t pixel_stride = g.stride_w * g.channels;
  for (int i = 0; i < group.count; ++i) {
    const float* b = group.dyn[i] + lane0;
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      const float* base = group.xp[i] + oy * g.stride_h * g.in_w * g.channels;
      for (int64_t ox = 0; ox < g.out_w; ++ox, base += pixel_stride, b += g.out_channels_padded) {
        typename Vec::reg bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = Vec::load(b + v * Vec::W);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const typename Vec::reg s = Vec::set1(base[off[r]]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[r][v] = Vec::fmadd(s, bv[v], acc[r][v]);
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Vec::store(acc_out + r * g.out_channels_padded + v * Vec::W, acc[r][v]);
}

template <int NV>
void weight_rows(const ImageConv& g, const ImageGroup& group, int64_t lane0,
                 const int64_t* row_offsets, int64_t rows, float* acc) {
  constexpr int MR = max_rows<NV>();
  while (rows >= MR) {
    weight_tile<MR, NV>(g, group, lane0, row_offsets, acc);
    rows -= MR;
    row_offsets += MR;
    acc += MR * g.out_channels_padded;
  }
  switch (rows) {
    case 0: break;
#define DCL_TAIL(m) \
  case m: if constexpr (m < MR) weight_tile<m, NV>(g, group, lane0, row_offsets, acc); break;
    DCL_TAIL(1) DCL_TAIL(2) DCL_TAIL(3) DCL_TAIL(4) DCL_TAIL(5) DCL_TAIL(6) DCL_TAIL(7)
    DCL_TAIL(8) DCL_TAIL(9) DCL_TAIL(10) DCL_TAIL(11)
#undef DCL_TAIL
    default: break;
  }
}

// Work items: (channel block, block of kRowBlock dW rows). Accumulates a group of images into acc
// [rows][out_channels_padded].
constexpr int64_t kRowBlock = 48;

void weight_images(const ImageConv& g, const ImageGroup& group, const int64_t* row_offsets,
                   int64_t rows, float* acc, int64_t begin, int64_t end) {
  const int64_t vectors = g.out_channels_padded / Vec::W;
  const int64_t row_blocks = (rows + kRowBlock - 1) / kRowBlock;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t block = item / row_blocks, rb = item % row_blocks;
    const int64_t v0 = block * kMaxVectors;
    const int nv = static_cast<int>(min64(kMaxVectors, vectors - v0));
    const int64_t r0 = rb * kRowBlock, count = min64(kRowBlock, rows - r0);
    const int64_t lane0 = v0 * Vec::W;
    float* c = acc + r0 * g.out_channels_padded + lane0;
    switch (nv) {
      case 1: weight_rows<1>(g, group, lane0, row_offsets + r0, count, c); break;
      case 2: if constexpr (kMaxVectors >= 2) weight_rows<2>(g, group, lane0, row_offsets + r0, count, c); break;
      case 3: if constexpr (kMaxVectors >= 3) weight_rows<3>(g, group, lane0, row_offsets + r0, count, c); break;
      case 4: if constexpr (kMaxVectors >= 4) weight_rows<4>(g, group, lane0, row_offsets + r0, count, c); break;
      default: break;
    }
  }
}

ImageConv forward_geometry(const Conv2dShape& s, int64_t out_channels) {
  ImageConv g;
  g.in_h = s.in_h + 2 * s.pad_h;
  g.in_w = s.in_w + 2 * s.pad_w;
  g.channels = s.in_channels;
  g.kernel_h = s.kernel_h;
  g.kernel_w = s.kernel_w;
  g.stride_h = s.stride_h;
  g.stride_w = s.stride_w;
  g.out_h = s.out_h();
  g.out_w = s.out_w();
  g.out_channels_padded = round_up(out_channels, Vec::W);
  g.init_offsets();
  return g;
}

}  // namespace

namespace {

// The direct forward over weights packed by pack_forward_weights; bias: out_channels_padded
// values or nullptr.
void direct_forward(const Conv2dShape& s, const ImageConv& g, const float* x, const float* packed,
                    const float* bias, float* y) {
  const int64_t cin = s.in_channels, cout = s.out_channels;
  const int64_t pixels = g.out_h * g.out_w, items = image_items(g);
  const int64_t in_size = g.in_h * g.in_w * cin, image = cin * s.in_h * s.in_w;
  for_each_image(
      s.batch,
      [&](int64_t n) {
        float* xp = thread_scratch(0, in_size);
        float* out = thread_scratch(1, pixels * g.out_channels_padded);
        to_padded_nhwc(x + n * image, cin, s.in_h, s.in_w, s.pad_h, s.pad_w, xp);
        conv_image(g, xp, packed, bias, out, 0, items);
        nhwc_to_nchw(out, pixels, cout, g.out_channels_padded, y + n * cout * pixels);
      },
      [&](int64_t n) {
        float* xp = thread_scratch(0, in_size);
        float* out = thread_scratch(1, pixels * g.out_channels_padded);
        float* yn = y + n * cout * pixels;
        to_padded_nhwc(x + n * image, cin, s.in_h, s.in_w, s.pad_h, s.pad_w, xp);
        // A chunk that computes a whole channel block also turns it into NCHW planes, inside the
        // parallel region; the caller converts the blocks split between chunks afterwards.
        constexpr int64_t kMaxBlocks = 64;
        const int64_t vectors = g.out_channels_padded / Vec::W;
        const int64_t blocks = (vectors + kMaxVectors - 1) / kMaxVectors;
        bool converted[kMaxBlocks] = {};
        parallel_for(items, [&](int64_t begin, int64_t end, int) {
          conv_image(g, xp, packed, bias, out, begin, end);
          if (blocks > kMaxBlocks) return;
          int64_t first = 0;
          for (int64_t blk = 0; blk < blocks; ++blk) {
            const int64_t v0 = blk * kMaxVectors;
            const int nv = static_cast<int>(min64(kMaxVectors, vectors - v0));
            const int64_t tiles = tiles_per_block(g, nv);
            if (first >= begin && first + tiles <= end) {
              const int64_t c0 = v0 * Vec::W, c1 = min64(cout, (v0 + nv) * Vec::W);
              pixels_to_planes(out + c0, g.out_channels_padded, pixels, c1 - c0, yn + c0 * pixels);
              converted[blk] = true;
            }
            first += tiles;
          }
        });
        if (blocks > kMaxBlocks) {
          nhwc_to_nchw(out, pixels, cout, g.out_channels_padded, yn);
          return;
        }
        for (int64_t blk = 0; blk < blocks; ++blk) {
          if (converted[blk]) continue;
          const int64_t v0 = blk * kMaxVectors;
          const int64_t c0 = v0 * Vec::W, c1 = min64(cout, min64(vectors, v0 + kMaxVectors) * Vec::W);
          pixels_to_planes(out + c0, g.out_channels_padded, pixels, c1 - c0, yn + c0 * pixels);
        }
      });
}

void pack_forward_weights(const Conv2dShape& s, const ImageConv& g, const float* w, float* packed) {
  const int64_t taps = g.taps(), cin = s.in_channels;
  pack_weights(g, s.out_channels, [&](int64_t co, int64_t ci, int64_t t) { return w[(co * cin + ci) * taps + t]; }, packed);
}

// Which layout the forward of shape s uses now (the conv algorithm setting can change it).
PreparedLayout forward_layout(const Conv2dShape& s) {
  if (winograd_applies(s)) return PreparedLayout::winograd;
  if (s.kernel_h * s.kernel_w > kMaxTaps) return PreparedLayout::raw;
  return PreparedLayout::direct;
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  if (winograd_applies(s)) return winograd_conv2d_forward(s, x, w, b, y);
  if (s.kernel_h * s.kernel_w > kMaxTaps) return serial::conv2d_forward(s, x, w, b, y);
  const ImageConv g = forward_geometry(s, s.out_channels);
  const int64_t panel = g.taps() * s.in_channels * g.out_channels_padded;
  float* packed = thread_scratch(2, panel + g.out_channels_padded);
  pack_forward_weights(s, g, w, packed);
  float* bias = nullptr;
  if (b) {
    bias = packed + panel;
    for (int64_t c = 0; c < g.out_channels_padded; ++c) bias[c] = c < s.out_channels ? b[c] : 0.0f;
  }
  direct_forward(s, g, x, packed, bias, y);
}

int64_t conv2d_prepared_floats(const Conv2dShape& s) {
  switch (forward_layout(s)) {
    case PreparedLayout::winograd: return kConv2dPreparedHeader + winograd_prepared_floats(s);
    case PreparedLayout::raw: return kConv2dPreparedHeader + s.out_channels * s.in_channels * s.kernel_h * s.kernel_w;
    default: return kConv2dPreparedHeader + s.kernel_h * s.kernel_w * s.in_channels * round_up(s.out_channels, Vec::W);
  }
}

void conv2d_prepare(const Conv2dShape& s, const float* w, float* prepared) {
  const PreparedLayout layout = forward_layout(s);
  write_prepared_header(s, layout, Vec::W, prepared);
  float* p = prepared + kConv2dPreparedHeader;
  switch (layout) {
    case PreparedLayout::winograd: winograd_prepare(s, w, p); break;
    case PreparedLayout::raw: {
      const int64_t n = s.out_channels * s.in_channels * s.kernel_h * s.kernel_w;
      for (int64_t i = 0; i < n; ++i) p[i] = w[i];
      break;
    }
    default: pack_forward_weights(s, forward_geometry(s, s.out_channels), w, p); break;
  }
}

void conv2d_forward_prepared(const Conv2dShape& s, const float* x, const float* prepared, const float* b,
                             float* y) {
  const PreparedLayout layout = forward_layout(s);
  check_prepared_header(s, layout, Vec::W, prepared);
  const float* p = prepared + kConv2dPreparedHeader;
  switch (layout) {
    case PreparedLayout::winograd: return winograd_conv2d_forward_prepared(s, x, p, b, y);
    case PreparedLayout::raw: return serial::conv2d_forward(s, x, p, b, y);
    default: break;
  }
  const ImageConv g = forward_geometry(s, s.out_channels);
  // The padded bias in the caller's scratch slot 3 (images use slots 0 and 1 of their thread).
  float* bias = nullptr;
  if (b) {
    bias = thread_scratch(3, g.out_channels_padded);
    for (int64_t c = 0; c < g.out_channels_padded; ++c) bias[c] = c < s.out_channels ? b[c] : 0.0f;
  }
  direct_forward(s, g, x, p, bias, y);
}

void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  if (winograd_applies(s)) return winograd_conv2d_backward_input(s, dy, w, dx);
  if (s.kernel_h * s.kernel_w > kMaxTaps) return serial::conv2d_backward_input(s, dy, w, dx);
  // dx is a stride-1 convolution of dy, dilated by the stride and padded by (k - 1 - pad) on the
  // top/left and enough on the bottom/right to give H x W outputs, with the flipped kernel.
  const int64_t cin = s.in_channels, cout = s.out_channels, kh = s.kernel_h, kw = s.kernel_w;
  const int64_t oh = s.out_h(), ow = s.out_w();
  ImageConv g;
  g.in_h = s.in_h + kh - 1;
  g.in_w = s.in_w + kw - 1;
  g.channels = cout;
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.stride_h = 1;
  g.stride_w = 1;
  g.out_h = s.in_h;
  g.out_w = s.in_w;
  g.out_channels_padded = round_up(cin, Vec::W);
  g.init_offsets();
  const int64_t taps = g.taps();
  float* packed = thread_scratch(2, taps * cout * g.out_channels_padded);
  pack_weights(
      g, cin,
      [&](int64_t ci, int64_t co, int64_t t) {
        const int64_t ky = t / kw, kx = t % kw;
        return w[((co * cin + ci) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)];
      },
      packed);
  const int64_t pixels = s.in_h * s.in_w, items = image_items(g);
  const int64_t in_size = g.in_h * g.in_w * cout, out_pixels = oh * ow;
  const int64_t top = kh - 1 - s.pad_h, left = kw - 1 - s.pad_w;
  auto scatter_dy = [&](int64_t n, float* dd) {
    if (s.stride_h == 1 && s.stride_w == 1) {
      // Every interior position is written below: zero the border ring only.
      for (int64_t y = 0; y < g.in_h; ++y) {
        float* row = dd + y * g.in_w * cout;
        if (y < top || y >= top + oh) {
          for (int64_t i = 0; i < g.in_w * cout; ++i) row[i] = 0.0f;
        } else {
          for (int64_t i = 0; i < left * cout; ++i) row[i] = 0.0f;
          for (int64_t i = (left + ow) * cout; i < g.in_w * cout; ++i) row[i] = 0.0f;
        }
      }
    } else {
      for (int64_t i = 0; i < in_size; ++i) dd[i] = 0.0f;
    }
    planes_to_pixels(dy + n * cout * out_pixels, cout,
                     PixelMap{oh, ow, g.in_w, top, left, s.stride_h, s.stride_w, cout}, dd);
  };
  for_each_image(
      s.batch,
      [&](int64_t n) {
        float* dd = thread_scratch(0, in_size);
        float* out = thread_scratch(1, pixels * g.out_channels_padded);
        scatter_dy(n, dd);
        conv_image(g, dd, packed, nullptr, out, 0, items);
        nhwc_to_nchw(out, pixels, cin, g.out_channels_padded, dx + n * cin * pixels);
      },
      [&](int64_t n) {
        float* dd = thread_scratch(0, in_size);
        float* out = thread_scratch(1, pixels * g.out_channels_padded);
        scatter_dy(n, dd);
        parallel_for(items, [&](int64_t begin, int64_t end, int) {
          conv_image(g, dd, packed, nullptr, out, begin, end);
        });
        nhwc_to_nchw(out, pixels, cin, g.out_channels_padded, dx + n * cin * pixels);
      });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* db) {
  if (winograd_applies(s)) return winograd_conv2d_backward_weight(s, x, dy, dw, db);
  if (s.kernel_h * s.kernel_w > kMaxTaps) return serial::conv2d_backward_weight(s, x, dy, dw, db);
  const ImageConv g = forward_geometry(s, s.out_channels);
  const int64_t taps = g.taps(), cin = s.in_channels, cout = s.out_channels;
  const int64_t padded = g.out_channels_padded, rows = taps * cin;
  const int64_t pixels = g.out_h * g.out_w, image = cin * s.in_h * s.in_w;
  const int64_t in_size = g.in_h * g.in_w * cin, acc_size = rows * padded;
  const int64_t items = g.channel_blocks() * ((rows + kRowBlock - 1) / kRowBlock);
  // Row r of dW is (input channel, tap) = (r / taps, r % taps), the order of dw's [ci][kh][kw], so
  // the accumulator [rows][padded] is dw [cout][rows] transposed. offset: from a pixel's base.
  AlignedBuffer offsets_buffer(static_cast<size_t>(rows) * 2);
  int64_t* row_offsets = reinterpret_cast<int64_t*>(offsets_buffer.data());
  for (int64_t r = 0; r < rows; ++r) row_offsets[r] = g.tap_offsets[r % taps] + r / taps;

  auto prepare = [&](int64_t n, float* xp, float* dyn, float* bias_acc) {
    to_padded_nhwc(x + n * image, cin, s.in_h, s.in_w, s.pad_h, s.pad_w, xp);
    nchw_to_nhwc(dy + n * cout * pixels, pixels, cout, padded, dyn);
    if (bias_acc)
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t c = 0; c < padded; c += Vec::W)
          Vec::store(bias_acc + c, Vec::add(Vec::load(dyn + p * padded + c), Vec::load(bias_acc + c)));
  };
  // Sums the per-thread accumulators (each [rows][padded], followed by `padded` bias sums) into
  // the first, then transposes it into dw [cout][rows].
  auto finish = [&](float* const* partials, int count) {
    for (int i = 1; i < count; ++i)
      for (int64_t j = 0; j < acc_size + padded; j += Vec::W)
        Vec::store(partials[0] + j, Vec::add(Vec::load(partials[0] + j), Vec::load(partials[i] + j)));
    const float* sum = partials[0];
    constexpr int64_t kBlock = 16;
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
      const int64_t r1 = min64(rows, r0 + kBlock);
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t r = r0; r < r1; ++r) dw[co * rows + r] = sum[r * padded + co];
    }
    if (db)
      for (int64_t co = 0; co < cout; ++co) db[co] = sum[acc_size + co];
  };

  // Images per pass: as many as fit in about half of L2 next to each other (at least one).
  const int64_t image_floats = in_size + pixels * padded;
  const int64_t group_size = min64(kMaxGroup, image_floats > 0 ? (kL2Floats / 2) / image_floats : 1) > 0
                                 ? min64(kMaxGroup, (kL2Floats / 2) / image_floats)
                                 : 1;
  const int threads = thread_count();
  if (s.batch >= threads) {
    // Images split across threads, each chunk with its own accumulator (slices of one buffer
    // owned by the calling thread, so a chunk run on another thread or, when the pool is busy,
    // on the caller itself, never shares one); summed at the end.
    const int chunks = static_cast<int>(min64(threads, s.batch));
    float* all = thread_scratch(3, static_cast<size_t>(chunks) * (acc_size + padded));
    float* partials[256];
    for (int i = 0; i < chunks; ++i) partials[i] = all + i * (acc_size + padded);
    parallel_for(s.batch, [&](int64_t begin, int64_t end, int chunk) {
      float* acc = partials[chunk];
      for (int64_t i = 0; i < acc_size + padded; ++i) acc[i] = 0.0f;
      float* xps = thread_scratch(0, in_size * group_size);
      float* dyns = thread_scratch(1, pixels * padded * group_size);
      for (int64_t n0 = begin; n0 < end; n0 += group_size) {
        ImageGroup group;
        group.count = static_cast<int>(min64(group_size, end - n0));
        for (int i = 0; i < group.count; ++i) {
          float* xp = xps + i * in_size;
          float* dyn = dyns + i * pixels * padded;
          prepare(n0 + i, xp, dyn, db ? acc + acc_size : nullptr);
          group.xp[i] = xp;
          group.dyn[i] = dyn;
        }
        weight_images(g, group, row_offsets, rows, acc, 0, items);
      }
    });
    finish(partials, chunks);
  } else {
    // Few images: split the dW tiles across threads, one shared accumulator.
    float* acc = thread_scratch(3, acc_size + padded);
    for (int64_t i = 0; i < acc_size + padded; ++i) acc[i] = 0.0f;
    for (int64_t n = 0; n < s.batch; ++n) {
      float* xp = thread_scratch(0, in_size);
      float* dyn = thread_scratch(1, pixels * padded);
      prepare(n, xp, dyn, db ? acc + acc_size : nullptr);
      ImageGroup group;
      group.count = 1;
      group.xp[0] = xp;
      group.dyn[0] = dyn;
      parallel_for(items, [&](int64_t begin, int64_t end, int) {
        weight_images(g, group, row_offsets, rows, acc, begin, end);
      });
    }
    float* const partials[1] = {acc};
    finish(partials, 1);
  }
}
