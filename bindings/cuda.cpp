// N-API glue of the CUDA backend (native/include/dcl_cuda.h): the device status, device buffer
// handles, and one function per op. No math here, and no CUDA header: the launchers and the
// caching allocator are plain C++ functions returning a status, turned into a JS error with a
// code (E_CUDA: CUDA not usable or a CUDA call failed; E_ARG: an argument the launcher refused).
//
// Operands: every tensor argument of an op is either a typed array on the host or the number of a
// device buffer (cudaAlloc). A typed array is copied into a temporary device block before the
// launch (inputs) and copied back after it (outputs), so the tests can call every op host to
// host; a buffer number is used in place, so a caller can keep tensors on the device between
// calls (the benchmarks, and later training). lib/cuda.ts has validated every shape and length.
//
// Built without CUDA (no toolkit, or DCL_CUDA=OFF), the same functions exist and throw E_CUDA
// with the reason, and cudaStatus() says compiled: false.
#include <napi.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "glue.h"

#ifdef DCL_HAVE_CUDA
#include "dcl_cuda.h"
#endif

#ifndef DCL_CUDA_REASON
#define DCL_CUDA_REASON "built without CUDA support"
#endif

namespace {

using dcl_bindings::guarded;
using dcl_bindings::make_error;

#ifdef DCL_HAVE_CUDA

namespace cu = dcl::cuda;

const char* error_code(cu::CudaCode code) { return code == cu::CudaCode::invalid ? "E_ARG" : "E_CUDA"; }

void check(const cu::CudaStatus& s) {
  if (!s.ok()) throw dcl::Error(error_code(s.code), s.message);
}

// ---- device buffers: JS holds a number, the registry maps it to the block -------------------

struct Buffer {
  void* ptr;
  size_t bytes;
};

struct Registry {
  std::mutex mutex;
  std::unordered_map<uint32_t, Buffer> buffers;
  uint32_t next = 1;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: blocks may outlive static teardown
  return *r;
}

Buffer lookup(const Napi::Value& v) {
  const uint32_t id = v.As<Napi::Number>().Uint32Value();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.buffers.find(id);
  if (it == r.buffers.end()) throw dcl::Error("E_ARG", "Expected a live CUDA buffer but received buffer " + std::to_string(id) + " (freed, or never allocated)");
  return it->second;
}

// The typed-array type of each element type an operand may have.
template <class T>
napi_typedarray_type array_type();
template <>
napi_typedarray_type array_type<float>() { return napi_float32_array; }
template <>
napi_typedarray_type array_type<int32_t>() { return napi_int32_array; }
template <>
napi_typedarray_type array_type<uint32_t>() { return napi_uint32_array; }
template <>
napi_typedarray_type array_type<double>() { return napi_float64_array; }

// The first byte of a typed array's elements (on the host).
void* host_bytes(const Napi::TypedArray& a) { return static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(); }

// The device pointers of one call. Host arrays get temporary device blocks, uploaded (inputs) and
// downloaded by finish() (outputs); the blocks go back to the allocator when the call ends.
class Operands {
 public:
  Operands() = default;
  Operands(const Operands&) = delete;
  Operands& operator=(const Operands&) = delete;
  ~Operands() {
    for (const Temp& t : temps_) cu::device_free(t.device);
  }

  template <class T>
  T* in(const Napi::CallbackInfo& info, size_t index) { return resolve<T>(info, index, true, false); }
  template <class T>
  T* out(const Napi::CallbackInfo& info, size_t index) { return resolve<T>(info, index, false, true); }
  template <class T>
  T* inout(const Napi::CallbackInfo& info, size_t index) { return resolve<T>(info, index, true, true); }
  template <class T>
  T* in_or_null(const Napi::CallbackInfo& info, size_t index) {
    return absent(info[index]) ? nullptr : in<T>(info, index);
  }
  template <class T>
  T* out_or_null(const Napi::CallbackInfo& info, size_t index) {
    return absent(info[index]) ? nullptr : out<T>(info, index);
  }

