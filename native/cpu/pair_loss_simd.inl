// The two inner loops of pair_l1_loss on SIMD vectors of doubles, shared by pair_loss_avx2.cpp
// (4 dimensions per ymm) and pair_loss_avx512.cpp (8 per zmm); the driver and the meaning of each
// loop are in pair_loss_serial.cpp. Both run along the n dimensions of one image row, float32
// values widened to float64 (exactly) before they are subtracted or compared; the last partial
// vector uses masked loads and stores (masked lanes are neither read nor written).
//
// Each ISA file defines, in an anonymous namespace of its ISA namespace, a traits struct `Traits`
// with V (kLanes doubles), kLanes, zero, add, sub, abs, hsum, load_f32 / load_f32_part (kLanes or
// the first m floats, widened; the other lanes 0), load / load_part and store / store_part (doubles),
// and sign_step(self, other, g, ng) = g where self > other, ng where self < other, else 0; then
// includes this file there. No library code (see dcl/parallel.h on ODR safety).
//
// The accumulation adds exactly g, -g or 0 to each element in the same order as the serial loop,
// so grad_f is bit-identical to the serial one; the distances sum lane-wise partial sums, so they
// may differ from the serial sum in the last bit (never for integer-valued codes, whose sums are
// exact in float64).

namespace {

void distances_simd(int64_t n, const float* f, const int32_t* pairs, int64_t k0, int64_t k1,
                    double* d) {
  using V = Traits::V;
  constexpr int W = Traits::kLanes;
  const int64_t full = n / W * W;
  const int tail = static_cast<int>(n - full);
  for (int64_t k = k0; k < k1; ++k) {
    const float* fa = f + static_cast<int64_t>(pairs[2 * k]) * n;
    const float* fb = f + static_cast<int64_t>(pairs[2 * k + 1]) * n;
    V s0 = Traits::zero(), s1 = Traits::zero();
    int64_t i = 0;
    for (; i + 2 * W <= full; i += 2 * W) {
      s0 = Traits::add(s0, Traits::abs(Traits::sub(Traits::load_f32(fa + i), Traits::load_f32(fb + i))));
      s1 = Traits::add(s1, Traits::abs(Traits::sub(Traits::load_f32(fa + i + W), Traits::load_f32(fb + i + W))));
    }
    if (i < full) {
      s0 = Traits::add(s0, Traits::abs(Traits::sub(Traits::load_f32(fa + i), Traits::load_f32(fb + i))));
      i += W;
    }
    if (tail)
      s1 = Traits::add(s1, Traits::abs(Traits::sub(Traits::load_f32_part(fa + i, tail), Traits::load_f32_part(fb + i, tail))));
    d[k - k0] = Traits::hsum(Traits::add(s0, s1));
  }
}

void accumulate_simd(int64_t n, double* acc, const float* self, const float* other, double g) {
  using V = Traits::V;
  constexpr int W = Traits::kLanes;
  const V pg = Traits::set1(g), ng = Traits::set1(-g);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V step = Traits::sign_step(Traits::load_f32(self + i), Traits::load_f32(other + i), pg, ng);
    Traits::store(acc + i, Traits::add(Traits::load(acc + i), step));
  }
  if (i < n) {
    const int m = static_cast<int>(n - i);
    const V step = Traits::sign_step(Traits::load_f32_part(self + i, m), Traits::load_f32_part(other + i, m), pg, ng);
    Traits::store_part(acc + i, Traits::add(Traits::load_part(acc + i, m), step), m);
  }
}

}  // namespace

void pair_l1_loss(const PairLossArgs& args, const float* f, const float* s, float* grad_f) {
  const PairL1Inner inner{distances_simd, accumulate_simd};
  pair_l1_drive(args, f, s, grad_f, inner);
}
