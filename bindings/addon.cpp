// N-API glue: unpack arguments, call the native kernels, turn C++ exceptions into JS errors that
// lib/ rethrows as DclError. No math here, and no validation beyond what keeps a pointer safe:
// lib/ has already checked types, shapes and lengths.
#include <napi.h>

#include <exception>
#include <string>

#include "dcl/cpu.h"
#include "dcl/kernels.h"
#include "glue.h"
#include "dcl/parallel.h"

// bindings/bins.cpp: the bin index.
void register_bins(Napi::Env env, Napi::Object exports);
// bindings/scan.cpp: the exhaustive code scans (k nearest, range).
void register_scan(Napi::Env env, Napi::Object exports);
// bindings/cuda.cpp: the CUDA backend (status, device buffers, ops) and capabilities().cuda.
void register_cuda(Napi::Env env, Napi::Object exports);
Napi::Object cuda_capabilities(Napi::Env env);

namespace {

using dcl_bindings::guarded;
using dcl_bindings::make_error;

template <class T>
T* typed(const Napi::CallbackInfo& info, size_t index, napi_typedarray_type type, bool optional = false) {
  Napi::Value v = info[index];
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw dcl::Error("E_ARG", "argument " + std::to_string(index) + " has the wrong typed-array type");
  return v.As<Napi::TypedArrayOf<T>>().Data();
}

float* f32(const Napi::CallbackInfo& info, size_t i) { return typed<float>(info, i, napi_float32_array); }
float* f32_or_null(const Napi::CallbackInfo& info, size_t i) {
  return typed<float>(info, i, napi_float32_array, true);
}
int32_t* i32(const Napi::CallbackInfo& info, size_t i) { return typed<int32_t>(info, i, napi_int32_array); }

int64_t integer(const Napi::CallbackInfo& info, size_t index) {
  return info[index].As<Napi::Number>().Int64Value();
}

// Shapes travel as arrays of integers in a fixed order (see lib/native.ts).
dcl::Conv2dShape conv_shape(const Napi::CallbackInfo& info, size_t index) {
  Napi::Array a = info[index].As<Napi::Array>();
  auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().Int64Value(); };
  dcl::Conv2dShape s;
  s.batch = at(0); s.in_channels = at(1); s.in_h = at(2); s.in_w = at(3);
  s.out_channels = at(4); s.kernel_h = at(5); s.kernel_w = at(6);
  s.stride_h = at(7); s.stride_w = at(8); s.pad_h = at(9); s.pad_w = at(10);
  return s;
}

dcl::Pool2dShape pool_shape(const Napi::CallbackInfo& info, size_t index) {
  Napi::Array a = info[index].As<Napi::Array>();
  auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().Int64Value(); };
  dcl::Pool2dShape s;
  s.batch = at(0); s.channels = at(1); s.in_h = at(2); s.in_w = at(3);
  s.kernel_h = at(4); s.kernel_w = at(5); s.stride_h = at(6); s.stride_w = at(7);
  return s;
}

dcl::LinearShape linear_shape(const Napi::CallbackInfo& info, size_t index) {
  Napi::Array a = info[index].As<Napi::Array>();
  auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().Int64Value(); };
  dcl::LinearShape s;
  s.batch = at(0); s.in_features = at(1); s.out_features = at(2);
  return s;
}

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array isas = Napi::Array::New(env);
    uint32_t i = 0;
    for (dcl::Isa isa : dcl::supported_isas()) isas.Set(i++, dcl::isa_name(isa));
    out.Set("isas", isas);
    out.Set("isa", dcl::isa_name(dcl::active_isa()));
    out.Set("bestIsa", dcl::isa_name(dcl::best_isa()));
    out.Set("threads", dcl::thread_count());
    out.Set("hardwareThreads", dcl::hardware_threads());
    out.Set("cuda", cuda_capabilities(env));
    return out;
  });
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::set_active_isa(dcl::parse_isa(info[0].As<Napi::String>().Utf8Value()));
    return info.Env().Undefined();
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::set_thread_count(static_cast<int>(integer(info, 0)));
    return info.Env().Undefined();
  });
}