  // Copies the outputs back to their host arrays (waits for the kernels).
  void finish() {
    for (const Temp& t : temps_)
      if (t.download) check(cu::download(t.host, t.device, t.bytes));
  }

 private:
  struct Temp {
    void* device;
    void* host;
    size_t bytes;
    bool download;
  };
  std::vector<Temp> temps_;

  static bool absent(const Napi::Value& v) { return v.IsNull() || v.IsUndefined(); }

  template <class T>
  T* resolve(const Napi::CallbackInfo& info, size_t index, bool upload, bool download) {
    Napi::Value v = info[index];
    if (v.IsNumber()) return static_cast<T*>(lookup(v).ptr);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != array_type<T>())
      throw dcl::Error("E_ARG", "argument " + std::to_string(index) + " must be a CUDA buffer or a typed array of the right type");
    Napi::TypedArray a = v.As<Napi::TypedArray>();
    void* host = host_bytes(a);
    const size_t bytes = a.ByteLength();
    void* device = nullptr;
    check(cu::device_alloc(bytes, &device));
    temps_.push_back({device, host, bytes, download});
    if (upload) check(cu::upload(device, host, bytes));
    return static_cast<T*>(device);
  }
};

int64_t integer(const Napi::CallbackInfo& info, size_t index) { return info[index].As<Napi::Number>().Int64Value(); }
double number(const Napi::CallbackInfo& info, size_t index) { return info[index].As<Napi::Number>().DoubleValue(); }

std::vector<int64_t> shape_of(const Napi::CallbackInfo& info, size_t index, uint32_t count) {
  Napi::Array a = info[index].As<Napi::Array>();
  if (a.Length() < count) throw dcl::Error("E_ARG", "shape argument " + std::to_string(index) + " is too short");
  std::vector<int64_t> s(count);
  for (uint32_t i = 0; i < count; ++i) s[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return s;
}

// Shapes in the orders of lib/native.ts.
dcl::Conv2dShape conv_shape(const Napi::CallbackInfo& info, size_t index) {
  const auto v = shape_of(info, index, 11);
  dcl::Conv2dShape s;
  s.batch = v[0]; s.in_channels = v[1]; s.in_h = v[2]; s.in_w = v[3];
  s.out_channels = v[4]; s.kernel_h = v[5]; s.kernel_w = v[6];
  s.stride_h = v[7]; s.stride_w = v[8]; s.pad_h = v[9]; s.pad_w = v[10];
  return s;
}

dcl::Pool2dShape pool_shape(const Napi::CallbackInfo& info, size_t index) {
  const auto v = shape_of(info, index, 8);
  dcl::Pool2dShape s;
  s.batch = v[0]; s.channels = v[1]; s.in_h = v[2]; s.in_w = v[3];
  s.kernel_h = v[4]; s.kernel_w = v[5]; s.stride_h = v[6]; s.stride_w = v[7];
  return s;
}

dcl::LinearShape linear_shape(const Napi::CallbackInfo& info, size_t index) {
  const auto v = shape_of(info, index, 3);
  dcl::LinearShape s;
  s.batch = v[0]; s.in_features = v[1]; s.out_features = v[2];
  return s;
}

Napi::Object status_object(Napi::Env env) {
  const cu::CudaProbe& p = cu::probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", p.compiled);
  o.Set("usable", p.usable);
  o.Set("reason", p.usable ? env.Null() : Napi::String::New(env, p.reason).As<Napi::Value>());
  Napi::Array devices = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); ++i) {
    const cu::CudaDeviceInfo& d = p.devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("name", d.name);
    dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dev.Set("memoryBytes", static_cast<double>(d.memory_bytes));
    dev.Set("smCount", d.sm_count);
    devices.Set(static_cast<uint32_t>(i), dev);
  }
  o.Set("devices", devices);
  return o;
}

// ---- buffers ----------------------------------------------------------------------------------

