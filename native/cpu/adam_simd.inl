// The AdamW driver shared by adam_avx2.cpp and adam_avx512.cpp: each defines, before including
// this inside its ISA namespace, Vec::set1, Consts, kLanes, kMinParallel and update_range (the
// vector loop over [i0, i1) with a masked tail). The per-element arithmetic is in those files.

void adam_update(int64_t n, float* param, const float* grad, float* m, float* v, double lr, double beta1,
                 double beta2, double eps, double weight_decay, double bias_correction1,
                 double bias_correction2_sqrt) {
  // The constants exactly as adam_serial.cpp computes them.
  Consts c;
  c.decay = Vec::set1(static_cast<float>(1.0 - lr * weight_decay));
  c.b1 = Vec::set1(static_cast<float>(beta1));
  c.c1 = Vec::set1(static_cast<float>(1.0 - beta1));
  c.b2 = Vec::set1(static_cast<float>(beta2));
  c.c2 = Vec::set1(static_cast<float>(1.0 - beta2));
  c.step = Vec::set1(static_cast<float>(lr / bias_correction1));
  c.bc2 = Vec::set1(static_cast<float>(bias_correction2_sqrt));
  c.eps = Vec::set1(static_cast<float>(eps));
  if (n < kMinParallel) {
    update_range(c, 0, n, param, grad, m, v);
    return;
  }
  // Chunks of whole vectors; only the last chunk has a tail.
  const int64_t blocks = (n + kLanes - 1) / kLanes;
  parallel_for(blocks, [&](int64_t b0, int64_t b1, int) {
    update_range(c, b0 * kLanes, b1 * kLanes < n ? b1 * kLanes : n, param, grad, m, v);
  });
}

