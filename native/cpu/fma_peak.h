// Shared driver for the FMA peak measurement: each ISA file supplies a loop of independent FMA
// chains, this runs it on `threads` threads until `seconds` pass and returns total GFLOP/s.
#pragma once

#include <chrono>

#include "dcl/parallel.h"

namespace dcl {

// chain_fn runs `iterations` rounds and returns the number of floating-point operations done
// (2 per lane per FMA) and a value that depends on every result so nothing is optimized away.
using FmaChainFn = double (*)(int64_t iterations, float* sink);

double measure_fma_peak(FmaChainFn chain, int threads, double seconds);

}  // namespace dcl