// cudaAlloc(bytes) -> buffer number
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int64_t bytes = integer(info, 0);
    if (bytes < 0) throw dcl::Error("E_ARG", "cudaAlloc: negative size");
    void* ptr = nullptr;
    check(cu::device_alloc(static_cast<size_t>(bytes), &ptr));
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    const uint32_t id = r.next++;
    r.buffers[id] = {ptr, static_cast<size_t>(bytes)};
    return Napi::Number::New(info.Env(), id);
  });
}

// cudaFree(buffer): unknown or already freed numbers are ignored.
Napi::Value Free(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    void* ptr = nullptr;
    {
      Registry& r = registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      auto it = r.buffers.find(id);
      if (it != r.buffers.end()) {
        ptr = it->second.ptr;
        r.buffers.erase(it);
      }
    }
    cu::device_free(ptr);
    return info.Env().Undefined();
  });
}

// The buffer and the typed array of a copy, with the byte count checked against both.
std::pair<Buffer, Napi::TypedArray> copy_operands(const Napi::CallbackInfo& info, const char* what) {
  const Buffer b = lookup(info[0]);
  if (!info[1].IsTypedArray()) throw dcl::Error("E_ARG", std::string(what) + ": argument 1 must be a typed array");
  Napi::TypedArray a = info[1].As<Napi::TypedArray>();
  if (a.ByteLength() > b.bytes)
    throw dcl::Error("E_ARG", std::string(what) + ": the array (" + std::to_string(a.ByteLength()) + " bytes) is larger than the buffer (" +
                                  std::to_string(b.bytes) + " bytes)");
  return {b, a};
}

// cudaUpload(buffer, typedArray): the array's bytes to the start of the buffer.
Napi::Value Upload(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto [b, a] = copy_operands(info, "cudaUpload");
    check(cu::upload(b.ptr, host_bytes(a), a.ByteLength()));
    return info.Env().Undefined();
  });
}

// cudaDownload(buffer, typedArray): the start of the buffer into the array (waits for the kernels).
Napi::Value Download(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto [b, a] = copy_operands(info, "cudaDownload");
    check(cu::download(host_bytes(a), b.ptr, a.ByteLength()));
    return info.Env().Undefined();
  });
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check(cu::synchronize());
    return info.Env().Undefined();
  });
}

Napi::Value ReleaseCached(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check(cu::device_release_cached());
    return info.Env().Undefined();
  });
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const cu::AllocatorStats s = cu::allocator_stats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("bytesInUse", static_cast<double>(s.bytes_in_use));
    o.Set("bytesCached", static_cast<double>(s.bytes_cached));
    o.Set("deviceAllocations", static_cast<double>(s.device_allocations));
    o.Set("reuses", static_cast<double>(s.reuses));
    return o;
  });
}

Napi::Value StatusFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return status_object(info.Env()); });
}

// cudaFmaPeak(seconds) -> GFLOP/s
Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    double gflops = 0;
    check(cu::fma_peak(number(info, 0), &gflops));
    return Napi::Number::New(info.Env(), gflops);
  });
}

// cudaCopyBandwidth(bytes, repeats) -> GB/s (read + write)
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    double gbs = 0;
    check(cu::copy_bandwidth(static_cast<size_t>(integer(info, 0)), static_cast<int>(integer(info, 1)), &gbs));
    return Napi::Number::New(info.Env(), gbs);
  });
}

// ---- ops: argument orders as the CPU functions of lib/native.ts, plus an element count where
// the CPU one reads it from an array's length -------------------------------------------------

struct NoState {};

// Runs the body of an op: `body(operands, state)` resolves the operands and queues the launch;
// then the host outputs are copied back (waiting for the kernels) while `state` (what the launch
// reads besides the operands, such as a PairCall's batch) is still alive. Returns undefined.
template <class State, class Body>
Napi::Value run_op_with(const Napi::CallbackInfo& info, Body body) {
  return guarded(info, [&]() -> Napi::Value {
    Operands o;
    State state;
    body(o, state);
    o.finish();
    return info.Env().Undefined();
  });
}