Napi::Value SetConvAlgorithm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::set_conv_algorithm(dcl::parse_conv_algorithm(info[0].As<Napi::String>().Utf8Value()));
    return info.Env().Undefined();
  });
}

Napi::Value ConvAlgorithm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), dcl::conv_algorithm_name(dcl::conv_algorithm()));
  });
}

// The active ISA and conv algorithm as one small integer (4 isa + algorithm): it changes whenever
// either does, so lib/ can key caches of prepared weights by it with one cheap call.
Napi::Value KernelSettings(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), 4 * static_cast<int>(dcl::active_isa()) + static_cast<int>(dcl::conv_algorithm()));
  });
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const auto& k = dcl::kernels_for(dcl::parse_isa(info[0].As<Napi::String>().Utf8Value()));
    double gflops = k.fma_peak(static_cast<int>(integer(info, 1)), info[2].As<Napi::Number>().DoubleValue());
    return Napi::Number::New(info.Env(), gflops);
  });
}

Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().conv2d_forward(conv_shape(info, 4), f32(info, 0), f32(info, 1), f32_or_null(info, 2), f32(info, 3));
    return info.Env().Undefined();
  });
}

// conv2dPreparedFloats(shape) -> floats of the prepared weights of this layer (ISA and conv
// algorithm as they are now).
Napi::Value Conv2dPreparedFloats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(dcl::kernels().conv2d_prepared_floats(conv_shape(info, 0))));
  });
}

// The prepared array must hold exactly conv2dPreparedFloats(shape) floats (a shorter one would be
// read past its end).
void check_prepared_length(const Napi::CallbackInfo& info, size_t index, const dcl::Conv2dShape& s) {
  const int64_t want = dcl::kernels().conv2d_prepared_floats(s);
  if (static_cast<int64_t>(info[index].As<Napi::TypedArray>().ElementLength()) != want)
    throw dcl::Error("E_ARG", "Expected prepared conv weights of " + std::to_string(want) +
                                  " floats for this layer, ISA and conv algorithm but received " +
                                  std::to_string(info[index].As<Napi::TypedArray>().ElementLength()));
}

// conv2dPrepare(w, prepared, shape)
Napi::Value Conv2dPrepare(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const dcl::Conv2dShape s = conv_shape(info, 2);
    const float* w = f32(info, 0);
    float* prepared = f32(info, 1);
    check_prepared_length(info, 1, s);
    dcl::kernels().conv2d_prepare(s, w, prepared);
    return info.Env().Undefined();
  });
}

// conv2dForwardPrepared(x, prepared, b | null, y, shape)
Napi::Value Conv2dForwardPrepared(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const dcl::Conv2dShape s = conv_shape(info, 4);
    const float* x = f32(info, 0);
    const float* prepared = f32(info, 1);
    const float* b = f32_or_null(info, 2);
    float* y = f32(info, 3);
    check_prepared_length(info, 1, s);
    dcl::kernels().conv2d_forward_prepared(s, x, prepared, b, y);
    return info.Env().Undefined();
  });
}

Napi::Value Conv2dBackwardInput(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().conv2d_backward_input(conv_shape(info, 3), f32(info, 0), f32(info, 1), f32(info, 2));
    return info.Env().Undefined();
  });
}

Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().conv2d_backward_weight(conv_shape(info, 4), f32(info, 0), f32(info, 1), f32(info, 2), f32_or_null(info, 3));
    return info.Env().Undefined();
  });
}

Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().max_pool2d_forward(pool_shape(info, 3), f32(info, 0), f32(info, 1), i32(info, 2));
    return info.Env().Undefined();
  });
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().max_pool2d_backward(pool_shape(info, 3), f32(info, 0), i32(info, 1), f32(info, 2));
    return info.Env().Undefined();
  });
}

int64_t length(const Napi::CallbackInfo& info, size_t index) {
  return static_cast<int64_t>(info[index].As<Napi::TypedArray>().ElementLength());
}

// Fused |tanh| + max-pool: (x, y, argmax, poolShape) and (dy, argmax, x, y, dx, poolShape).
Napi::Value AbsTanhMaxPool2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().abs_tanh_max_pool2d_forward(pool_shape(info, 3), f32(info, 0), f32(info, 1), i32(info, 2));
    return info.Env().Undefined();
  });
}

