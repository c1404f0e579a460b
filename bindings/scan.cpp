// N-API glue of the exhaustive code scans (kernels.h: code_knn, code_range): argument unpacking,
// result arrays, and the async variants (a Napi::AsyncWorker on libuv's thread pool that runs the
// kernel, itself threaded on the native pool, and settles a Promise). lib/scan.ts has validated
// everything; the checks here only keep pointers in bounds. Registered from addon.cpp's Init
// through register_scan.
#include <napi.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "dcl/cpu.h"
#include "dcl/kernels.h"
#include "glue.h"

namespace {

using dcl_bindings::guarded;
using dcl_bindings::make_error;

template <class T>
T* scan_typed(const Napi::Value& v, napi_typedarray_type type, const char* what, int64_t need) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw dcl::Error("E_ARG", std::string("scan: ") + what + " has the wrong typed-array type");
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (static_cast<int64_t>(a.ElementLength()) < need)
    throw dcl::Error("E_ARG", std::string("scan: ") + what + " is too short");
  return a.Data();
}

// shape: [N, Q, n, q, hamming (0 | 1), k or radius]
struct ScanArgs {
  dcl::CodeScanShape shape;
  double last = 0;
};

ScanArgs scan_args(const Napi::Value& v) {
  Napi::Array a = v.As<Napi::Array>();
  auto at = [&](uint32_t i) { return a.Get(i).As<Napi::Number>().DoubleValue(); };
  ScanArgs s;
  s.shape.count = static_cast<int64_t>(at(0));
  s.shape.queries = static_cast<int64_t>(at(1));
  s.shape.n = static_cast<int>(at(2));
  s.shape.q = static_cast<int>(at(3));
  s.shape.hamming = at(4) != 0;
  s.last = at(5);
  const auto& sh = s.shape;
  if (sh.count < 0 || sh.count > INT32_MAX || sh.queries < 0 || sh.n < 1 || sh.q < 1 || sh.q > 32 || sh.n * sh.q > 32)
    throw dcl::Error("E_ARG", "scan: bad shape");
  return s;
}

// The range output: std::vectors filled by the kernel (on whatever thread runs it), turned into
// JS arrays on the main thread.
struct RangeHolder {
  std::vector<int64_t> offsets;
  std::vector<int32_t> indices;
  std::vector<uint32_t> distances;
  static void allocate(void* ctx, int64_t total, int32_t** idx, uint32_t** dist) {
    auto* h = static_cast<RangeHolder*>(ctx);
    h->indices.resize(static_cast<size_t>(total));
    h->distances.resize(static_cast<size_t>(total));
    *idx = h->indices.data();
    *dist = h->distances.data();
  }
  void run(const dcl::CpuKernels& k, const dcl::CodeScanShape& s, const int32_t* db, const int32_t* q, uint32_t radius) {
    offsets.assign(static_cast<size_t>(s.queries + 1), 0);
    dcl::CodeRangeOutput out;
    out.offsets = offsets.data();
    out.allocate = &RangeHolder::allocate;
    out.context = this;
    k.code_range(s, db, q, radius, out);
  }
  Napi::Object result(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    auto off = Napi::Int32Array::New(env, offsets.size());
    for (size_t i = 0; i < offsets.size(); ++i) off[i] = static_cast<int32_t>(offsets[i]);
    auto idx = Napi::Int32Array::New(env, indices.size());
    if (!indices.empty()) std::memcpy(idx.Data(), indices.data(), indices.size() * sizeof(int32_t));
    auto dst = Napi::Uint32Array::New(env, distances.size());
    if (!distances.empty()) std::memcpy(dst.Data(), distances.data(), distances.size() * sizeof(uint32_t));
    o.Set("offsets", off);
    o.Set("indices", idx);
    o.Set("distances", dst);
    return o;
  }
};