template <class Body>
Napi::Value run_op(const Napi::CallbackInfo& info, Body body) {
  return run_op_with<NoState>(info, [&](Operands& o, NoState&) { body(o); });
}

// The launchers of a layer with weights (conv2d, linear), and its shape's parser.
template <class Shape>
using ShapeOf = Shape (*)(const Napi::CallbackInfo&, size_t);
template <class Shape>
using LayerForwardFn = cu::CudaStatus (*)(const Shape&, const float*, const float*, const float*, float*);
template <class Shape>
using LayerBackwardInputFn = cu::CudaStatus (*)(const Shape&, const float*, const float*, float*);
template <class Shape>
using LayerBackwardWeightFn = cu::CudaStatus (*)(const Shape&, const float*, const float*, float*, float*);

// cudaConv2dForward(x, w, b | null, y, shape), cudaLinearForward(x, w, b | null, y, shape)
template <class Shape, ShapeOf<Shape> kShape, LayerForwardFn<Shape> kLaunch>
Napi::Value LayerForward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* x = o.in<float>(info, 0);
    const float* w = o.in<float>(info, 1);
    const float* b = o.in_or_null<float>(info, 2);
    float* y = o.out<float>(info, 3);
    check(kLaunch(kShape(info, 4), x, w, b, y));
  });
}

// cudaConv2dBackwardInput(dy, w, dx, shape), cudaLinearBackwardInput(dy, w, dx, shape)
template <class Shape, ShapeOf<Shape> kShape, LayerBackwardInputFn<Shape> kLaunch>
Napi::Value LayerBackwardInput(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* dy = o.in<float>(info, 0);
    const float* w = o.in<float>(info, 1);
    float* dx = o.out<float>(info, 2);
    check(kLaunch(kShape(info, 3), dy, w, dx));
  });
}

// cudaConv2dBackwardWeight(x, dy, dw, db | null, shape), cudaLinearBackwardWeight(x, dy, dw, db | null, shape)
template <class Shape, ShapeOf<Shape> kShape, LayerBackwardWeightFn<Shape> kLaunch>
Napi::Value LayerBackwardWeight(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* x = o.in<float>(info, 0);
    const float* dy = o.in<float>(info, 1);
    float* dw = o.out<float>(info, 2);
    float* db = o.out_or_null<float>(info, 3);
    check(kLaunch(kShape(info, 4), x, dy, dw, db));
  });
}

// cudaMaxPool2dForward(x, y, argmax, shape) and the fused |tanh| version
template <bool kAbsTanh>
Napi::Value PoolForward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* x = o.in<float>(info, 0);
    float* y = o.out<float>(info, 1);
    int32_t* argmax = o.out<int32_t>(info, 2);
    const dcl::Pool2dShape s = pool_shape(info, 3);
    check(kAbsTanh ? cu::abs_tanh_max_pool2d_forward(s, x, y, argmax) : cu::max_pool2d_forward(s, x, y, argmax));
  });
}

// cudaMaxPool2dBackward(dy, argmax, dx, shape, checkArgmax)
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* dy = o.in<float>(info, 0);
    const int32_t* argmax = o.in<int32_t>(info, 1);
    float* dx = o.out<float>(info, 2);
    check(cu::max_pool2d_backward(pool_shape(info, 3), dy, argmax, dx, info[4].ToBoolean().Value()));
  });
}

// cudaAbsTanhMaxPool2dBackward(dy, argmax, x, y, dx, shape, checkArgmax)
Napi::Value AbsTanhMaxPool2dBackward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* dy = o.in<float>(info, 0);
    const int32_t* argmax = o.in<int32_t>(info, 1);
    const float* x = o.in<float>(info, 2);
    const float* y = o.in<float>(info, 3);
    float* dx = o.out<float>(info, 4);
    check(cu::abs_tanh_max_pool2d_backward(pool_shape(info, 5), dy, argmax, x, y, dx, info[6].ToBoolean().Value()));
  });
}

