// N-API glue of the bin index (native/cpu/bins.cpp): argument unpacking and result arrays only.
// lib/bin-index.ts owns the arrays and has validated everything; the checks here only keep
// pointers in bounds. Registered from addon.cpp's Init through register_bins.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "dcl/bins.h"
#include "dcl/kernels.h"
#include "glue.h"

namespace {

using dcl_bindings::guarded;
using dcl_bindings::make_error;

template <class T>
T* typed_of(const Napi::Value& v, napi_typedarray_type type, const char* what, int64_t* length = nullptr) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw dcl::Error("E_ARG", std::string("bins: ") + what + " has the wrong typed-array type");
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (length) *length = static_cast<int64_t>(a.ElementLength());
  return a.Data();
}

uint64_t limit_of(const Napi::Value& v) {
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d < 1.8e19)) return UINT64_MAX;  // Infinity
  return d <= 0 ? 0 : static_cast<uint64_t>(d);
}

// MIH group sizes (dimensions per group, top group first): 2 .. kMihMaxGroups groups of at most
// kMihMaxGroupBits bits covering the n dimensions.
void mih_dims_of(const Napi::Value& value, int n, int q, int* dims, int* groups) {
  if (!value.IsArray()) throw dcl::Error("E_ARG", "bins: mihDims must be an array");
  Napi::Array a = value.As<Napi::Array>();
  const int m = static_cast<int>(a.Length());
  if (m < 2 || m > dcl::kMihMaxGroups) throw dcl::Error("E_ARG", "bins: bad MIH group count");
  int sum = 0;
  for (int t = 0; t < m; ++t) {
    dims[t] = a.Get(static_cast<uint32_t>(t)).As<Napi::Number>().Int32Value();
    if (dims[t] < 1 || dims[t] * q > dcl::kMihMaxGroupBits) throw dcl::Error("E_ARG", "bins: bad MIH group size");
    sum += dims[t];
  }
  if (sum != n) throw dcl::Error("E_ARG", "bins: the MIH groups must cover the n dimensions");
  *groups = m;
}

// view: { n, q, codes: Uint32Array [B], start: Uint32Array [B + 1], keys, vals: Uint32Array [S] | null, allOnesBin }
dcl::BinIndexView view_of(const Napi::Object& o) {
  dcl::BinIndexView v;
  v.n = o.Get("n").As<Napi::Number>().Int32Value();
  v.q = o.Get("q").As<Napi::Number>().Int32Value();
  if (v.n < 1 || v.q < 1 || v.q > 32 || v.n * v.q > 32) throw dcl::Error("E_ARG", "bins: bad layout");
  int64_t b = 0, s = 0;
  v.codes = typed_of<uint32_t>(o.Get("codes"), napi_uint32_array, "codes", &b);
  v.bins = b;
  v.start = typed_of<uint32_t>(o.Get("start"), napi_uint32_array, "start", &s);
  if (s != b + 1) throw dcl::Error("E_ARG", "bins: start must hold bins + 1 offsets");
  const Napi::Value keys = o.Get("keys");
  if (!keys.IsNull() && !keys.IsUndefined()) {
    int64_t ks = 0, vs = 0;
    v.keys = typed_of<uint32_t>(keys, napi_uint32_array, "keys", &ks);
    v.vals = typed_of<uint32_t>(o.Get("vals"), napi_uint32_array, "vals", &vs);
    if (ks != vs || ks < 16 || (ks & (ks - 1)) != 0) throw dcl::Error("E_ARG", "bins: bad hash table");
    v.slots = ks;
  }
  v.all_ones_bin = static_cast<int64_t>(o.Get("allOnesBin").As<Napi::Number>().DoubleValue());
  const Napi::Value dir = o.Get("dir");
  if (!dir.IsNull() && !dir.IsUndefined()) {
    int64_t ds = 0;
    v.prefix_dims = o.Get("prefixDims").As<Napi::Number>().Int32Value();
    if (v.prefix_dims < 1 || v.prefix_dims >= v.n || v.prefix_dims * v.q > 24) throw dcl::Error("E_ARG", "bins: bad prefix dims");
    v.dir = typed_of<uint32_t>(dir, napi_uint32_array, "dir", &ds);
    if (ds != (int64_t{1} << (v.prefix_dims * v.q)) + 1) throw dcl::Error("E_ARG", "bins: bad prefix directory length");
  }
  const Napi::Value mih = o.Get("mihDims");
  if (!mih.IsNull() && !mih.IsUndefined()) {
    int groups = 0;
    mih_dims_of(mih, v.n, v.q, v.mih_dims, &groups);
    v.mih_groups = groups;
    int64_t os = 0, cs = 0, bs = 0;
    v.mih_offsets = typed_of<uint32_t>(o.Get("mihOffsets"), napi_uint32_array, "mihOffsets", &os);
    v.mih_codes = typed_of<uint32_t>(o.Get("mihCodes"), napi_uint32_array, "mihCodes", &cs);
    v.mih_bins = typed_of<uint32_t>(o.Get("mihBins"), napi_uint32_array, "mihBins", &bs);
    if (os != dcl::bins_mih_offsets_size(v.n, v.q, groups, v.mih_dims) || cs != (groups - 1) * v.bins || bs != cs)
      throw dcl::Error("E_ARG", "bins: bad MIH table lengths");
  }
  return v;
}

