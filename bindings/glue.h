// Shared N-API glue for every binding file: C++ exceptions (dcl::Error and the rest) become JS
// errors carrying a `code`, which lib/ rethrows as DclError. No math here.
#pragma once

#include <napi.h>

#include <exception>
#include <new>
#include <string>

#include "dcl/kernels.h"

namespace dcl_bindings {

inline Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Runs a binding body so that every C++ exception becomes a JS exception with a code.
template <class Body>
Napi::Value guarded(const Napi::CallbackInfo& info, Body body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const dcl::Error& e) {
    throw make_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "E_NATIVE", "native code ran out of memory");
  } catch (const std::exception& e) {
    throw make_error(env, "E_NATIVE", e.what());
  }
}

}  // namespace dcl_bindings