// cudaAbsTanhForward(x, y, n), cudaSigmoidForward(x, y, n)
template <bool kSigmoid>
Napi::Value UnaryForward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* x = o.in<float>(info, 0);
    float* y = o.out<float>(info, 1);
    const int64_t n = integer(info, 2);
    check(kSigmoid ? cu::sigmoid_forward(n, x, y) : cu::abs_tanh_forward(n, x, y));
  });
}

// cudaAbsTanhBackward(dy, x, y, dx, n)
Napi::Value AbsTanhBackward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* dy = o.in<float>(info, 0);
    const float* x = o.in<float>(info, 1);
    const float* y = o.in<float>(info, 2);
    float* dx = o.out<float>(info, 3);
    check(cu::abs_tanh_backward(integer(info, 4), dy, x, y, dx));
  });
}

// cudaSigmoidBackward(dy, y, dx, n)
Napi::Value SigmoidBackward(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* dy = o.in<float>(info, 0);
    const float* y = o.in<float>(info, 1);
    float* dx = o.out<float>(info, 2);
    check(cu::sigmoid_backward(integer(info, 3), dy, y, dx));
  });
}

// The pair arguments after the kernel-specific ones (as lib/native.ts hammingDp): pairs,
// labels, weights | null (host arrays: the pair batch is built on the host), loss, gradScalars |
// null (host arrays or buffers), shape [N, n, P], alpha, beta, scale.
struct PairCall {
  cu::DevicePairBatch batch;
  cu::DevicePairLoss loss;
  PairCall() = default;
  PairCall(const PairCall&) = delete;
  PairCall& operator=(const PairCall&) = delete;
  ~PairCall() { cu::pair_batch_free(&batch); }
};

// The host pair lists at arguments first (pairs), first + 1 (labels), first + 2 (weights | null).
struct HostPairs {
  const int32_t* pairs;
  const float* labels;
  const float* weights;
};

HostPairs host_pairs(const Napi::CallbackInfo& info, size_t first) {
  auto host = [&](size_t index, napi_typedarray_type type, bool optional) -> void* {
    Napi::Value v = info[index];
    if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      throw dcl::Error("E_ARG", "pair argument " + std::to_string(index) + " must be a host typed array of the right type");
    return host_bytes(v.As<Napi::TypedArray>());
  };
  HostPairs h;
  h.pairs = static_cast<const int32_t*>(host(first, napi_int32_array, false));
  h.labels = static_cast<const float*>(host(first + 1, napi_float32_array, false));
  h.weights = static_cast<const float*>(host(first + 2, napi_float32_array, true));
  return h;
}

void pair_call(const Napi::CallbackInfo& info, size_t first, Operands& o, PairCall& call) {
  const auto shape = shape_of(info, first + 5, 3);
  const HostPairs h = host_pairs(info, first);
  check(cu::pair_batch_upload(shape[0], shape[2], h.pairs, h.labels, h.weights, &call.batch));
  call.loss.batch = &call.batch;
  call.loss.dims = shape[1];
  call.loss.loss = o.out<double>(info, first + 3);
  call.loss.grad_scalars = o.out_or_null<double>(info, first + 4);
  call.loss.alpha = number(info, first + 6);
  call.loss.beta = number(info, first + 7);
  call.loss.scale = number(info, first + 8);
}

// cudaHammingDp(p, gradP | null, pairs, labels, weights | null, loss, gradScalars | null, shape, alpha, beta, scale)
Napi::Value HammingDp(const Napi::CallbackInfo& info) {
  return run_op_with<PairCall>(info, [&](Operands& o, PairCall& call) {
    const float* p = o.in<float>(info, 0);
    float* grad = o.out_or_null<float>(info, 1);
    pair_call(info, 2, o, call);
    check(cu::hamming_dp(call.loss, p, grad));
  });
}