Napi::Value AbsTanhMaxPool2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().abs_tanh_max_pool2d_backward(pool_shape(info, 5), f32(info, 0), i32(info, 1), f32(info, 2),
                                                f32(info, 3), f32(info, 4));
    return info.Env().Undefined();
  });
}

Napi::Value AbsTanhForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().abs_tanh_forward(length(info, 0), f32(info, 0), f32(info, 1));
    return info.Env().Undefined();
  });
}

Napi::Value AbsTanhBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().abs_tanh_backward(length(info, 0), f32(info, 0), f32(info, 1), f32(info, 2), f32(info, 3));
    return info.Env().Undefined();
  });
}

Napi::Value SigmoidForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().sigmoid_forward(length(info, 0), f32(info, 0), f32(info, 1));
    return info.Env().Undefined();
  });
}

Napi::Value SigmoidBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().sigmoid_backward(length(info, 0), f32(info, 0), f32(info, 1), f32(info, 2));
    return info.Env().Undefined();
  });
}

Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().linear_forward(linear_shape(info, 4), f32(info, 0), f32(info, 1), f32_or_null(info, 2), f32(info, 3));
    return info.Env().Undefined();
  });
}

Napi::Value LinearBackwardInput(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().linear_backward_input(linear_shape(info, 3), f32(info, 0), f32(info, 1), f32(info, 2));
    return info.Env().Undefined();
  });
}

Napi::Value LinearBackwardWeight(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    dcl::kernels().linear_backward_weight(linear_shape(info, 4), f32(info, 0), f32(info, 1), f32(info, 2), f32_or_null(info, 3));
    return info.Env().Undefined();
  });
}

// ---- compactness losses and code layouts ----------------------------------------------------

double* f64_or_null(const Napi::CallbackInfo& info, size_t i) {
  return typed<double>(info, i, napi_float64_array, true);
}
double* f64(const Napi::CallbackInfo& info, size_t i) { return typed<double>(info, i, napi_float64_array); }
uint32_t* u32(const Napi::CallbackInfo& info, size_t i) { return typed<uint32_t>(info, i, napi_uint32_array); }

// Arguments after the kernel-specific ones: labels, weights | null, loss (Float64Array [P]),
// grad scalars (Float64Array [2]) | null, shape [N, n, P], alpha, beta, scale.
dcl::PairLossArgs pair_loss_args(const Napi::CallbackInfo& info, size_t first) {
  Napi::Array a = info[first + 5].As<Napi::Array>();
  auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().Int64Value(); };
  dcl::PairLossArgs args;
  args.shape.images = at(0);
  args.shape.dims = at(1);
  args.shape.pairs = at(2);
  args.pairs = i32(info, first);
  args.labels = f32(info, first + 1);
  args.weights = f32_or_null(info, first + 2);
  args.loss = f64(info, first + 3);
  args.grad_scalars = f64_or_null(info, first + 4);
  args.alpha = info[first + 6].As<Napi::Number>().DoubleValue();
  args.beta = info[first + 7].As<Napi::Number>().DoubleValue();
  args.scale = info[first + 8].As<Napi::Number>().DoubleValue();
  return args;
}

// hammingDp(p, gradP | null, pairs, labels, weights | null, loss, gradScalars | null, shape, alpha, beta, scale)
Napi::Value HammingDp(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const dcl::PairLossArgs args = pair_loss_args(info, 2);
    float* grad = f32_or_null(info, 1);
    if (grad && !args.grad_scalars) throw dcl::Error("E_ARG", "hammingDp: gradients need the gradScalars array");
    dcl::kernels().hamming_dp(args, f32(info, 0), grad);
    return info.Env().Undefined();
  });
}

// pairL1Loss(f, s, gradF | null, pairs, labels, weights | null, loss, gradScalars | null, shape, alpha, beta, scale)
Napi::Value PairL1Loss(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const dcl::PairLossArgs args = pair_loss_args(info, 3);
    float* grad = f32_or_null(info, 2);
    if (grad && !args.grad_scalars) throw dcl::Error("E_ARG", "pairL1Loss: gradients need the gradScalars array");
    dcl::kernels().pair_l1_loss(args, f32(info, 0), f32(info, 1), grad);
    return info.Env().Undefined();
  });
}

