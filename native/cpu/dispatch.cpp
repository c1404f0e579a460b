// Run-time ISA selection. Detection asks cpuid for the instruction sets AND xgetbv for the OS's
// promise to save the wider registers on a context switch: a CPU with AVX-512 under an OS (or
// hypervisor) that does not enable its state must not run AVX-512 code.
#include <cpuid.h>
#include <unistd.h>

#include <atomic>

#include "dcl/cpu.h"
#include "ops.h"
#include "winograd.h"

namespace dcl {
namespace {

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

struct Features {
  bool avx2 = false;
  bool avx512 = false;
};

Features detect() {
  Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;          // + opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31);
  f.avx2 = ymm_state && avx2 && fma;
  f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl;
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

#define DCL_TABLE(ns)                                                                           \
  CpuKernels {                                                                                  \
    #ns, ns::conv2d_forward, ns::conv2d_backward_input, ns::conv2d_backward_weight,             \
        ns::max_pool2d_forward, ns::max_pool2d_backward, ns::abs_tanh_forward,                  \
        ns::abs_tanh_backward, ns::sigmoid_forward, ns::sigmoid_backward, ns::linear_forward,   \
        ns::linear_backward_input, ns::linear_backward_weight, ns::fma_peak, ns::hamming_dp,    \
        ns::pair_l1_loss, ns::quantize_pack, ns::code_distances,                                \
        ns::abs_tanh_max_pool2d_forward, ns::abs_tanh_max_pool2d_backward, ns::adam_update,     \
        ns::conv2d_prepared_floats, ns::conv2d_prepare, ns::conv2d_forward_prepared,            \
        ns::code_knn, ns::code_range                                                            \
  }

const CpuKernels kSerial = DCL_TABLE(serial);
const CpuKernels kAvx2 = DCL_TABLE(avx2);
const CpuKernels kAvx512 = DCL_TABLE(avx512);

std::atomic<int> g_active{-1};
std::atomic<int> g_conv_algorithm{static_cast<int>(ConvAlgorithm::automatic)};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::serial: return "serial";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  if (name == "serial") return Isa::serial;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw Error("E_ARG", "Expected one of serial, avx2, avx512 for isa but received '" + name + "'");
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::serial: return true;
    case Isa::avx2: return features().avx2;
    case Isa::avx512: return features().avx512;
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::serial, Isa::avx2, Isa::avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() { return supported_isas().back(); }

Isa active_isa() {
  int v = g_active.load();
  return v < 0 ? best_isa() : static_cast<Isa>(v);
}

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    throw Error("E_ISA", std::string("ISA '") + isa_name(isa) + "' is not supported by this CPU");
  g_active.store(static_cast<int>(isa));
}

const CpuKernels& kernels_for(Isa isa) {
  if (!isa_supported(isa))
    throw Error("E_ISA", std::string("ISA '") + isa_name(isa) + "' is not supported by this CPU");
  switch (isa) {
    case Isa::avx2: return kAvx2;
    case Isa::avx512: return kAvx512;
    default: return kSerial;
  }
}

const CpuKernels& kernels() { return kernels_for(active_isa()); }

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::automatic: return "auto";
    case ConvAlgorithm::direct: return "direct";
    case ConvAlgorithm::winograd: return "winograd";
  }
  return "unknown";
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  if (name == "auto") return ConvAlgorithm::automatic;
  if (name == "direct") return ConvAlgorithm::direct;
  if (name == "winograd") return ConvAlgorithm::winograd;
  throw Error("E_ARG", "Expected one of auto, direct, winograd for conv algorithm but received '" + name + "'");
}

ConvAlgorithm conv_algorithm() { return static_cast<ConvAlgorithm>(g_conv_algorithm.load()); }

void set_conv_algorithm(ConvAlgorithm algorithm) { g_conv_algorithm.store(static_cast<int>(algorithm)); }

bool winograd_applies(const Conv2dShape& s) {
  if (s.kernel_h != 3 || s.kernel_w != 3 || s.stride_h != 1 || s.stride_w != 1 || s.pad_h != 1 ||
      s.pad_w != 1)
    return false;
  switch (conv_algorithm()) {
    case ConvAlgorithm::direct: return false;
    case ConvAlgorithm::winograd: return true;
    // Below 8 channels the 16 GEMMs are too thin to win back the transforms.
    default: return s.in_channels >= 8 && s.out_channels >= 8;
  }
}

int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    // Some kernels / containers report 0 or -1: assume the smallest L2 we tune for.
    return v >= (64 << 10) && v <= (64 << 20) ? static_cast<int64_t>(v) : int64_t(512) << 10;
  }();
  return bytes;
}

}  // namespace dcl