// cudaPairL1Loss(f, s, gradF | null, pairs, labels, weights | null, loss, gradScalars | null, shape, alpha, beta, scale)
Napi::Value PairL1Loss(const Napi::CallbackInfo& info) {
  return run_op_with<PairCall>(info, [&](Operands& o, PairCall& call) {
    const float* f = o.in<float>(info, 0);
    const float* s = o.in<float>(info, 1);
    float* grad = o.out_or_null<float>(info, 2);
    pair_call(info, 3, o, call);
    check(cu::pair_l1_loss(call.loss, f, s, grad));
  });
}

// cudaBatchLoss(p, gradP, pairs, labels, weights | null, result, shape [N, n, P, levels, method], alpha, beta,
// weightSum, omega): the training loss of one batch (dcl_cuda.h batch_loss); pairs, labels and
// weights are host arrays, result a Float64Array [3] (loss, d/dalpha, d/dbeta) or a buffer.
// method: 0 rounding, 1 dp, 2 std, 3 float.
Napi::Value BatchLoss(const Napi::CallbackInfo& info) {
  return run_op_with<PairCall>(info, [&](Operands& o, PairCall& call) {
    const float* p = o.in<float>(info, 0);
    float* grad = o.out<float>(info, 1);
    const auto shape = shape_of(info, 6, 5);
    const HostPairs h = host_pairs(info, 2);
    double* result = o.out<double>(info, 5);
    if (shape[4] < 0 || shape[4] > 3) throw dcl::Error("E_ARG", "cudaBatchLoss: unknown method " + std::to_string(shape[4]));
    check(cu::pair_batch_upload(shape[0], shape[2], h.pairs, h.labels, h.weights, &call.batch));
    cu::BatchLossArgs a;
    a.batch = &call.batch;
    a.dims = shape[1];
    a.levels = static_cast<int>(shape[3]);
    a.method = static_cast<cu::BatchLossMethod>(shape[4]);
    a.alpha = number(info, 7);
    a.beta = number(info, 8);
    a.weight_sum = number(info, 9);
    a.omega = number(info, 10);
    check(cu::batch_loss(a, p, grad, result));
  });
}

// cudaQuantizePack(p, codes, [count, n, q])
Napi::Value QuantizePack(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const float* p = o.in<float>(info, 0);
    int32_t* codes = o.out<int32_t>(info, 1);
    const auto s = shape_of(info, 2, 3);
    check(cu::quantize_pack(s[0], static_cast<int>(s[1]), static_cast<int>(s[2]), p, codes));
  });
}

// cudaCodeKnn(database, queries, indices, distances, [N, Q, n, q, hamming, k])
Napi::Value CodeKnn(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    const int32_t* database = o.in<int32_t>(info, 0);
    const int32_t* queries = o.in<int32_t>(info, 1);
    int32_t* indices = o.out<int32_t>(info, 2);
    uint32_t* distances = o.out<uint32_t>(info, 3);
    const auto v = shape_of(info, 4, 6);
    dcl::CodeScanShape s;
    s.count = v[0];
    s.queries = v[1];
    s.n = static_cast<int>(v[2]);
    s.q = static_cast<int>(v[3]);
    s.hamming = v[4] != 0;
    check(cu::code_knn(s, database, queries, v[5], indices, distances));
  });
}

// cudaAdamUpdate(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, biasCorrection1, biasCorrection2Sqrt)
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  return run_op(info, [&](Operands& o) {
    float* param = o.inout<float>(info, 0);
    const float* grad = o.in<float>(info, 1);
    float* m = o.inout<float>(info, 2);
    float* v = o.inout<float>(info, 3);
    check(cu::adam_update(integer(info, 4), param, grad, m, v, number(info, 5), number(info, 6), number(info, 7),
                          number(info, 8), number(info, 9), number(info, 10), number(info, 11)));
  });
}

#else  // built without CUDA

Napi::Object status_object(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", false);
  o.Set("usable", false);
  o.Set("reason", DCL_CUDA_REASON);
  o.Set("devices", Napi::Array::New(env, 0));
  return o;
}

Napi::Value StatusFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return status_object(info.Env()); });
}

