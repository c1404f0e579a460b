// CPU feature detection, ISA selection and the thread count: the run-time state of the CPU backend.
#pragma once

#include <string>
#include <vector>

#include "dcl/kernels.h"

namespace dcl {

enum class Isa { serial = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
// Parses "serial" | "avx2" | "avx512"; throws dcl::Error("E_ARG") on anything else.
Isa parse_isa(const std::string& name);

// ISAs this CPU and OS can run (cpuid feature bits AND xgetbv's saved register state), best last.
std::vector<Isa> supported_isas();
bool isa_supported(Isa isa);
// The best supported ISA: what is active unless set_active_isa chose another.
Isa best_isa();

Isa active_isa();
// Throws dcl::Error("E_ISA") when the CPU cannot run `isa`: never a silent fallback.
void set_active_isa(Isa isa);

// The kernel table of one ISA (the ISA must be supported), and of the active one.
const CpuKernels& kernels_for(Isa isa);
const CpuKernels& kernels();

// How the SIMD paths compute 3x3, stride-1, padding-1 convolutions (process-wide; serial always
// runs the direct convolution): automatic = Winograd F(2x2, 3x3) when the layer has at least 8
// input and 8 output channels, direct = never Winograd, winograd = Winograd for every such layer.
enum class ConvAlgorithm { automatic = 0, direct = 1, winograd = 2 };
const char* conv_algorithm_name(ConvAlgorithm algorithm);  // "auto" | "direct" | "winograd"
// Parses those names; throws dcl::Error("E_ARG") on anything else.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
ConvAlgorithm conv_algorithm();
void set_conv_algorithm(ConvAlgorithm algorithm);

}  // namespace dcl