// options: [k, maxBins, maxDistance, strategy (0 rank, 1 enumerate, 2 prefix, 3 mih)]
dcl::BinQuery query_of(const Napi::Value& value) {
  Napi::Array a = value.As<Napi::Array>();
  dcl::BinQuery q;
  q.k = limit_of(a.Get(0u));
  q.max_bins = limit_of(a.Get(1u));
  q.max_distance = limit_of(a.Get(2u));
  const int strategy = a.Get(3u).As<Napi::Number>().Int32Value();
  q.strategy = strategy == 1   ? dcl::BinStrategy::enumerate
               : strategy == 2 ? dcl::BinStrategy::prefix
               : strategy == 3 ? dcl::BinStrategy::mih
                               : dcl::BinStrategy::rank;
  return q;
}

// binsArgsort(keys: Uint32Array | Float64Array, order: Uint32Array)
Napi::Value BinsArgsort(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int64_t n = 0, m = 0;
    uint32_t* order = typed_of<uint32_t>(info[1], napi_uint32_array, "order", &m);
    const Napi::TypedArray keys = info[0].As<Napi::TypedArray>();
    if (keys.TypedArrayType() == napi_float64_array) {
      const double* k = typed_of<double>(info[0], napi_float64_array, "keys", &n);
      if (n != m) throw dcl::Error("E_ARG", "bins: order must be as long as keys");
      dcl::bins_argsort_f64(n, k, order);
    } else {
      const uint32_t* k = typed_of<uint32_t>(info[0], napi_uint32_array, "keys", &n);
      if (n != m) throw dcl::Error("E_ARG", "bins: order must be as long as keys");
      dcl::bins_argsort_u32(n, k, order);
    }
    return info.Env().Undefined();
  });
}

// binsGroup(sorted: Uint32Array [N], codes: Uint32Array [N + 1], start: Uint32Array [N + 1]) -> B
Napi::Value BinsGroup(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int64_t n = 0, c = 0, s = 0;
    const uint32_t* sorted = typed_of<uint32_t>(info[0], napi_uint32_array, "sorted", &n);
    uint32_t* codes = typed_of<uint32_t>(info[1], napi_uint32_array, "codes", &c);
    uint32_t* start = typed_of<uint32_t>(info[2], napi_uint32_array, "start", &s);
    if (c < n + 1 || s < n + 1) throw dcl::Error("E_ARG", "bins: group outputs must hold N + 1 entries");
    return Napi::Number::New(info.Env(), static_cast<double>(dcl::bins_group(n, sorted, codes, start)));
  });
}

// binsHashSlots(bins) -> S
Napi::Value BinsHashSlots(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int64_t b = info[0].As<Napi::Number>().Int64Value();
    return Napi::Number::New(info.Env(), static_cast<double>(dcl::bins_hash_slots(b)));
  });
}

