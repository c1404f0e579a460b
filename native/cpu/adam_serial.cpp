// Adam / AdamW parameter update (torch.optim.AdamW semantics, decoupled weight decay). Serial
// reference: every ISA computes exactly these float32 operations in this order, element by element.
//
// The hyperparameters arrive in float64 (as torch's Python scalars); the constants are computed
// once in float64 and each rounded to float32 (the same code in every ISA), as torch rounds each
// scalar argument of its float32 tensor ops:
//   decay = 1 - lr wd, c1 = 1 - beta1, c2 = 1 - beta2, step = lr / bias_correction1, and beta1,
//   beta2, eps, bias_correction2_sqrt themselves.
// (1 - beta2 from the float32-rounded beta2 = 0.999 would be off by 1.3e-5 relative: cancellation.)
// Per element (float32, each operation rounded once; no fused multiply-add):
//   p = p * decay
//   m = beta1 m + c1 g
//   v = beta2 v + c2 (g g)
//   denom = sqrt(v) / bias_correction2_sqrt + eps
//   p = p - step (m / denom)
// (torch: p.mul_(1 - lr wd); ...; denom = (v.sqrt() / bc2_sqrt).add_(eps);
//  p.addcdiv_(m, denom, value=-step)). sqrt and division are correctly rounded in IEEE float32 both
// here and in the vector instructions, so the AVX2 / AVX-512 results are bit-identical to these:
// their files switch floating-point contraction off (a fused a b + c rounds once instead of twice).
// The baseline x86-64 build of this file has no FMA instruction to contract into.
#include <cmath>

#include "dcl/parallel.h"
#include "ops.h"

namespace dcl {
namespace serial {
namespace {

// Below this many elements the update stays on the calling thread.
constexpr int64_t kMinParallel = 1 << 15;

}  // namespace

void adam_update(int64_t n, float* param, const float* grad, float* m, float* v, double lr, double beta1,
                 double beta2, double eps, double weight_decay, double bias_correction1,
                 double bias_correction2_sqrt) {
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  const float b1 = static_cast<float>(beta1), c1 = static_cast<float>(1.0 - beta1);
  const float b2 = static_cast<float>(beta2), c2 = static_cast<float>(1.0 - beta2);
  const float step = static_cast<float>(lr / bias_correction1);
  const float bc2 = static_cast<float>(bias_correction2_sqrt);
  const float epsf = static_cast<float>(eps);
  auto body = [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      const float g = grad[i];
      const float p = param[i] * decay;
      const float b1m = b1 * m[i];
      const float c1g = c1 * g;
      const float mi = b1m + c1g;
      const float b2v = b2 * v[i];
      const float gg = g * g;
      const float c2gg = c2 * gg;
      const float vi = b2v + c2gg;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / bc2 + epsf;
      const float ratio = mi / denom;
      const float upd = step * ratio;
      param[i] = p - upd;
    }
  };
  if (n >= kMinParallel)
    parallel_for(n, body);
  else
    body(0, n, 0);
}

}  // namespace serial
}  // namespace dcl