Napi::Value NotCompiled(const Napi::CallbackInfo& info) {
  throw make_error(info.Env(), "E_CUDA", std::string("CUDA is not usable: ") + DCL_CUDA_REASON);
}

#endif

}  // namespace

// capabilities().cuda (bindings/addon.cpp).
Napi::Object cuda_capabilities(Napi::Env env) { return status_object(env); }

// Registered from addon.cpp's Init.
void register_cuda(Napi::Env env, Napi::Object exports) {
  struct Entry {
    const char* name;
    Napi::Function::Callback fn;
  };
#ifdef DCL_HAVE_CUDA
  const Entry entries[] = {
      {"cudaAlloc", Alloc},
      {"cudaFree", Free},
      {"cudaUpload", Upload},
      {"cudaDownload", Download},
      {"cudaSynchronize", Synchronize},
      {"cudaReleaseCached", ReleaseCached},
      {"cudaMemoryStats", MemoryStats},
      {"cudaFmaPeak", FmaPeak},
      {"cudaCopyBandwidth", CopyBandwidth},
      {"cudaConv2dForward", LayerForward<dcl::Conv2dShape, conv_shape, cu::conv2d_forward>},
      {"cudaConv2dBackwardInput", LayerBackwardInput<dcl::Conv2dShape, conv_shape, cu::conv2d_backward_input>},
      {"cudaConv2dBackwardWeight", LayerBackwardWeight<dcl::Conv2dShape, conv_shape, cu::conv2d_backward_weight>},
      {"cudaMaxPool2dForward", PoolForward<false>},
      {"cudaMaxPool2dBackward", MaxPool2dBackward},
      {"cudaAbsTanhMaxPool2dForward", PoolForward<true>},
      {"cudaAbsTanhMaxPool2dBackward", AbsTanhMaxPool2dBackward},
      {"cudaAbsTanhForward", UnaryForward<false>},
      {"cudaAbsTanhBackward", AbsTanhBackward},
      {"cudaSigmoidForward", UnaryForward<true>},
      {"cudaSigmoidBackward", SigmoidBackward},
      {"cudaLinearForward", LayerForward<dcl::LinearShape, linear_shape, cu::linear_forward>},
      {"cudaLinearBackwardInput", LayerBackwardInput<dcl::LinearShape, linear_shape, cu::linear_backward_input>},
      {"cudaLinearBackwardWeight", LayerBackwardWeight<dcl::LinearShape, linear_shape, cu::linear_backward_weight>},
      {"cudaHammingDp", HammingDp},
      {"cudaPairL1Loss", PairL1Loss},
      {"cudaBatchLoss", BatchLoss},
      {"cudaQuantizePack", QuantizePack},
      {"cudaCodeKnn", CodeKnn},
      {"cudaAdamUpdate", AdamUpdate},
  };
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
#else
  const char* names[] = {"cudaAlloc", "cudaFree", "cudaUpload", "cudaDownload", "cudaSynchronize", "cudaReleaseCached",
                         "cudaMemoryStats", "cudaFmaPeak", "cudaCopyBandwidth", "cudaConv2dForward",
                         "cudaConv2dBackwardInput", "cudaConv2dBackwardWeight", "cudaMaxPool2dForward",
                         "cudaMaxPool2dBackward", "cudaAbsTanhMaxPool2dForward", "cudaAbsTanhMaxPool2dBackward",
                         "cudaAbsTanhForward", "cudaAbsTanhBackward", "cudaSigmoidForward", "cudaSigmoidBackward",
                         "cudaLinearForward", "cudaLinearBackwardInput", "cudaLinearBackwardWeight", "cudaHammingDp",
                         "cudaPairL1Loss", "cudaBatchLoss", "cudaQuantizePack", "cudaCodeKnn", "cudaAdamUpdate"};
  for (const char* name : names) exports.Set(name, Napi::Function::New(env, NotCompiled, name));
#endif
  exports.Set("cudaStatus", Napi::Function::New(env, StatusFn, "cudaStatus"));
}