// binsBuildHash(codes: Uint32Array [B], keys: Uint32Array [S], vals: Uint32Array [S]) -> allOnesBin
Napi::Value BinsBuildHash(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int64_t b = 0, ks = 0, vs = 0;
    const uint32_t* codes = typed_of<uint32_t>(info[0], napi_uint32_array, "codes", &b);
    uint32_t* keys = typed_of<uint32_t>(info[1], napi_uint32_array, "keys", &ks);
    uint32_t* vals = typed_of<uint32_t>(info[2], napi_uint32_array, "vals", &vs);
    if (ks != vs || ks < dcl::bins_hash_slots(b)) throw dcl::Error("E_ARG", "bins: hash table too small");
    return Napi::Number::New(info.Env(), static_cast<double>(dcl::bins_build_hash(b, codes, ks, keys, vals)));
  });
}

Napi::Object stats_object(Napi::Env env, const dcl::BinStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("enumerated", static_cast<double>(s.enumerated));
  o.Set("probed", static_cast<double>(s.probed));
  o.Set("visited", static_cast<double>(s.visited));
  return o;
}

Napi::Uint32Array u32_array(Napi::Env env, const uint32_t* data, size_t count) {
  Napi::Uint32Array a = Napi::Uint32Array::New(env, count);
  if (count) std::memcpy(a.Data(), data, count * 4);
  return a;
}

// binsBuildPrefix(codes: Uint32Array [B], n, q, prefixDims, dir: Uint32Array [2^(prefixDims q) + 1])
Napi::Value BinsBuildPrefix(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int64_t b = 0, ds = 0;
    const uint32_t* codes = typed_of<uint32_t>(info[0], napi_uint32_array, "codes", &b);
    const int n = info[1].As<Napi::Number>().Int32Value(), q = info[2].As<Napi::Number>().Int32Value();
    const int m = info[3].As<Napi::Number>().Int32Value();
    uint32_t* dir = typed_of<uint32_t>(info[4], napi_uint32_array, "dir", &ds);
    if (n < 1 || q < 1 || n * q > 32 || m < 1 || m >= n || m * q > 24 || ds != (int64_t{1} << (m * q)) + 1)
      throw dcl::Error("E_ARG", "bins: bad prefix directory arguments");
    dcl::bins_build_prefix(b, codes, n, q, m, dir);
    return info.Env().Undefined();
  });
}

// binsBuildMih(codes: Uint32Array [B], n, q, dims: number[], offsets, mcodes, mbins: Uint32Array)
Napi::Value BinsBuildMih(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int64_t b = 0, os = 0, cs = 0, bs = 0;
    const uint32_t* codes = typed_of<uint32_t>(info[0], napi_uint32_array, "codes", &b);
    const int n = info[1].As<Napi::Number>().Int32Value(), q = info[2].As<Napi::Number>().Int32Value();
    if (n < 1 || q < 1 || n * q > 32) throw dcl::Error("E_ARG", "bins: bad layout");
    int dims[dcl::kMihMaxGroups] = {}, groups = 0;
    mih_dims_of(info[3], n, q, dims, &groups);
    uint32_t* offsets = typed_of<uint32_t>(info[4], napi_uint32_array, "offsets", &os);
    uint32_t* mcodes = typed_of<uint32_t>(info[5], napi_uint32_array, "mcodes", &cs);
    uint32_t* mbins = typed_of<uint32_t>(info[6], napi_uint32_array, "mbins", &bs);
    if (os != dcl::bins_mih_offsets_size(n, q, groups, dims) || cs != (groups - 1) * b || bs != cs)
      throw dcl::Error("E_ARG", "bins: bad MIH table lengths");
    dcl::bins_build_mih(b, codes, n, q, groups, dims, offsets, mcodes, mbins);
    return info.Env().Undefined();
  });
}

// binsSearch(view, query (uint32), options) -> { positions, distances, stats }
Napi::Value BinsSearch(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const dcl::BinIndexView v = view_of(info[0].As<Napi::Object>());
    const uint32_t query = static_cast<uint32_t>(info[1].As<Napi::Number>().Int64Value());
    dcl::BinResult r;
    dcl::bins_search(v, query, query_of(info[2]), r);
    Napi::Object out = Napi::Object::New(env);
    out.Set("positions", u32_array(env, r.positions.data(), r.positions.size()));
    out.Set("distances", u32_array(env, r.distances.data(), r.distances.size()));
    out.Set("stats", stats_object(env, r.stats));
    return out;
  });
}