class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Env env, Napi::Object keep, const dcl::CpuKernels& kernels, const ScanArgs& args,
             const int32_t* database, const int32_t* queries, int32_t* indices, uint32_t* distances)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        keep_(Napi::Persistent(keep)),
        kernels_(kernels),
        args_(args),
        database_(database),
        queries_(queries),
        indices_(indices),
        distances_(distances) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      if (indices_)
        kernels_.code_knn(args_.shape, database_, queries_, static_cast<int64_t>(args_.last), indices_, distances_);
      else
        range_.run(kernels_, args_.shape, database_, queries_, static_cast<uint32_t>(args_.last));
    } catch (const dcl::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "E_NATIVE";
      SetError("native code ran out of memory");
    } catch (const std::exception& e) {
      code_ = "E_NATIVE";
      SetError(e.what());
    }
  }

  void OnOK() override {
    if (indices_)
      deferred_.Resolve(Env().Undefined());
    else
      deferred_.Resolve(range_.result(Env()));
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(make_error(Env(), code_.empty() ? "E_NATIVE" : code_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;  // keeps the database, queries and outputs alive
  const dcl::CpuKernels& kernels_;  // the ISA active when the call was made
  ScanArgs args_;
  const int32_t* database_;
  const int32_t* queries_;
  int32_t* indices_;  // null: a range scan
  uint32_t* distances_;
  RangeHolder range_;
  std::string code_;
};

// codeKnn(database, queries, indices: Int32Array [Q k], distances: Uint32Array [Q k],
//         [N, Q, n, q, hamming, k], async) -> undefined (or a Promise of it)
Napi::Value CodeKnn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const ScanArgs args = scan_args(info[4]);
    const int64_t k = static_cast<int64_t>(args.last);
    if (k < 1) throw dcl::Error("E_ARG", "scan: k must be at least 1");
    const int32_t* db = scan_typed<int32_t>(info[0], napi_int32_array, "database", args.shape.count);
    const int32_t* q = scan_typed<int32_t>(info[1], napi_int32_array, "queries", args.shape.queries);
    int32_t* idx = scan_typed<int32_t>(info[2], napi_int32_array, "indices", args.shape.queries * k);
    uint32_t* dst = scan_typed<uint32_t>(info[3], napi_uint32_array, "distances", args.shape.queries * k);
    const dcl::CpuKernels& kernels = dcl::kernels();
    if (info[5].ToBoolean().Value()) {
      Napi::Object keep = Napi::Object::New(env);
      for (uint32_t i = 0; i < 4; ++i) keep.Set(i, info[i]);
      auto* worker = new ScanWorker(env, keep, kernels, args, db, q, idx, dst);
      Napi::Promise promise = worker->Promise();
      worker->Queue();
      return promise;
    }
    kernels.code_knn(args.shape, db, q, k, idx, dst);
    return env.Undefined();
  });
}

// codeRange(database, queries, [N, Q, n, q, hamming, radius], async)
//   -> { offsets: Int32Array [Q + 1], indices: Int32Array, distances: Uint32Array } (or a Promise of it)
Napi::Value CodeRange(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const ScanArgs args = scan_args(info[2]);
    if (!(args.last >= 0 && args.last <= 4294967295.0)) throw dcl::Error("E_ARG", "scan: bad radius");
    const int32_t* db = scan_typed<int32_t>(info[0], napi_int32_array, "database", args.shape.count);
    const int32_t* q = scan_typed<int32_t>(info[1], napi_int32_array, "queries", args.shape.queries);
    const dcl::CpuKernels& kernels = dcl::kernels();
    if (info[3].ToBoolean().Value()) {
      Napi::Object keep = Napi::Object::New(env);
      keep.Set(0u, info[0]);
      keep.Set(1u, info[1]);
      auto* worker = new ScanWorker(env, keep, kernels, args, db, q, nullptr, nullptr);
      Napi::Promise promise = worker->Promise();
      worker->Queue();
      return promise;
    }
    RangeHolder holder;
    holder.run(kernels, args.shape, db, q, static_cast<uint32_t>(args.last));
    return holder.result(env);
  });
}

}  // namespace

// Called from addon.cpp's Init.
void register_scan(Napi::Env env, Napi::Object exports) {
  exports.Set("codeKnn", Napi::Function::New(env, CodeKnn));
  exports.Set("codeRange", Napi::Function::New(env, CodeRange));
}