// quantizePack(p, codes, [count, n, q])
Napi::Value QuantizePack(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Array a = info[2].As<Napi::Array>();
    auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().Int64Value(); };
    dcl::kernels().quantize_pack(at(0), static_cast<int>(at(1)), static_cast<int>(at(2)), f32(info, 0), i32(info, 1));
    return info.Env().Undefined();
  });
}

// codeDistances(a, b, dist, [count, n, q, hamming])
Napi::Value CodeDistances(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Array a = info[3].As<Napi::Array>();
    auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().Int64Value(); };
    dcl::kernels().code_distances(at(0), static_cast<int>(at(1)), static_cast<int>(at(2)), at(3) != 0, i32(info, 0),
                                  i32(info, 1), u32(info, 2));
    return info.Env().Undefined();
  });
}

// adamUpdate(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, biasCorrection1,
// biasCorrection2Sqrt): in place on param, m, v (all of param's length).
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    float* param = f32(info, 0);  // type checks first, then the lengths
    const float* grad = f32(info, 1);
    float* m = f32(info, 2);
    float* v = f32(info, 3);
    const int64_t n = length(info, 0);
    for (size_t i = 1; i < 4; ++i)
      if (length(info, i) != n) throw dcl::Error("E_ARG", "adamUpdate: argument " + std::to_string(i) + " has the wrong length");
    auto num = [&](size_t i) { return info[i].As<Napi::Number>().DoubleValue(); };
    dcl::kernels().adam_update(n, param, grad, m, v, num(4), num(5), num(6), num(7), num(8), num(9), num(10));
    return info.Env().Undefined();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("capabilities", Napi::Function::New(env, Capabilities));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("setConvAlgorithm", Napi::Function::New(env, SetConvAlgorithm));
  exports.Set("convAlgorithm", Napi::Function::New(env, ConvAlgorithm));
  exports.Set("kernelSettings", Napi::Function::New(env, KernelSettings));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward));
  exports.Set("conv2dPreparedFloats", Napi::Function::New(env, Conv2dPreparedFloats));
  exports.Set("conv2dPrepare", Napi::Function::New(env, Conv2dPrepare));
  exports.Set("conv2dForwardPrepared", Napi::Function::New(env, Conv2dForwardPrepared));
  exports.Set("conv2dBackwardInput", Napi::Function::New(env, Conv2dBackwardInput));
  exports.Set("conv2dBackwardWeight", Napi::Function::New(env, Conv2dBackwardWeight));
  exports.Set("maxPool2dForward", Napi::Function::New(env, MaxPool2dForward));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2dBackward));
  exports.Set("absTanhForward", Napi::Function::New(env, AbsTanhForward));
  exports.Set("absTanhBackward", Napi::Function::New(env, AbsTanhBackward));
  exports.Set("absTanhMaxPool2dForward", Napi::Function::New(env, AbsTanhMaxPool2dForward));
  exports.Set("absTanhMaxPool2dBackward", Napi::Function::New(env, AbsTanhMaxPool2dBackward));
  exports.Set("sigmoidForward", Napi::Function::New(env, SigmoidForward));
  exports.Set("sigmoidBackward", Napi::Function::New(env, SigmoidBackward));
  exports.Set("linearForward", Napi::Function::New(env, LinearForward));
  exports.Set("linearBackwardInput", Napi::Function::New(env, LinearBackwardInput));
  exports.Set("linearBackwardWeight", Napi::Function::New(env, LinearBackwardWeight));
  exports.Set("hammingDp", Napi::Function::New(env, HammingDp));
  exports.Set("pairL1Loss", Napi::Function::New(env, PairL1Loss));
  exports.Set("quantizePack", Napi::Function::New(env, QuantizePack));
  exports.Set("codeDistances", Napi::Function::New(env, CodeDistances));
  exports.Set("adamUpdate", Napi::Function::New(env, AdamUpdate));
  register_bins(env, exports);
  register_scan(env, exports);
  register_cuda(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(dcl_native, Init)