Napi::Object batch_object(Napi::Env env, const std::vector<dcl::BinResult>& results) {
  size_t total = 0;
  for (const auto& r : results) total += r.positions.size();
  Napi::Float64Array offsets = Napi::Float64Array::New(env, results.size() + 1);
  Napi::Uint32Array positions = Napi::Uint32Array::New(env, total);
  Napi::Uint32Array distances = Napi::Uint32Array::New(env, total);
  dcl::BinStats sum;
  size_t at = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    offsets[i] = static_cast<double>(at);
    const auto& r = results[i];
    if (!r.positions.empty()) {
      std::memcpy(positions.Data() + at, r.positions.data(), r.positions.size() * 4);
      std::memcpy(distances.Data() + at, r.distances.data(), r.distances.size() * 4);
    }
    at += r.positions.size();
    sum.enumerated += r.stats.enumerated;
    sum.probed += r.stats.probed;
    sum.visited += r.stats.visited;
  }
  offsets[results.size()] = static_cast<double>(at);
  Napi::Object out = Napi::Object::New(env);
  out.Set("offsets", offsets);
  out.Set("positions", positions);
  out.Set("distances", distances);
  out.Set("stats", stats_object(env, sum));
  return out;
}

class SearchBatchWorker : public Napi::AsyncWorker {
 public:
  SearchBatchWorker(Napi::Env env, Napi::Object keep, const dcl::BinIndexView& v, const uint32_t* queries,
                    int64_t count, const dcl::BinQuery& q)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        keep_(Napi::Persistent(keep)),
        view_(v),
        queries_(queries),
        count_(count),
        query_(q),
        results_(static_cast<size_t>(count)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      dcl::bins_search_batch(view_, count_, queries_, query_, results_.data());
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

  void OnOK() override { deferred_.Resolve(batch_object(Env(), results_)); }

  void OnError(const Napi::Error& e) override {
    Napi::Error error = make_error(Env(), code_.empty() ? "E_NATIVE" : code_, e.Message());
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;  // keeps the index arrays and the queries alive
  dcl::BinIndexView view_;
  const uint32_t* queries_;
  int64_t count_;
  dcl::BinQuery query_;
  std::vector<dcl::BinResult> results_;
  std::string code_;
};

// binsSearchBatch(view, queries: Uint32Array, options, async: boolean)
//   -> { offsets: Float64Array [Q + 1], positions, distances, stats } (or a Promise of it)
Napi::Value BinsSearchBatch(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object viewObject = info[0].As<Napi::Object>();
    const dcl::BinIndexView v = view_of(viewObject);
    int64_t count = 0;
    const uint32_t* queries = typed_of<uint32_t>(info[1], napi_uint32_array, "queries", &count);
    const dcl::BinQuery q = query_of(info[2]);
    if (info[3].ToBoolean().Value()) {
      Napi::Object keep = Napi::Object::New(env);
      keep.Set("view", viewObject);
      keep.Set("queries", info[1]);
      auto* worker = new SearchBatchWorker(env, keep, v, queries, count, q);
      Napi::Promise promise = worker->Promise();
      worker->Queue();
      return promise;
    }
    std::vector<dcl::BinResult> results(static_cast<size_t>(count));
    dcl::bins_search_batch(v, count, queries, q, results.data());
    return batch_object(env, results);
  });
}

}  // namespace

// Called from addon.cpp's Init.
void register_bins(Napi::Env env, Napi::Object exports) {
  exports.Set("binsArgsort", Napi::Function::New(env, BinsArgsort));
  exports.Set("binsGroup", Napi::Function::New(env, BinsGroup));
  exports.Set("binsHashSlots", Napi::Function::New(env, BinsHashSlots));
  exports.Set("binsBuildHash", Napi::Function::New(env, BinsBuildHash));
  exports.Set("binsBuildPrefix", Napi::Function::New(env, BinsBuildPrefix));
  exports.Set("binsBuildMih", Napi::Function::New(env, BinsBuildMih));
  exports.Set("binsSearch", Napi::Function::New(env, BinsSearch));
  exports.Set("binsSearchBatch", Napi::Function::New(env, BinsSearchBatch));
}
